/* The seed's Windows wait protocol (before issue 9), kept to show that the
 * check of windows_wait.pml can fail: ctest ("model: windows wait, the old
 * protocol ...") requires this model to FAIL. The code it models is
 * common/src/win32/named_event.cpp at commit f3c183a (the seed plus a test
 * hook); line numbers below are of that file there.
 *
 *   spin -a windows_wait_old.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan
 *
 * K = 4 manual-reset events used in turn by generation, sleeper counts, a
 * "signaled" flag per event and a gate mutex:
 *
 *   set():   g += 1; if sleepers[g%K]: signaled = 1, SetEvent(event[g%K])
 *            n = (g+1)%K; if signaled[n]: if sleepers[n] == 0: ResetEvent(n)
 *            else: rearm(n): WaitForSingleObject(gate, 20 ms); ResetEvent(n)
 *   wait(t): k = (t+1)%K; sleepers[k] += 1; loop { take gate; if stale:
 *            ResetEvent(k); if g != t: release, done;
 *            SignalObjectAndWait(gate, event[k]); if g != t: done; stale = 1 }
 *
 * As in the new model there is no timeout on a waiter's sleep (no 200 ms
 * safety slice): a waiter left asleep for ever with its condition true is
 * an invalid end state. What the code does and the model keeps:
 *  - rearm()'s wait for the gate gives up after 20 ms when a waiter holds
 *    it (here: the gate is held -> the publisher may reset without it);
 *  - SignalObjectAndWait may release the gate before the caller waits
 *    (documented by Microsoft) unless ATOMIC_SOAW is defined.
 * Spin finds a loss (an invalid end state) with a waiter stopped while it
 * holds the gate after its check, and four publishes: the fourth re-arms,
 * without the gate, the event that the first signalled for it.
 */

#define K 4
#define WAITERS 2
#define ROUNDS 1
#define PUBLISHES 4

byte ws = 0;             /* write_seq                                      */
byte g = 0;              /* event_state::generation                        */
byte sleepers[K];        /* event_state::sleepers                          */
bit signaled[K];         /* event_state::signaled                          */
bit ev[K];               /* manual-reset kernel events                     */
byte gate = 0;           /* gate mutex: 0 free, else owner id              */
byte waiting[WAITERS];   /* 0, or 1 + the event a waiter is waiting on     */
bit sat[WAITERS];        /* that wait has been satisfied                   */

#define PUB 9

/* SetEvent satisfies every thread waiting on the event at that moment. */
inline set_event(k, w) {
  atomic {
    ev[k] = 1;
    w = 0;
    do
    :: w < WAITERS -> if :: waiting[w] == k + 1 -> sat[w] = 1 :: else -> skip fi; w++
    :: else -> break
    od
  }
}

active proctype publisher() {
  byte n = 0, k, nx, w;
  do
  :: n < PUBLISHES ->
     ws++;                                        /* TS publish: write_seq     */
     g++;                                         /* NE:250 set(): g += 1      */
     k = g % K;
     if
     :: sleepers[k] != 0 ->                       /* NE:252                    */
        signaled[k] = 1;                          /* NE:253                    */
        set_event(k, w)                           /* NE:255 SetEvent           */
     :: else -> skip
     fi;
     nx = (g + 1) % K;                            /* NE:258                    */
     if
     :: signaled[nx] == 0 -> skip                 /* NE:259                    */
     :: else ->
        if
        :: sleepers[nx] == 0 ->                   /* NE:260                    */
           ev[nx] = 0; signaled[nx] = 0           /* NE:266-267 ResetEvent     */
        :: else ->                                /* NE:270 rearm(next)        */
           if
           :: atomic { gate == 0 -> gate = PUB }; /* NE:279 got the gate       */
              ev[nx] = 0; signaled[nx] = 0;       /* NE:280-281                */
              gate = 0                            /* NE:282 ReleaseMutex       */
           :: gate != 0 ->                        /* NE:279 20 ms timeout      */
              ev[nx] = 0; signaled[nx] = 0        /* NE:280-281, without gate  */
           fi
        fi
     fi;
     n++
  :: else -> break
  od
}

proctype waiter(byte i) {
  byte round = 1, t, k;
  bit stale;
  do
  :: round <= ROUNDS ->
again:
     t = g;                                       /* CL prepare_wait           */
     if
     :: ws >= round -> assert(ws >= round); round++
     :: else ->
        k = (t + 1) % K;                          /* NE:184                    */
        sleepers[k]++;                            /* NE:188                    */
        stale = 0;
loop:
        atomic { gate == 0 -> gate = i + 1 };     /* NE:198 take the gate      */
        if
        :: stale -> ev[k] = 0; stale = 0          /* NE:201-208 ResetEvent     */
        :: else -> skip
        fi;
        if
        :: g != t ->                              /* NE:210                    */
           gate = 0;                              /* NE:211 ReleaseMutex       */
           sleepers[k]--;                         /* NE:191 guard              */
           goto again
        :: else -> skip
        fi;
        /* NE:223 before_sleep_hook, NE:224 SignalObjectAndWait(gate, ev[k]) */
#ifdef ATOMIC_SOAW
        atomic { gate = 0; waiting[i] = k + 1; sat[i] = ev[k] };
#else
        gate = 0;                                 /* releases the gate ...     */
        atomic { waiting[i] = k + 1; sat[i] = ev[k] };  /* ... then waits      */
#endif
        atomic { sat[i] == 1 -> waiting[i] = 0; sat[i] = 0 };  /* WAIT_OBJECT_0 */
        if
        :: g != t -> sleepers[k]--; goto again    /* NE:225-227 moved: done    */
        :: else -> stale = 1; goto loop           /* NE:228-229                */
        fi
     fi
  :: else -> break
  od
}

init {
  byte j = 0;
  atomic {
    do
    :: j < WAITERS -> run waiter(j); j++
    :: else -> break
    od
  }
}
