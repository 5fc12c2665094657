/* The Windows wait protocol of shmbus as redesigned for issue 9 (item 10):
 * one auto-reset kernel event per waiter. Checked exhaustively by ctest
 * ("model: windows wait ..."; tests/model/CMakeLists_windows.cmake):
 *
 *   spin -a windows_wait.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan
 *
 * Property: no lost wake-up without the safety slice. The model has no
 * timeouts at all (no 200 ms slice, no deadline): a waiter sleeps until its
 * event is signalled. Every waiter wants ROUNDS messages and the publisher
 * publishes PUBLISHES >= ROUNDS, so every waiter's condition becomes true;
 * a waiter left asleep for ever is an invalid end state (a deadlock), and
 * the assertion after each round checks the condition really held.
 *
 * Spin interleaves whole statements: that is sequential consistency, which
 * is what the code's seq_cst operations give. Each shared-memory access of
 * the code is one statement here; each kernel call is one atomic step (the
 * kernel serialises SetEvent and the wait on one event).
 *
 * Code: common/src/win32/named_event.cpp (NE) and
 *       common/src/publisher_port.cpp (PP), common/src/topic_segment.cpp (TS),
 *       common/src/subscriber_port.cpp (SP).
 * Line numbers are those of the commit that last changed this file.
 *
 * Both waiters share one hint bit (the worst case of waiter i's bit being
 * i % 448: two waiters alias), so one waiter's announcement and another's
 * exchange interfere as much as they can.
 */

#ifndef WAITERS
#define WAITERS 2
#endif
#ifndef ROUNDS
#define ROUNDS 3
#endif
#define PUBLISHES ROUNDS  /* every publish is some waiter's last chance */
/* -DCRASH: a publisher is killed inside set() once, and the next recovers.
 * -DCLOSER: the broker closes the topic concurrently with the publishes. */

byte ws = 0;            /* topic_header::write_seq                        */
byte G = 0;             /* event_state::generation          (NE: struct)  */
bit hint = 0;           /* event_state::hint bits, shared by both waiters */
bit a[WAITERS];         /* subscriber_entry::sleeping: waiter announced   */
bit ev[WAITERS];        /* the auto-reset kernel event of each waiter     */
bit dying = 0;          /* the publisher is killed inside this set()      */
bit crashed = 0;        /* ... which happened once already                */

/* NE:282 set() -> NE:262 wake_announced(): after the generation bump (done by the
 * caller), look at the hint word; if it is not 0 exchange it with 0, then for
 * every waiter of its bits load its word and, if 1, exchange it with 0 and
 * SetEvent its event. */
inline wake_announced(j, x) {
  if
  :: hint != 0 ->                          /* NE:267 hint[w].load() != 0           */
     atomic { x = hint; hint = 0 };        /* NE:268 hint[w].exchange(0)          */
     if
     :: x != 0 ->
        j = 0;
        do
        :: j < WAITERS ->
           if
           :: a[j] != 0 ->                 /* NE:274 a.load() != 0                */
              atomic { x = a[j]; a[j] = 0 };   /* NE:274 a.exchange(0)           */
              if
              :: x != 0 && !dying -> ev[j] = 1 /* NE:276 SetEvent(handles[j])    */
              :: x != 0 && dying -> skip   /* killed before its SetEvent calls    */
              :: else -> skip
              fi
           :: else -> skip
           fi;
           j++
        :: else -> break
        od
     :: else -> skip
     fi
  :: else -> skip                          /* NE:267 hint word 0: no call      */
  fi
}

/* NE:303-312 wake_all(): SetEvent on every waiter's event. */
inline wake_all(j) {
  j = 0;
  do
  :: j < WAITERS -> ev[j] = 1; j++
  :: else -> break
  od
}

/* TS publish(): the message is made visible (write_seq store, seq_cst),
 * then event_.set() under the topic mutex; publishers are serialised by
 * that mutex, so one process publishing in turn models them all. Once, a
 * publisher may be killed inside set() after clearing the announcements and
 * before signalling anyone (the worst point); the next publisher then takes
 * the abandoned mutex and recovers (TS recover_after_owner_death: set(),
 * then wake_all()) before publishing. */
active proctype publisher() {
  byte n = 0, j, x;
  do
  :: n < PUBLISHES ->
#ifdef CRASH
     if
     :: !crashed -> dying = 1
     :: true -> skip
     fi;
#endif
     ws++;                                 /* PP:62 publish: write_seq.store    */
     G++;                                  /* NE:283 set(): generation += 1     */
     wake_announced(j, x);
     if
     :: dying ->                           /* killed; the next publisher:        */
        dying = 0; crashed = 1;
        G++;                               /* PP:100 recover: event().set()     */
        wake_announced(j, x);
        wake_all(j)                        /* PP:101 recover: wake_all()       */
     :: else -> skip
     fi;
     n++
  :: else -> break
  od
}

/* TS close() by the broker, not under the topic mutex, so concurrent with
 * publishers: set(), then wake_all(). The topic is closed, but waiters here
 * keep waiting for their messages: a wake-up lost to the race of two wakers
 * would still show. */
#ifdef CLOSER
active proctype closer() {
  byte j, x;
  G++;                                     /* TS:170 close: event_.set()        */
  wake_announced(j, x);
  wake_all(j)                              /* TS:171 close: event_.wake_all()   */
}
#endif

/* SP block_until() around NE wait(t, i). */
proctype waiter(byte i) {
  byte round = 1, t;
  do
  :: round <= ROUNDS ->
again:
     t = G;                                /* SP:167 event.prepare_wait()       */
     if
     :: ws >= round ->                     /* SP:168 available(): no sleep      */
        assert(ws >= round);
        round++
     :: else ->
        /* NE:212 wait(t, i), called at SP:179 */
announce:
        a[i] = 1;                          /* NE:227 announced.store(1)         */
        hint = 1;                          /* NE:228 hint[..].fetch_or(bit)     */
        if
        :: G != t ->                       /* NE:229 generation.load() != t     */
           a[i] = 0;                       /* NE:222 leave guard: store(0);     */
           goto again                      /*   return true: leaves, not asleep  */
        :: else -> skip
        fi;
        /* NE:238 before_sleep_hook, NE:239 WaitForSingleObject(event) with no
         * timeout: blocks until the event is signalled, and consumes it. Any
         * number of other steps may come between the check above and this. */
        atomic { ev[i] == 1 -> ev[i] = 0 };
        goto announce                      /* NE:240 WAIT_OBJECT_0 -> continue  */
     fi
  :: else -> break
  od
}

init {
  byte k = 0;
  atomic {
    do
    :: k < WAITERS -> run waiter(k); k++
    :: else -> break
    od
  }
}
