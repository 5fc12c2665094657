/*
 * shmbus POSIX wake protocol: the futex word generation << 1 | sleepers
 * (docs/design.md "Wait (no lost wake-up)", "Crash recovery", "Models").
 *
 * Checked property: no lost wake-up. When nothing can move any more
 * (Spin's `timeout`: every publish done, every process ended or asleep in
 * FUTEX_WAIT), no waiter is asleep whose token generation has passed, and
 * none is asleep while a message it has not read is published. Waiters wait
 * without a deadline here: the one-second slices of subscriber_port::block_until
 * are not needed for any wake-up, and the model shows it.
 *
 * Model <-> code:
 *   word                 the futex word (named_event.cpp: word(storage_)),
 *                        2 * generation + sleepers bit
 *   write_seq            topic_header::write_seq
 *   asleep[i]            waiter i queued in the kernel by FUTEX_WAIT
 *   FUTEX_WAIT(v)        atomically: if word == v, sleep; else EAGAIN (the
 *                        kernel re-checks the word under its hash-bucket lock)
 *   FUTEX_WAKE           wakes every waiter queued on the word (INT_MAX)
 *   publisher            publisher_port::publish (common/src/publisher_port.cpp)
 *     U1 lock            `mutex_.lock(ec)`; owner_died -> recovery, V1..V3
 *     U2 complete slot   `s->seq.store(2 * seq)` (the slot, seqlock.pml)
 *     U3 announce        `write_seq.store(seq, seq_cst)`
 *     U4 set()           `event_.set()` under the mutex, S1..S4 below
 *     U5 unlock          `mutex_.unlock()`
 *   set()                named_event.cpp: named_event::set
 *     S1 load            `cur = w.load()`
 *     S2 CAS             `w.compare_exchange(cur, (cur & ~1) + 2)`, on
 *                        failure cur is reloaded; tried at most 64 times
 *     S3 wake if needed  `if (cur & sleepers_bit) wake(&w)`
 *     S4 fallback        after the failed tries (a hostile subscriber can make
 *                        every CAS fail): `w.fetch_add(2)` and an
 *                        unconditional wake. Which branch a set() ends in is a
 *                        nondeterministic choice here (at any try), which
 *                        covers every number of failures.
 *   recovery             publisher_port::recover_after_owner_death
 *     V1 announce        a complete unannounced slot: `write_seq.store(seq)`
 *     V2 set()           `event_.set()`
 *     V3 wake_all        `event_.wake_all()`: unconditional FUTEX_WAKE (the
 *                        dead owner may have died inside set() after its CAS
 *                        cleared the bit and before its wake)
 *   A publisher may die (SIGKILL) between any two steps while it holds the
 *   mutex, inside set() and recovery included; the next publisher recovers.
 *   waiter               subscriber_port::block_until (subscriber_port.cpp) and
 *                        named_event::wait (posix/named_event.cpp)
 *     T1 token           `t = prepare_wait()`: word & ~1 (seq_cst)
 *     T2 check           `if (available()) return` (write_seq, seq_cst)
 *     T3 re-check        wait: `cur = w.load()`; generation != t -> return
 *     T4 sleepers bit    `if (!(cur & 1)) CAS(cur, cur | 1)`, failure ->
 *                        back to T3
 *     T5 sleep           `FUTEX_WAIT_BITSET(w, cur | 1)`; woken or EAGAIN ->
 *                        back to T3
 *     then the subscriber reads one message (next_ + 1) and waits again.
 *
 * Buggy variants, each of which the model must catch:
 *   BUG_NO_WAKE          set() clears the bit without waking
 *                        (named_event::set_without_waking_for_test)
 *   BUG_NO_RECHECK       the waiter sleeps without the kernel's re-check of
 *                        the word (a wait that cannot see a set() that came
 *                        between its check and its sleep)
 *   BUG_RECOVERY_NO_WAKE recovery calls set() but not wake_all()
 *   BUG_FALLBACK_NO_WAKE the fallback adds 2 and does not wake
 */

#ifndef NMSG
#define NMSG 2
#endif
#ifndef NWAIT
#define NWAIT 2
#endif
#ifndef MAXDEATHS
#define MAXDEATHS 1
#endif

byte word = 0;
byte write_seq = 0;
bool slot_done = false;   /* message write_seq + 1 complete, not yet announced */
bool asleep[NWAIT];
byte wtoken[NWAIT];       /* the token each waiter took (T1) */
byte wnext[NWAIT];        /* each waiter's next_ */
bool locked = false;
bool owner_dead = false;
byte deaths = 0;

#define DIE \
  if \
  :: deaths < MAXDEATHS -> atomic { deaths++; locked = false; owner_dead = true }; goto restart \
  :: true \
  fi

inline futex_wake() {
  atomic {
    i = 0;
    do
    :: i < NWAIT -> asleep[i] = false; i++
    :: else -> break
    od
  }
}

/* named_event::set, with a death point between its steps */
inline event_set() {
  fallback = false;
  /* S1 */
  cur = word;
  DIE;
  do
  :: /* S2 */
    atomic {
      if
      :: word == cur -> word = (cur / 2) * 2 + 2; ok = true
      :: else -> cur = word; ok = false
      fi
    };
    if
    :: ok -> break
    :: else -> skip
    fi
  :: fallback = true; break   /* the tries are used up */
  od;
  DIE;
  if
  :: fallback ->
    /* S4 */
    word = word + 2;
    DIE;
#ifndef BUG_FALLBACK_NO_WAKE
    futex_wake()
#else
    skip
#endif
  :: else ->
    /* S3 */
#ifndef BUG_NO_WAKE
    if
    :: (cur % 2) == 1 -> futex_wake()
    :: else -> skip
    fi
#else
    skip
#endif
  fi
}

active proctype publisher() {
  byte cur, i;
  bool ok, fallback, recover;
restart:
  do
  :: (write_seq < NMSG || owner_dead) ->
    /* U1 */
    atomic { !locked -> locked = true; recover = owner_dead };
    if
    :: recover ->
      /* V1 */
      if
      :: slot_done -> atomic { write_seq++; slot_done = false }
      :: else -> skip
      fi;
      DIE;
      /* V2 */
      event_set();
      DIE;
      /* V3 */
#ifndef BUG_RECOVERY_NO_WAKE
      futex_wake();
#endif
      DIE;
      owner_dead = false
    :: else -> skip
    fi;
    if
    :: write_seq < NMSG ->
      /* U2 */
      slot_done = true;
      DIE;
      /* U3 */
      atomic { write_seq++; slot_done = false };
      DIE;
      /* U4 */
      event_set();
      DIE
    :: else -> skip
    fi;
    /* U5 */
    locked = false
  :: else -> break
  od
}

proctype waiter(byte me) {
  byte t, cur;
  bool ok;
  wnext[me] = 1;   /* subscribed before the first publish */
  do
  :: wnext[me] > NMSG -> break
  :: else ->
    /* T1 */
    t = (word / 2) * 2;
    wtoken[me] = t;
    /* T2 */
    if
    :: write_seq >= wnext[me] -> wnext[me]++   /* read one message */
    :: else ->
      do
      :: /* T3 */
        cur = word;
        if
        :: (cur / 2) * 2 != t -> break
        :: else -> skip
        fi;
        /* T4 */
        if
        :: (cur % 2) == 0 ->
          atomic {
            if
            :: word == cur -> word = cur + 1; ok = true
            :: else -> ok = false
            fi
          };
          if
          :: !ok -> goto again
          :: else -> skip
          fi
        :: else -> skip
        fi;
        /* T5 */
        atomic {
#ifndef BUG_NO_RECHECK
          if
          :: word == ((cur / 2) * 2 + 1) -> asleep[me] = true
          :: else -> skip   /* EAGAIN */
          fi
#else
          asleep[me] = true
#endif
        };
end_sleep:
        !asleep[me];
again:
        skip
      od
    fi
  od
}

init {
  byte n;
  atomic {
    n = 0;
    do
    :: n < NWAIT -> run waiter(n); n++
    :: else -> break
    od
  }
}

/* At quiescence: no waiter asleep past its token's generation, nor with an
 * unread message published. */
active proctype monitor() {
  byte j;
  timeout ->
  j = 0;
  do
  :: j < NWAIT ->
    assert(!asleep[j] || ((word / 2) * 2 == wtoken[j] && write_seq < wnext[j]));
    j++
  :: else -> break
  od
}
