/*
 * shmbus exclusive publish right (docs/design.md "The exclusive publish
 * right", "Crash recovery", "Models") against publishers that die at every
 * step, with a seqlock reader as in seqlock.pml.
 *
 * Two publisher processes. The first is an exclusive publisher: it acquires
 * the right, then publishes without the mutex (some messages by loan, some
 * loans abandoned), then releases. The second is a second exclusive
 * acquirer or a shared publisher (nondeterministic; -DSECOND=1 exclusive
 * only, -DSECOND=2 shared only). Either may die (SIGKILL) between any two
 * steps, inside acquire, release and recovery too; a dead one may be
 * restarted as a new process (a new pid) of the same kind, or not. A
 * refused publisher waits for the holder to go (exit, die or release) and
 * retries: the "wait" option of acquire, or an application that retries
 * after errc::exclusive_publisher.
 * Bounds: NE (3) write attempts of the first publisher, NX (1) of the
 * second, MAXDEATHS (1) kills in all, DEPTH (2: 3 slots), one reader.
 *
 * Checked properties (assertions, invalid end states; exhaustive safety):
 *   (a) never two writers inside a slot write at once (`writers`: the
 *       processes between their odd marker and their even marker or
 *       abandon);
 *   (b) a reader never delivers a torn message: both payload words come
 *       from one complete write of the message it reports;
 *   (c) deliveries are in order, gaps exact (received + missed == last),
 *       and may_retry's corruption branch is unreachable;
 *   (d) no invalid end state: nobody is stuck on the mutex, or refused for
 *       ever (a refused publisher waits without an end label);
 *   (e) a refusal happens only while the token's real owner is alive (the
 *       record is checked against the ghost truth at the refusal), and a
 *       refused publisher gets on once the holder is gone (d);
 *   ghost properties (off with -DUSER_PROPS, which keeps (a)-(e) only):
 *   (f) every write targets write_seq + 1 (gapless; an announced message
 *       is never rewritten) and write_seq never decreases;
 *   (g) a live holder never loses the right (its token check never fails).
 *
 * Model <-> code (common/src/publisher_port.cpp unless said otherwise):
 *   write_seq, publish_seq     topic_header::write_seq / publish_seq
 *   slot_seq/slot_a/slot_b[k]  slot k's seqlock word and its payload, two
 *                              words (seqlock.pml)
 *   token                      topic_header::exclusive_token (0: nobody);
 *                              here the holder's process id, each process
 *                              acquiring at most once, so it is unique
 *   rec_pid                    exclusive_pid + exclusive_start_time (one
 *                              value: the liveness check is exact)
 *   alive[p]                   platform::is_alive(pid, start_time)
 *   locked, owner_dead         the robust mutex (posix/named_mutex.cpp):
 *                              lock() returns owner_died after a holder
 *                              died, until consistent()
 *   acquire (exclusive)        publisher_port::acquire_exclusive
 *     M1 lock                  `mutex_.lock(ec)`
 *     C1 look                  token, and if set the holder's liveness
 *                              (one step: all under the mutex)
 *        live holder           consistent() if owner_died (the ring is
 *                              the holder's: not touched), unlock, refuse;
 *                              W1 wait until what C1 saw (token, record,
 *                              the recorded process) changes, retry
 *        else, owner died or   R1..R3, then C2 `exclusive_token = 0`,
 *        dead holder           C3 consistent() if owner_died
 *     A1 record                `exclusive_pid`, `exclusive_start_time`
 *     A2 token                 `exclusive_token = my token`
 *     A3 unlock
 *   recovery: R1..R3           publisher_port::recover_after_owner_death
 *     R1 look                  `seq = write_seq + 1; v = slot(seq)->seq`
 *     R2 complete: announce    `if (v == 2 * seq) write_seq.store(seq)`;
 *        torn: leave the odd marker
 *     R3 resync                `publish_seq.store(write_seq.load())` (two
 *                              steps: R3a load, R3b store)
 *   publish (both kinds)       publisher_port::begin_write / end_write
 *     T1 token check           exclusive: `exclusive_token != my token` ->
 *                              errc (the right was lost); shared: M1, C1
 *                              (refused with errc::exclusive_publisher
 *                              while a live process holds the right)
 *     P2 choose the slot       `seq = publish_seq + 1`
 *     P3 odd marker            `s->seq.store(2 * seq - 1)` (begin_write;
 *                              for a loan this is loan())
 *     P4 first half of copy    (a loan: the user writes in place)
 *        abandon (loans)       publisher_port::abandon: leave the odd marker,
 *                              publish_seq unchanged; unlock if shared
 *     P5 rest of copy
 *     P6 even marker           `s->seq.store(2 * seq)` (end_write, commit)
 *     P7 announce              `write_seq.store(seq)`
 *     P8 own copy              `publish_seq.store(seq)`; set(); unlock if shared
 *   release (exclusive)        publisher_port::release_exclusive (destructor,
 *                              after any open loan is committed or abandoned)
 *     M1 lock (on owner_died: C1's rule, then consistent())
 *     E1 `if (exclusive_token == my token) exclusive_token = 0`
 *     E2 unlock; then the process exits or lives on
 *   reader: L1..L7             seqlock_read (as seqlock.pml, unchanged),
 *                              except that an empty L1 waits for write_seq
 *                              to reach `next` (the subscriber's wait,
 *                              futex.pml): a reader that could always spin
 *                              would hide every invalid end state
 *   NO_REFUSAL_CHECK drops (e)'s assertion, leaving the invalid end state
 *   to show a refusal for ever (BUG_TOKEN_FIRST); USER_PROPS drops the
 *   ghost properties (f), (g).
 *
 * Bug variants (each must be found):
 *   BUG_BLIND_RECOVERY  the protocol as first specified: on owner_died,
 *                       recover_after_owner_death repairs the ring before
 *                       looking at the token. A second acquirer or shared
 *                       publisher killed while it holds the mutex makes the
 *                       next locker repair the ring under a live exclusive
 *                       holder that is publishing without the mutex: R2
 *                       announces a slot the holder already overtook
 *                       (write_seq goes back) or R3 stores a stale
 *                       publish_seq, and the holder rewrites a published
 *                       sequence (a torn read, a lost message).
 *   BUG_NO_LIVENESS     C1 takes the right without checking the holder is
 *                       dead: two writers.
 *   BUG_RELEASE_EARLY   release_exclusive runs while a loan is still open
 *                       (the destructor releases before the loan's
 *                       commit/abandon): the next publisher writes the
 *                       loan's sequence beside it.
 *   BUG_NO_RECOVERY     taking over from a dead holder without R1..R3.
 *   BUG_ABANDON_ZERO    abandon zeroes the slot word instead of leaving
 *                       the odd marker (a stale reader reports corruption).
 *   BUG_TOKEN_FIRST     acquire stores the token before the pid: killed in
 *                       between, it leaves its token beside the pid of a
 *                       previous holder that released and lives on, and
 *                       everybody is refused for ever.
 *   FORK_CHILD          not a bug of the code but of the protocol's
 *                       premise (a finding, expected to fail): the holder's
 *                       recorded process exits while the publisher lives on
 *                       in its child (fork; the parent exits), so the right
 *                       is taken over from a live writer. The token check
 *                       at T1 cannot help: it is not atomic with the write.
 */

#ifndef DEPTH
#define DEPTH 2
#endif
#if DEPTH >= 2
#define K (DEPTH + 1)
#else
#define K 3
#endif
#ifndef NE
#define NE 3            /* write attempts of the first (exclusive) publisher */
#endif
#ifndef NX
#define NX 1            /* write attempts of the second publisher */
#endif
#ifndef MAXDEATHS
#define MAXDEATHS 1
#endif
#define MAXATT (NE + NX + 1)
#define NPID (3 + MAXDEATHS + 1)

byte write_seq = 0;
byte publish_seq = 0;
byte slot_seq[K];
byte slot_a[K];
byte slot_b[K];
bool locked = false;
bool owner_dead = false;
byte token = 0;
byte rec_pid = 0;
bool alive[NPID];
byte nextpid = 3;
byte deaths = 0;
byte writers = 0;
byte nwrites[2];

/* Ghost state as in seqlock.pml: write attempt `t` wrote message
 * att_seq[t], completed (P6) if att_done[t]. */
byte att_seq[MAXATT];
bool att_done[MAXATT];
byte attempts = 0;

#ifdef USER_PROPS
#define GHOST(x) skip
#else
#define GHOST(x) assert(x)
#endif

/* A SIGKILL: the robust mutex is released with owner_died set if held, a
 * write in progress stops, and the process is gone (then maybe restarted
 * as a new process at `restart`). */
#define DIE \
  if \
  :: atomic { \
      deaths < MAXDEATHS -> \
      deaths++; alive[me] = false; \
      if :: holding -> locked = false; owner_dead = true :: else -> skip fi; \
      if :: writing -> writers-- :: else -> skip fi; \
      holding = false; writing = false \
    }; \
    goto restart \
  :: true \
  fi

/* CODE: platform::named_mutex::lock (robust: owner_died) */
inline lock_mutex() {
  atomic { !locked -> locked = true; holding = true; rec = owner_dead }
}

inline unlock_mutex() {
  atomic { locked = false; holding = false }
}

/* CODE: publisher_port::recover_after_owner_death (R1..R3) */
inline repair() {
  /* R1 CODE: publisher_port::recover_after_owner_death */
  s = write_seq + 1; k = s % K; v = slot_seq[k];
  DIE;
  /* R2 CODE: publisher_port::recover_after_owner_death */
  if
  :: v == 2 * s -> atomic { GHOST(s >= write_seq); write_seq = s }
  :: else -> skip   /* torn (2s-1): leave the odd marker; else nothing */
  fi;
  DIE;
  /* R3 CODE: publisher_port::recover_after_owner_death */
  t = write_seq;
  atomic { publish_seq = t; s = 0; k = 0; v = 0; t = 0 };
  DIE
}

/* Under the mutex (just locked, owner_died in `rec`): may this process go
 * on? hl: no, a live process holds the right (tk). Otherwise the ring is
 * repaired if a mutex owner or the holder died, the token cleared, the
 * mutex made consistent. */
inline check_right() {
#ifdef BUG_BLIND_RECOVERY
  /* CODE: publisher_port::recover_after_owner_death, before any token look */
  if
  :: rec -> repair(); owner_dead = false; rec = false; DIE
  :: else -> skip
  fi;
#endif
  /* C1: CODE: publisher_port::acquire_exclusive / begin_write (token, is_alive) */
  atomic {
    tk = token; rp = rec_pid;
#ifdef BUG_NO_LIVENESS
    hl = false;
#else
    hl = (tk != 0 && alive[rp]);
#endif
#ifndef NO_REFUSAL_CHECK
    assert(!hl || alive[tk])   /* (e) refused only by a live holder */
#else
    skip
#endif
  };
  if
  :: hl ->
    if
    :: rec -> owner_dead = false   /* consistent(): the ring is the holder's */
    :: else -> skip
    fi
  :: else ->
    if
    :: rec || tk != 0 ->
#ifndef BUG_NO_RECOVERY
      repair();
#endif
      /* C2 CODE: publisher_port::acquire_exclusive / begin_write (clear the dead holder's token) */
      token = 0;
      DIE;
      /* C3 CODE: platform::named_mutex::consistent */
      if
      :: rec -> owner_dead = false
      :: else -> skip
      fi;
      DIE
    :: else -> skip
    fi
  fi
}

/* M1 + C1: lock and check, waiting for a live holder to go (W1). */
inline lock_and_check() {
  do
  :: lock_mutex();
    DIE;
    check_right();
    if
    :: hl ->
      unlock_mutex();
      DIE;
      /* W1: refused; retry once what C1 saw has changed: the token, the
       * record, or the recorded process is gone (all that polling can
       * observe). No end label: a refusal for ever is an invalid end
       * state, property (d)/(e). */
      atomic { (token != tk || rec_pid != rp || !alive[rp]) -> tk = 0; rp = 0; hl = false; rec = false }
    :: else -> atomic { tk = 0; rp = 0; rec = false }; break
    fi
  od
}

/* CODE: publisher_port::release_exclusive */
inline release() {
  lock_mutex();
  DIE;
  if
  :: rec ->
#ifdef BUG_BLIND_RECOVERY
    repair();
#else
    /* the token is ours and we are alive: the ring is ours, complete */
    if
    :: token != 0 && alive[rec_pid] -> skip
    :: else -> repair()
    fi;
#endif
    owner_dead = false;
    DIE
  :: else -> skip
  fi;
  /* E1 CODE: publisher_port::release_exclusive */
  if
  :: token == me -> token = 0
  :: else -> skip
  fi;
  DIE;
  /* E2 CODE: publisher_port::release_exclusive (unlock) */
  unlock_mutex()
}

proctype publisher(byte role; byte id) {
  byte me = id;
  bool excl, holding, writing, rec, hl, loan, lost, released;
  byte s, k, v, t, tk, rp, tag, budget;

  if
  :: role == 0 -> excl = true; budget = NE
  :: else ->
    budget = NX;
#if SECOND == 1
    excl = true
#elif SECOND == 2
    excl = false
#else
    if
    :: excl = true
    :: excl = false
    fi
#endif
  fi;
  goto start;
restart:
  if
  :: atomic {
       me = nextpid; nextpid++; alive[me] = true; released = false;
       s = 0; k = 0; v = 0; t = 0; tk = 0; rp = 0; tag = 0;
       hl = false; rec = false; loan = false; lost = false
     }
  :: goto gone
  fi;
start:
  if
  :: excl ->
    /* CODE: publisher_port::acquire_exclusive */
    lock_and_check();
    /* A1 CODE: publisher_port::acquire_exclusive (exclusive_pid, exclusive_start_time) */
#ifdef BUG_TOKEN_FIRST
    token = me;
    DIE;
    rec_pid = me;
#else
    rec_pid = me;
    DIE;
    /* A2 CODE: publisher_port::acquire_exclusive (exclusive_token) */
    token = me;
#endif
    DIE;
    /* A3 CODE: publisher_port::acquire_exclusive (unlock) */
    unlock_mutex();
    DIE
  :: else -> skip
  fi;
  do
  :: nwrites[role] < budget ->
    if
    :: excl ->
      /* T1 CODE: publisher_port::begin_write (exclusive: token check) */
      lost = (token != me);
      if
      :: lost -> GHOST(false); break   /* (g); errc: the right was lost */
      :: else -> skip
      fi
    :: else ->
      /* M1, C1 CODE: publisher_port::begin_write (shared: lock, check) */
      lock_and_check();
      DIE
    fi;
    /* P2 CODE: publisher_port::begin_write */
    s = publish_seq + 1; k = s % K;
    /* P3 CODE: publisher_port::begin_write (loan(): the same) */
    atomic {
      GHOST(s == write_seq + 1);
      slot_seq[k] = 2 * s - 1;
      writing = true; writers++;
      assert(writers == 1);                       /* (a) */
      nwrites[role]++;
      attempts++; tag = attempts; att_seq[tag] = s
    };
    DIE;
    /* P4 CODE: publisher_port::copy_payload (a loan: the user's writes) */
    slot_a[k] = tag;
    DIE;
    if
    :: loan = true
    :: loan = false
    fi;
#ifdef FORK_CHILD
    /* the recorded process exits, its child goes on with the publisher */
    if
    :: excl && loan && alive[me] -> alive[me] = false
    :: else -> skip
    fi;
#endif
#ifdef BUG_RELEASE_EARLY
    if
    :: excl && loan && !released -> release(); released = true; DIE
    :: else -> skip
    fi;
#endif
    if
    :: loan ->
      /* CODE: publisher_port::abandon (or commit: go on to P5) */
      atomic {
#ifdef BUG_ABANDON_ZERO
        slot_seq[k] = 0;
#endif
        writers--; writing = false; s = 0; k = 0; tag = 0; loan = false
      };
      DIE;
      if
      :: !excl -> unlock_mutex(); DIE
      :: else -> skip
      fi
    :: true ->
      /* P5 CODE: publisher_port::copy_payload / end_write (size, timestamp) */
      slot_b[k] = tag;
      DIE;
      /* P6 CODE: publisher_port::end_write (commit(): the same) */
      atomic { slot_seq[k] = 2 * s; att_done[tag] = true; writers--; writing = false };
      DIE;
      /* P7 CODE: publisher_port::end_write (write_seq) */
      atomic { GHOST(s >= write_seq); write_seq = s };
      DIE;
      /* P8 CODE: publisher_port::end_write (publish_seq, set(), unlock if shared) */
      atomic { publish_seq = s; s = 0; k = 0; tag = 0; loan = false };
      DIE;
      if
      :: !excl -> unlock_mutex(); DIE
      :: else -> skip
      fi
    fi;
    if
    :: released -> break   /* the destructor's release: no more publishes */
    :: else -> skip
    fi
  :: else -> break
  od;
  if
  :: excl && !released -> release(); DIE
  :: else -> skip
  fi;
  /* exits, or lives on (its pid stays alive) */
  if
  :: alive[me] = false
  :: skip
  fi;
gone:
  skip
}

proctype reader() {
  byte next = 1;      /* subscribed before the first publish */
  byte skipped = 0;   /* this read() call's skips (seqlock_read) */
  byte pending = 0;   /* skips of calls that delivered nothing (pending_missed_) */
  byte received = 0, missed = 0, last = 0;
  byte w, seq, oldest, k, v1, v2, a, b;
end:
  do
  :: /* L1 */
    w = write_seq;
    if
    :: next + skipped > w ->
      atomic { next = next + skipped; pending = pending + skipped; skipped = 0; w = 0 };
      /* nothing new: wait for it (the subscriber's wait, futex.pml); a
       * reader that could always spin would hide every invalid end state */
end_wait:
      (write_seq >= next)
    :: else ->
      if
      :: w >= DEPTH -> oldest = w - DEPTH + 1
      :: else -> oldest = 1
      fi;
      if
      :: next + skipped < oldest -> seq = oldest
      :: else -> seq = next + skipped
      fi;
      skipped = seq - next;
      k = seq % K;
      /* L2 */
      v1 = slot_seq[k];
      if
      :: v1 != 2 * seq ->
        assert(v1 >= 2 * seq);   /* (c) may_retry: else corrupt_segment */
        goto retry
      :: else -> skip
      fi;
      /* L3, L4 */
      a = slot_a[k];
      b = slot_b[k];
      /* L5 */
      v2 = slot_seq[k];
      if
      :: v2 != v1 -> goto retry
      :: else -> skip
      fi;
      /* L6 */
      assert(a == b && att_seq[a] == seq && att_done[a]);   /* (b) not torn */
      assert(seq > last);                                   /* (c) in order */
      atomic {
        missed = missed + pending + skipped;
        received++;
        last = seq;
        next = seq + 1;
        skipped = 0;
        pending = 0
      };
      assert(received + missed == last);                    /* (c) exact gap */
      goto done;
retry:
      if
      :: true
      :: atomic { next = next + skipped; pending = pending + skipped; skipped = 0 }   /* L7 */
      fi;
done:
      atomic { w = 0; seq = 0; oldest = 0; k = 0; v1 = 0; v2 = 0; a = 0; b = 0 }
    fi
  od
}

init {
  atomic {
    alive[1] = true; alive[2] = true;
    run publisher(0, 1);
    run publisher(1, 2);
    run reader()
  }
}
