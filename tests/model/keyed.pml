/*
 * shmbus keyed topics (docs/design.md "Keyed topics", "Models"): the ring
 * of seqlock slots of seqlock.pml, plus per key a pair of value halves
 * (A, B) holding the key's newest value, a snapshot that reads every key's
 * value and then joins the ring's stream, a get that reads one key, and
 * the recovery of a publisher that died anywhere in a keyed publish.
 *
 * Processes: one publisher (killed at most MAXDEATHS (1) times between any
 * two steps while it holds the publish right, recovery included; a killed
 * one is followed by a new publisher that recovers, or by nobody ever
 * again), and one reader: the snapshot reader (snapshot, then the stream
 * to the end), or with -DGET a reader calling get on key 0 over and over.
 * Readers write nothing shared, so each is checked against the publisher
 * alone: two readers in one run would multiply the states and add no
 * interleaving that matters. Bounds: NPUB (3) announced messages, 2 keys
 * (each message's key a nondeterministic choice), K (2) ring slots, so the
 * ring wraps.
 *
 * Checked properties (assertions, invalid end states; exhaustive safety):
 *   (a) not torn: an accepted value or stream message is one complete
 *       write: both payload words carry the same write tag, and that
 *       write was of the sequence, key and key_seq the reader reports;
 *   (b) no phantom: an accepted value's sequence was announced with that
 *       key, by the very write whose payload was read (ann_tag: after a
 *       discard a sequence is reused, and the word alone cannot tell the
 *       two writes apart). Announced "later in the same publish" is
 *       allowed: a value accepted before its announcement (only a buggy
 *       read does that) waits, as ghost, until it is announced or nobody
 *       will ever announce it, and is checked then. Ghost (off with
 *       -DUSER_PROPS): every announced message's key_seq is exact (the
 *       count of announced messages of its key);
 *   (c) snapshot exactness: per key, what the snapshot reader applies
 *       (the snapshot's value, then the stream's messages not deduplicated)
 *       strictly increases (so nothing is applied twice), and, once nobody
 *       publishes any more and the reader has read the stream up to the
 *       final write_seq without an overrun, its last applied sequence per
 *       key is the last one announced for that key (nothing lost);
 *   (d) the get reader's values of key 0 never go backwards;
 *   and the stream's may_retry corruption branch is unreachable.
 *
 * Model <-> code (publisher: common/src/publisher_port.cpp; value halves:
 * value_pair; ring slots: common/include/shmbus/detail/seqlock.hpp):
 *   write_seq, publish_seq     topic_header::write_seq / publish_seq
 *   slot_seq[r]                ring slot r's seqlock word (2s-1 while
 *                              message s is written, 2s once complete)
 *   slot_key[r], slot_ks[r]    the slot's key index and key_seq
 *   slot_a[r], slot_b[r]       its payload, two words (seqlock.pml)
 *   vw/va/vb/vks[2*k+h]        value_pair of key k, half h (0: A, 1: B):
 *                              seqlock word, payload (two words), key_seq;
 *                              word 0: never written
 *   locked, owner_dead         the robust mutex (the publish right)
 *   publisher: P1..P8, V1..V4  publisher_port::publish_keyed
 *     P1 lock                  `mutex_.lock(ec)`; owner_died -> R1..R4
 *     P2 choose                `s = publish_seq + 1`, slot(s), the key;
 *                              value_pair: the target half (not the newest
 *                              complete one: an odd half if there is one,
 *                              else the smaller word, A on a tie) and
 *                              key_seq = the newest complete half's
 *                              key_seq + 1 (1 if none); the publisher is
 *                              the pair's only writer: one step
 *                              (BUG_TARGET_NEWEST: target the newest)
 *     P3 ring write_begin      `slot.seq = 2s-1`
 *     P4 key, key_seq, copy    the slot's key index and key_seq, the first
 *                              half of the payload: after write_begin (the
 *                              protocol as first written stored the key
 *                              before it: BUG_KEY_BEFORE_BEGIN)
 *     P5 rest of the copy
 *     P6 ring write_end        `slot.seq = 2s`
 *     V1 value write_begin     `half.seq = 2s-1`
 *     V2 copy, key_seq         first half of the payload, key_seq
 *     V3 rest of the copy
 *     V4 value write_end       `half.seq = 2s`
 *     P7 announce              `write_seq.store(s)` (ghost: ann_*)
 *     P8 own copy              `publish_seq.store(s)`; set(), unlock
 *   recovery: R1..R4           publisher_port::recover_after_owner_death
 *     R1 look                  `s = write_seq + 1`, ring slot(s)'s word;
 *                              if 2s, its key k and k's two value words
 *                              (all under the mutex: one step)
 *     R2 complete in the ring  announce: `write_seq = s`
 *        and in k's value (2s)
 *        else                  discard: a ring slot holding 2s is demoted
 *                              to 2s-1, a torn one stays odd; a torn value
 *                              half stays odd (the next publish of k
 *                              targets it). No value is ever complete for
 *                              a discarded sequence: V1..V4 follow P6.
 *        DISCARD               the other design: discard even a message
 *                              complete in both: R2v demotes the value
 *                              half holding 2s to 2s-1 ("un-phantom";
 *                              BUG_NO_DEMOTE omits it), then R2r the ring
 *                              slot (BUG_RING_FIRST: R2r before R2v)
 *     R3 resync                `publish_seq = write_seq`
 *     R4 consistent            `mutex_.consistent()`
 *   value read: G1..G7         value_pair seqlock read (snapshot, get)
 *     G1, G2 load the words    A's then B's (acquire)
 *     G3 pick                  the newest complete half h (even, nonzero,
 *                              the larger); none and a word 0 seen: the
 *                              key has no value; none, both odd: retry
 *     G4, G5 copy              payload and key_seq of h
 *     G6 load W                acquire fence; `W = write_seq`
 *     G7 re-check              h's word reloaded: accept iff unchanged and
 *                              seq(h) <= W, else retry (bounded: a
 *                              nondeterministic give-up after any retry)
 *        BUG_ODD_ABSENT        both words odd taken for "no value"
 *        BUG_RECHECK_BEFORE_W  G7 before G6
 *        BUG_NO_W_CHECK        no `seq(h) <= W`
 *        W_FIRST               the read proposed instead: G0 `W =
 *                              write_seq` before G1; G3 picks the newest
 *                              complete half with seq <= W (the older half
 *                              if the newer one is not announced yet);
 *                              G7 accepts iff the word is unchanged
 *                              (BUG_NO_W_CHECK: any complete half)
 *   snapshot: S1..S3, L1..L6   subscriber_port snapshot
 *     S1 `W0 = write_seq`      (BUG_W0_AFTER: after S2)
 *     S2 each key's value      G1..G7: v[k] (0: no value), applied
 *     S3 join                  `next = W0 + 1`
 *     L1 locate                `w = write_seq`; nothing new: wait; the
 *                              oldest retained `max(1, w - DEPTH + 1)`; an
 *                              older `next` is an overrun (messages lost:
 *                              the end check of (c) no longer applies)
 *     L2 first check           `slot.seq == 2 * next`, else retry (below
 *                              2*next: may_retry's corrupt_segment)
 *     L3, L4 copy              key, key_seq and payload
 *     L5 second check          acquire fence; the word unchanged, else retry
 *     L6 apply or dedup        skip (s, k) if `s <= v[k]` (BUG_DEDUP_LT:
 *                              `s < v[k]`), else apply; `next = s + 1`
 *   get: G1..G7 on key 0, again and again (-DGET; property (d)).
 *
 * Bug variants (each must be found; see tests/model/CMakeLists.txt):
 *   BUG_KEY_BEFORE_BEGIN  a stream reader of message s - K, past L2, copies
 *                         message s's key with s - K's payload, and L5
 *                         still sees 2(s-K): a torn message.
 *   BUG_NO_W_CHECK        a get accepts a value completed by a publisher
 *                         that then dies, with nobody after it: a value
 *                         never announced (and never in the stream).
 *   BUG_TARGET_NEWEST     the only complete value is overwritten: a get
 *                         goes back (to no value), a snapshot loses it.
 *   BUG_ODD_ABSENT        (4 messages) a get loads A while it is
 *                         rewritten, then B while it is rewritten after
 *                         A's write completed: no value, after a value.
 *   BUG_DEDUP_LT          the snapshot's value applied again from the stream.
 *   BUG_W0_AFTER          a message announced between S2 and S1 is neither
 *                         in the snapshot nor in the stream.
 *   DISCARD               with the read G1..G7 as specified: a value read
 *                         of the dead write of s (G4) straddles its
 *                         demotion and the new write of s into the same
 *                         half; G7 sees 2s again (ABA): the dead write's
 *                         payload is accepted (b), or half of each (a).
 *   DISCARD W_FIRST       holds; BUG_NO_DEMOTE and BUG_RING_FIRST (with 2
 *                         deaths: the second recovery sees the ring slot
 *                         odd and never looks at the value) are found.
 *
 * Spin's interleaving semantics is sequentially consistent, as in the
 * other models; the release / acquire argument is design.md's.
 */

#ifndef K
#define K 2             /* ring slots */
#endif
#define DEPTH (K - 1)   /* messages guaranteed retained (slot of w+1 is written) */
#ifndef NPUB
#define NPUB 3          /* announced messages */
#endif
#ifndef MAXDEATHS
#define MAXDEATHS 1
#endif
#define NKEYS 2
#define MAXATT (NPUB + MAXDEATHS + 1)
#define NSEQ (NPUB + 2)

byte write_seq = 0;
byte publish_seq = 0;
byte slot_seq[K];
byte slot_key[K];
byte slot_ks[K];
byte slot_a[K];
byte slot_b[K];
byte vw[2 * NKEYS];
byte va[2 * NKEYS];
byte vb[2 * NKEYS];
byte vks[2 * NKEYS];
bool locked = false;
bool owner_dead = false;
byte deaths = 0;
bool pub_over = false;   /* ghost: nobody will publish or recover any more */

/* Ghost state. Write attempt `t` (its tag, stored as the payload in the
 * ring slot and in the value half) is of message att_seq[t], key
 * att_key[t], key_seq att_ks[t]. Tag 0: nothing written. Announcement of
 * sequence s (P7, R2): ann_tag[s] the write announced (0: not announced),
 * ann_key[s] its key; kcount[k] messages of key k announced, last_ann[k]
 * the last one. */
byte att_seq[MAXATT];
byte att_key[MAXATT];
byte att_ks[MAXATT];
byte attempts = 0;
byte ann_tag[NSEQ];
byte ann_key[NSEQ];
byte kcount[NKEYS];
byte last_ann[NKEYS];

/* Announcement ghost, atomic with the write_seq store; key_seq exact. */
#define ANNOUNCE(sq, tg) \
  ann_tag[sq] = tg; ann_key[sq] = att_key[tg]; \
  kcount[att_key[tg]]++; last_ann[att_key[tg]] = sq; \
  GHOST(att_ks[tg] == kcount[att_key[tg]])

#ifdef USER_PROPS
#define GHOST(x) skip
#else
#define GHOST(x) assert(x)
#endif

/* A SIGKILL of the publish right's holder: the robust mutex is released
 * with owner_died set, and a new publisher starts (it will recover), or
 * nobody publishes on this topic again. */
#define DIE \
  if \
  :: deaths < MAXDEATHS -> \
    atomic { deaths++; locked = false; owner_dead = true }; \
    if \
    :: goto restart \
    :: pub_over = true; goto gone \
    fi \
  :: true \
  fi

active proctype publisher() {
  byte s, r, k, v, h, w0, w1, i, nc, ks, tag;
  bool recover, found;
restart:
  atomic { s = 0; r = 0; k = 0; v = 0; h = 0; w0 = 0; w1 = 0; i = 0; nc = 0; ks = 0; tag = 0; found = false };
  do
  :: (write_seq < NPUB || owner_dead) ->
    /* P1 CODE: publisher_port::publish_keyed (mutex_.lock) */
    atomic { !locked -> locked = true; recover = owner_dead };
    if
    :: recover ->
      /* R1 CODE: publisher_port::recover_after_owner_death (look) */
      atomic {
        s = write_seq + 1; r = s % K; v = slot_seq[r];
        found = false;
        if
        :: v == 2 * s ->
          k = slot_key[r];
          if
          :: vw[2 * k] == 2 * s -> found = true; h = 0
          :: vw[2 * k + 1] == 2 * s -> found = true; h = 1
          :: else -> skip
          fi
        :: else -> skip
        fi
      };
      DIE;
#ifndef DISCARD
      /* R2 CODE: publisher_port::recover_after_owner_death (announce or discard) */
      if
      :: found -> atomic { write_seq = s; ANNOUNCE(s, slot_a[r]) }
      :: !found && v == 2 * s -> slot_seq[r] = 2 * s - 1   /* demote the ring slot */
      :: else -> skip   /* torn (2s-1) or untouched: leave it */
      fi;
      DIE;
#else
#ifdef BUG_RING_FIRST
      /* R2r CODE: publisher_port::recover_after_owner_death (demote the ring slot) */
      if
      :: v == 2 * s -> slot_seq[r] = 2 * s - 1
      :: else -> skip
      fi;
      DIE;
#endif
      /* R2v CODE: publisher_port::recover_after_owner_death (un-phantom the value) */
      if
      :: found ->
#ifndef BUG_NO_DEMOTE
        vw[2 * k + h] = 2 * s - 1
#else
        skip
#endif
      :: else -> skip
      fi;
      DIE;
#ifndef BUG_RING_FIRST
      /* R2r CODE: publisher_port::recover_after_owner_death (demote the ring slot) */
      if
      :: v == 2 * s -> slot_seq[r] = 2 * s - 1
      :: else -> skip
      fi;
      DIE;
#endif
#endif
      /* R3 CODE: publisher_port::recover_after_owner_death (publish_seq) */
      atomic { publish_seq = write_seq; s = 0; r = 0; k = 0; v = 0; h = 0; found = false };
      DIE;
      /* R4 CODE: platform::named_mutex::consistent */
      owner_dead = false;
      if
      :: write_seq >= NPUB -> locked = false; break   /* the model's bound */
      :: else -> skip
      fi
    :: else -> skip
    fi;
    DIE;
    /* P2 CODE: publisher_port::publish_keyed (sequence, slot, key; value_pair target and key_seq) */
    atomic {
      s = publish_seq + 1; r = s % K;
      if
      :: k = 0
      :: k = 1
      fi;
      w0 = vw[2 * k]; w1 = vw[2 * k + 1];
      /* the newest complete half (2: none) */
      if
      :: w0 > 0 && w0 % 2 == 0 && (w1 % 2 == 1 || w0 >= w1) -> nc = 0
      :: w1 > 0 && w1 % 2 == 0 && (w0 % 2 == 1 || w1 > w0) -> nc = 1
      :: else -> nc = 2
      fi;
      /* the target half */
      if
      :: w0 % 2 == 1 -> h = 0
      :: w0 % 2 == 0 && w1 % 2 == 1 -> h = 1
#ifndef BUG_TARGET_NEWEST
      :: w0 % 2 == 0 && w1 % 2 == 0 && w0 <= w1 -> h = 0
      :: w0 % 2 == 0 && w1 % 2 == 0 && w0 > w1 -> h = 1
#else
      :: w0 % 2 == 0 && w1 % 2 == 0 && w0 >= w1 -> h = 0   /* the newest */
      :: w0 % 2 == 0 && w1 % 2 == 0 && w0 < w1 -> h = 1
#endif
      fi;
      i = 2 * k + h;
      if
      :: nc < 2 -> ks = vks[2 * k + nc] + 1
      :: else -> ks = 1
      fi;
      attempts++; tag = attempts; att_seq[tag] = s; att_key[tag] = k; att_ks[tag] = ks;
      w0 = 0; w1 = 0; nc = 0
    };
#ifdef BUG_KEY_BEFORE_BEGIN
    /* P4' the key index and key_seq stored before write_begin, as first written */
    atomic { slot_key[r] = k; slot_ks[r] = ks };
    DIE;
#endif
    /* P3 CODE: seqlock write_begin (ring slot) */
    slot_seq[r] = 2 * s - 1;
    DIE;
    /* P4 CODE: publisher_port::publish_keyed (slot key index, key_seq, copy) */
    atomic {
#ifndef BUG_KEY_BEFORE_BEGIN
      slot_key[r] = k; slot_ks[r] = ks;
#endif
      slot_a[r] = tag
    };
    DIE;
    /* P5 CODE: publisher_port::publish_keyed (rest of the copy) */
    slot_b[r] = tag;
    DIE;
    /* P6 CODE: seqlock write_end (ring slot) */
    slot_seq[r] = 2 * s;
    DIE;
    /* V1 CODE: value_pair write_begin (target half) */
    vw[i] = 2 * s - 1;
    DIE;
    /* V2 CODE: value_pair copy, key_seq */
    atomic { va[i] = tag; vks[i] = ks };
    DIE;
    /* V3 CODE: value_pair copy (rest) */
    vb[i] = tag;
    DIE;
    /* V4 CODE: value_pair write_end */
    vw[i] = 2 * s;
    DIE;
    /* P7 CODE: publisher_port::publish_keyed (write_seq.store) */
    atomic { write_seq = s; ANNOUNCE(s, tag) };
    DIE;
    /* P8 CODE: publisher_port::publish_keyed (publish_seq, set(), unlock) */
    atomic { publish_seq = s; s = 0; r = 0; k = 0; h = 0; i = 0; ks = 0; tag = 0 };
    DIE;
    locked = false
  :: else -> break
  od;
  pub_over = true;
gone:
  skip
}

/* (a), (b) for an accepted value of `key`: sequence rs (0: no value),
 * payload words a, b, key_seq rks. A value accepted before its
 * announcement (only without G6's check) waits, as ghost, until it is
 * announced or nobody will announce it, then is checked. */
inline check_value(key) {
  if
  :: rs > 0 ->
    assert(a == b && att_seq[a] == rs && att_key[a] == key && att_ks[a] == rks);   /* (a) */
    atomic { (ann_tag[rs] != 0 || pub_over) };
    assert(ann_tag[rs] == a && ann_key[rs] == key)                                 /* (b) */
  :: else -> skip
  fi
}

/* G1..G7: CODE value_pair seqlock read; ok = false: gave up. A half is a
 * candidate if its word is even and nonzero (complete) and, with W_FIRST,
 * its sequence is at most the W loaded first (G0). */
#if defined(W_FIRST) && !defined(BUG_NO_W_CHECK)
#define CAND(x) (x > 0 && x % 2 == 0 && x / 2 <= W)
#else
#define CAND(x) (x > 0 && x % 2 == 0)
#endif
inline read_value(key) {
  ok = false;
  do
  :: skip;
#ifdef W_FIRST
    /* G0 CODE: value_pair read (load write_seq first) */
    W = write_seq;
#endif
    /* G1 CODE: value_pair read (load A's word) */
    w0 = vw[2 * key];
    /* G2 CODE: value_pair read (load B's word) */
    w1 = vw[2 * key + 1];
    /* G3 CODE: value_pair read (pick the newest complete half) */
    if
    :: CAND(w0) && !(CAND(w1) && w1 > w0) -> h = 0; wh = w0
    :: CAND(w1) && !(CAND(w0) && w0 >= w1) -> h = 1; wh = w1
    :: else -> h = 2
    fi;
    if
#ifndef BUG_ODD_ABSENT
    :: h == 2 && (w0 == 0 || w1 == 0) ->
#else
    :: h == 2 ->   /* both odd taken for "no value" too */
#endif
      atomic { rs = 0; a = 0; b = 0; rks = 0; ok = true; w0 = 0; w1 = 0; W = 0 };
      break   /* no value */
    :: h == 2 && w0 != 0 && w1 != 0 -> skip   /* retry */
    :: else ->
      /* G4 CODE: value_pair read (copy, key_seq) */
      atomic { a = va[2 * key + h]; rks = vks[2 * key + h] };
      /* G5 CODE: value_pair read (rest of the copy) */
      b = vb[2 * key + h];
#if defined(W_FIRST)
      /* G7 CODE: value_pair read (acquire fence, reload the word) */
      w2 = vw[2 * key + h];
#elif !defined(BUG_RECHECK_BEFORE_W)
      /* G6 CODE: value_pair read (acquire fence, load write_seq) */
      W = write_seq;
      /* G7 CODE: value_pair read (reload the word) */
      w2 = vw[2 * key + h];
#else
      w2 = vw[2 * key + h];
      W = write_seq;
#endif
      if
#if !defined(BUG_NO_W_CHECK) && !defined(W_FIRST)
      :: w2 == wh && wh / 2 <= W ->
#else
      :: w2 == wh ->
#endif
        atomic { rs = wh / 2; ok = true; w0 = 0; w1 = 0; w2 = 0; wh = 0; W = 0; h = 0 };
        break
      :: else -> skip   /* retry */
      fi
    fi;
    /* bounded retry: give up after any retry */
    if
    :: true
    :: atomic { w0 = 0; w1 = 0; w2 = 0; wh = 0; W = 0; h = 0 }; break
    fi
  od
}

#ifndef GET
active proctype snapshot() {
  byte W0, key, next, w, seq, oldest, r, v1, v2, kk, ks;
  byte v[NKEYS];
  byte last[NKEYS];
  byte rs, rks, a, b, w0, w1, w2, wh, W, h;
  bool ok, overrun = false;
#ifndef BUG_W0_AFTER
  /* S1 CODE: subscriber_port snapshot (W0 = write_seq) */
  W0 = write_seq;
#endif
  /* S2 CODE: subscriber_port snapshot (each key's value) */
  key = 0;
  do
  :: key < NKEYS ->
    read_value(key);
    if
    :: !ok -> goto gave_up
    :: else -> skip
    fi;
    check_value(key);
    atomic { v[key] = rs; last[key] = rs; rs = 0; rks = 0; a = 0; b = 0; key++ }
  :: else -> break
  od;
#ifdef BUG_W0_AFTER
  W0 = write_seq;
#endif
  /* S3 CODE: subscriber_port snapshot (join the stream) */
  atomic { next = W0 + 1; W0 = 0 };
end_stream:
  do
  :: /* L1 CODE: seqlock_read (locate) */
    w = write_seq;
    if
    :: next > w ->
      if
      :: pub_over && write_seq < next ->
        /* the end: (c) nothing lost, unless the stream overran */
        if
        :: !overrun -> assert(last[0] == last_ann[0] && last[1] == last_ann[1])
        :: else -> skip
        fi;
        break
      :: else ->
        /* nothing new: wait (futex.pml) */
        w = 0;
        (write_seq >= next || pub_over)
      fi
    :: else ->
      if
      :: w >= DEPTH -> oldest = w - DEPTH + 1
      :: else -> oldest = 1
      fi;
      if
      :: next < oldest -> overrun = true; next = oldest
      :: else -> skip
      fi;
      seq = next; r = seq % K;
      /* L2 CODE: seqlock_read (first check) */
      v1 = slot_seq[r];
      if
      :: v1 != 2 * seq -> assert(v1 >= 2 * seq)   /* may_retry: else corrupt_segment */
      :: else ->
        /* L3 CODE: seqlock_read (copy: key, key_seq, payload) */
        atomic { kk = slot_key[r]; ks = slot_ks[r]; a = slot_a[r] };
        /* L4 CODE: seqlock_read (rest of the copy) */
        b = slot_b[r];
        /* L5 CODE: seqlock_read (acquire fence, second check) */
        v2 = slot_seq[r];
        if
        :: v2 == v1 ->
          /* L6 CODE: subscriber_port snapshot (dedup or apply) */
          assert(a == b && att_seq[a] == seq && att_key[a] == kk && att_ks[a] == ks);  /* (a) */
          assert(ann_tag[seq] == a);                                                  /* (b) */
          if
#ifndef BUG_DEDUP_LT
          :: seq <= v[kk] -> skip   /* in the snapshot already */
#else
          :: seq < v[kk] -> skip
#endif
          :: else ->
            assert(seq > last[kk]);   /* (c) increasing: never applied twice */
            last[kk] = seq
          fi;
          next = seq + 1
        :: else -> skip   /* overwritten during the copy: retry */
        fi
      fi;
      atomic { w = 0; seq = 0; oldest = 0; r = 0; v1 = 0; v2 = 0; kk = 0; ks = 0; a = 0; b = 0 }
    fi
  od;
gave_up:
  skip
}
#else

active proctype get() {
  byte prev = 0;
  byte rs, rks, a, b, w0, w1, w2, wh, W, h;
  bool ok;
end:
  do
  :: /* CODE: get (G1..G7 on key 0) */
    read_value(0);
    if
    :: ok ->
      check_value(0);
      assert(rs >= prev);   /* (d) never backwards */
      atomic { prev = rs; rs = 0; rks = 0; a = 0; b = 0 }
    :: else -> skip
    fi
  od
}
#endif
