/*
 * shmbus seqlock read against publishers that die at every step, with
 * mutex recovery by the next publisher (docs/design.md "Publish", "Read",
 * "Crash recovery", "Models").
 *
 * Checked properties (assertions, exhaustive safety search):
 *   - a reader never delivers a torn message: both payload words it copied
 *     come from one write of the message it reports, and that write was
 *     complete (att_done);
 *   - a reader never reports corruption while only honest publishers run
 *     (may_retry's `slot_seq < 2*wanted` branch is unreachable);
 *   - deliveries are in order and the skip count is exact: after every
 *     delivery, received + missed == the delivered sequence.
 *
 * Model <-> code (common/src/publisher_port.cpp for the publisher,
 * common/include/shmbus/detail/seqlock.hpp for the reader):
 *   write_seq, publish_seq    topic_header::write_seq / publish_seq (layout.hpp)
 *   slot_seq[k]               slot_header::seq of slot k, the seqlock word
 *   slot_a[k], slot_b[k]      the payload, as two words so that a copy can
 *                             interleave with a write (memcpy is not atomic)
 *   locked, owner_dead        the robust pthread mutex (posix/named_mutex.cpp:
 *                             lock() returns owner_died after a holder died)
 *   publisher: P1..P8         publisher_port::publish
 *     P1 lock                 `mutex_.lock(ec)`; owner_died -> R1..R4
 *     P2 choose the slot      `seq = publish_seq + 1; s = slot(seq)`
 *     P3 odd marker           `s->seq.store(2 * seq - 1)` + release fence
 *     P4 first half of copy   `memcpy(dst, payload, half)` (publish_hook here)
 *     P5 rest of copy, size   `memcpy(dst + half, ...)`, size, timestamp
 *     P6 even marker          `s->seq.store(2 * seq, release)`
 *     P7 announce             `write_seq.store(seq, seq_cst)`
 *     P8 own copy             `publish_seq.store(seq)`; then event_.set()
 *                             (futex.pml) and unlock
 *   recovery: R1..R4          publisher_port::recover_after_owner_death
 *     R1 look                 `seq = write_seq + 1; v = slot(seq)->seq`
 *     R2 complete: announce   `if (v == 2 * seq) write_seq.store(seq)`
 *        torn: discard        fixed: leave 2*seq-1 in place (count it)
 *                             BUG_ZERO_SLOT: `s->seq.store(0)` (before issue 9)
 *     R3 resync               `publish_seq.store(write_seq)`
 *     R4 consistent           `mutex_.consistent()`
 *   A publisher may die (SIGKILL) between any two steps while it holds the
 *   mutex, recovery steps included; the next publisher then recovers.
 *   reader: L1..L7            seqlock_read, may_retry
 *     L1 locate               `w = write_seq.load(seq_cst)` (read_hook here);
 *                             `next > w` -> empty; else oldest retained
 *                             `max(1, w - depth + 1)`, skip to it
 *     L2 first check          `v1 = slot->seq.load(acquire)`;
 *                             `v1 != 2 * seq` -> may_retry(v1): below ->
 *                             corrupt_segment, else retry from L1
 *     L3, L4 copy             `memcpy(dst, payload_of(slot), size)`
 *     L5 second check         acquire fence; `slot->seq.load() != v1` ->
 *                             may_retry(v1 + 1): retry from L1
 *     L6 deliver              meta.missed = skipped; next = seq + 1
 *     L7 give up              `++attempts < max_read_attempts` failed:
 *                             empty, the skip kept (`next += skipped`) and
 *                             reported with the next delivery
 *                             (subscriber_port::read, pending_missed_). Here a
 *                             nondeterministic choice after any retry, which
 *                             covers every value of max_read_attempts.
 *   BUG_NO_RECHECK drops L5 (a reader that does not re-check): shows that
 *   the torn-message assertion can fail.
 *
 * Spin's interleaving semantics is sequentially consistent; the release /
 * acquire argument that real hardware keeps the order of P3-P6 and L2-L5 is
 * the one in docs/design.md "No torn read", not this model's.
 */

#ifndef DEPTH
#define DEPTH 2
#endif
#if DEPTH >= 2
#define K (DEPTH + 1)
#else
#define K 3
#endif
#ifndef MAXSEQ
#define MAXSEQ 6
#endif
#ifndef MAXDEATHS
#define MAXDEATHS 2
#endif
#define MAXATT (MAXSEQ + MAXDEATHS + 2)

byte write_seq = 0;
byte publish_seq = 0;
byte slot_seq[K];
byte slot_a[K];
byte slot_b[K];
bool locked = false;
bool owner_dead = false;
byte deaths = 0;

/* Ghost state: write attempt `t` (a tag, stored as the payload) wrote
 * message att_seq[t] and was completed (P6) if att_done[t]. Tag 0 is the
 * zero-filled initial payload, which is no message. */
byte att_seq[MAXATT];
bool att_done[MAXATT];
byte attempts = 0;

/* A SIGKILL of the lock holder: the robust mutex is released with
 * owner_died set (the kernel's robust list), and a new publisher starts. */
#define DIE \
  if \
  :: deaths < MAXDEATHS -> atomic { deaths++; locked = false; owner_dead = true }; goto restart \
  :: true \
  fi

active proctype publisher() {
  byte s, k, v, tag;
  bool recover;
restart:
  do
  :: (write_seq < MAXSEQ || owner_dead) ->
    /* P1 */
    atomic { !locked -> locked = true; recover = owner_dead }
    if
    :: recover ->
      /* R1 */
      s = write_seq + 1; k = s % K; v = slot_seq[k];
      DIE;
      /* R2 */
      if
      :: v == 2 * s -> write_seq = s
      :: v == 2 * s - 1 ->
#ifdef BUG_ZERO_SLOT
        slot_seq[k] = 0
#else
        skip
#endif
      :: else -> skip
      fi;
      DIE;
      /* R3 */
      publish_seq = write_seq;
      DIE;
      /* R4 */
      owner_dead = false
    :: else -> skip
    fi;
    DIE;
    /* P2 */
    s = publish_seq + 1; k = s % K;
    /* P3 (a new write attempt, tagged for the ghost state) */
    atomic { slot_seq[k] = 2 * s - 1; attempts++; tag = attempts; att_seq[tag] = s };
    DIE;
    /* P4 */
    slot_a[k] = tag;
    DIE;
    /* P5 */
    slot_b[k] = tag;
    DIE;
    /* P6 */
    atomic { slot_seq[k] = 2 * s; att_done[tag] = true };
    DIE;
    /* P7 */
    write_seq = s;
    DIE;
    /* P8, set(), unlock */
    publish_seq = s;
    DIE;
    locked = false
  :: else -> break
  od
}

active proctype reader() {
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
      /* empty: keep the skip for the next delivery */
      atomic { next = next + skipped; pending = pending + skipped; skipped = 0 }
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
        assert(v1 >= 2 * seq);   /* may_retry: else corrupt_segment */
        goto retry
      :: else -> skip
      fi;
      /* L3, L4 */
      a = slot_a[k];
      b = slot_b[k];
      /* L5 */
#ifndef BUG_NO_RECHECK
      v2 = slot_seq[k];
      if
      :: v2 != v1 -> goto retry   /* may_retry(v1 + 1, ...): never corrupt */
      :: else -> skip
      fi;
#endif
      /* L6 */
      assert(a == b && att_seq[a] == seq && att_done[a]);   /* not torn */
      assert(seq > last);                                   /* in order */
      atomic {
        missed = missed + pending + skipped;
        received++;
        last = seq;
        next = seq + 1;
        skipped = 0;
        pending = 0
      };
      assert(received + missed == last);                    /* exact gap */
      goto done;
retry:
      if
      :: true                       /* retry from L1 */
      :: atomic { next = next + skipped; pending = pending + skipped; skipped = 0 }   /* L7 */
      fi;
done:
      skip
    fi
  od
}
