/*
 * shmbus subscriber registration and reaping (docs/design.md "Crash
 * recovery: a subscriber dies", "Models").
 *
 * An entry's state word is generation << 2 | phase (free 0, claimed 1,
 * live 2); every change bumps the generation (layout.hpp sub_next).
 *
 * Checked properties (assertions, exhaustive safety search):
 *   - an unregistering subscriber frees only its own registration, never
 *     one a later subscriber made on the same entry;
 *   - a reaper frees only a registration whose process is dead;
 *   - an entry's stats are written only by the subscriber that holds it
 *     (STRICT_STATS only: see below).
 *
 * Model <-> code (common/src/subscriber_table.cpp unless said otherwise):
 *   state[e], owner_pid[e]  subscriber_entry::state / pid (layout.hpp)
 *   holder[e]            ghost: the subscriber whose registration is the
 *                        entry's current generation (0: none)
 *   alive[s]             the registered process of subscriber s exists
 *                        (platform::is_alive: pid + start time)
 *   subscriber           subscriber_port::open -> subscriber_table::claim;
 *                        subscriber_port::account / ~subscriber_port
 *                        (subscriber_port.cpp)
 *     G1 scan            `cur = e.state.load(acquire)`; phase free ->
 *     G2 claim           `CAS(cur, sub_next(cur, sub_claimed))`
 *     G3 fill            `e.pid.store(me.pid)`, stats zeroed
 *     G4 live            `registered = sub_next(sub_next(cur, claimed), live)`;
 *                        `e.state.store(registered, release)`
 *     G5 full            no free entry: reap(), scan again
 *                        once
 *     G6 daemonise       the registered process exits, the subscriber lives
 *                        on in its child (fork; the parent exits): alive = 0
 *     G7 account         record() -> `owned()`: `state == registered`, else the
 *                        entry is lost and never written again; then the
 *                        stats stores (read_seq, missed, received)
 *     G8 unregister      `CAS(registered, sub_next(registered, sub_free))`,
 *                        once; failure = not ours any more, left alone.
 *                        BUG_PHASE_ONLY: the code before issue 9:
 *                        `while (phase(cur) == live && !CAS(cur, next(cur,
 *                        free)))` from a fresh load, which frees whichever
 *                        registration is live on the entry.
 *     A subscriber may also crash anywhere (it then never unregisters; one
 *     killed between G2 and G4 leaks its entry, as documented).
 *   reaper               subscriber_table::reap (broker_port::reap, broker
 *                        maintain(), and G5)
 *     H1 look            `cur = e.state.load(acquire)`; phase != live -> skip
 *     H2 liveness        `is_alive(pid)`; alive -> skip
 *     H3 free            `CAS(cur, sub_next(cur, sub_free))`: the
 *                        generation in `cur` makes it fail if the entry
 *                        changed hands since H1
 *
 * STRICT_STATS additionally asserts that G7's stores land only in an entry
 * the writer still holds. The check and the stores are separate steps, so
 * a subscriber reaped (its process looked dead) right after its check can
 * still write one round of stats into the entry's next registration: the
 * model finds that window, which docs/design.md documents (stats only; no
 * ownership or message is affected). The ctest test expects it to fail.
 */

#ifndef NENT
#define NENT 1
#endif
#define NSUB 2   /* subscribers 1 and 2; subscriber 1 may daemonise */

#define FREE 0
#define CLAIMED 1
#define LIVE 2
#define PHASE(s) ((s) % 4)
#define NEXT(s, ph) (((s) / 4 + 1) * 4 + (ph))

byte state[NENT];
byte owner_pid[NENT];
byte holder[NENT];
byte stats_by[NENT];       /* ghost: who wrote the entry's stats last */
bool alive[NSUB + 1];

inline reap() {
  r = 0;
  do
  :: r < NENT ->
    /* H1 */
    rc = state[r];
    if
    :: PHASE(rc) == LIVE ->
      /* H2 */
      rp = owner_pid[r];
      if
      :: !alive[rp] ->
        /* H3 */
        atomic {
          if
          :: state[r] == rc ->
            assert(holder[r] != 0 && !alive[holder[r]]);
            state[r] = NEXT(rc, FREE);
            holder[r] = 0
          :: else -> skip
          fi
        }
      :: else -> skip
      fi
    :: else -> skip
    fi;
    r++
  :: else -> break
  od
}

proctype subscriber(byte me) {
  byte e, cur, registered, round, r, rc, rp;
  bool ok, mine;
  round = 0;
scan:
  e = 0;
  do
  :: e < NENT ->
    /* G1 */
    cur = state[e];
    if
    :: PHASE(cur) == FREE ->
      /* G2 */
      atomic {
        if
        :: state[e] == cur -> state[e] = NEXT(cur, CLAIMED); ok = true
        :: else -> ok = false
        fi
      };
      if
      :: ok -> break
      :: else -> skip
      fi
    :: else -> skip
    fi;
    e++
  :: else -> break
  od;
  if
  :: e == NENT ->
    /* G5 */
    if
    :: round == 0 -> round = 1; reap(); goto scan
    :: else -> goto finish   /* too_many_subscribers */
    fi
  :: else -> skip
  fi;
  /* G3 */
  owner_pid[e] = me;
  stats_by[e] = 0;
  /* G4 */
  registered = NEXT(NEXT(cur, CLAIMED), LIVE);
  atomic { state[e] = registered; holder[e] = me };
  mine = true;
  do
  :: /* G6 */
    me == 1 && alive[me] -> alive[me] = false
  :: /* crash: never unregisters; its entry stays live until reaped */
    alive[me] -> alive[me] = false; goto finish
  :: /* G7 */
    mine ->
    if
    :: state[e] == registered ->
#ifdef STRICT_STATS
      atomic { assert(holder[e] == me); stats_by[e] = me }
#else
      stats_by[e] = me
#endif
    :: else -> mine = false
    fi
  :: break
  od;
  /* G8 */
#ifndef BUG_PHASE_ONLY
  if
  :: mine ->
    atomic {
      if
      :: state[e] == registered ->
        assert(holder[e] == me);
        state[e] = NEXT(registered, FREE);
        holder[e] = 0
      :: else -> skip
      fi
    }
  :: else -> skip
  fi;
#else
  do
  :: cur = state[e];
    if
    :: PHASE(cur) != LIVE -> break
    :: else ->
      atomic {
        if
        :: state[e] == cur ->
          assert(holder[e] == me);
          state[e] = NEXT(cur, FREE);
          holder[e] = 0;
          ok = true
        :: else -> ok = false
        fi
      };
      if
      :: ok -> break
      :: else -> skip
      fi
    fi
  od;
#endif
finish:
  skip
}

active proctype broker() {
  byte r, rc, rp, passes;
  passes = 0;
  do
  :: passes < 3 -> reap(); passes++
  :: else -> break
  od
}

init {
  atomic {
    alive[1] = true;
    alive[2] = true;
    run subscriber(1);
    run subscriber(2)
  }
}
