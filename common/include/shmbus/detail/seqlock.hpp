#pragma once
/// \file
/// The seqlock on a topic's ring of slots: how a publisher writes a slot
/// (`write_begin` / `write_end`) and the one read loop every read path uses
/// (`seqlock_read`: copy, zero-copy view, latest value). docs/design.md
/// ("The seqlock") argues why it is correct; tests/model/seqlock.pml checks it.
///
/// Inline, because the read is the subscriber's hot path.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include "shmbus/detail/layout.hpp"
#include "shmbus/error.hpp"
#include "shmbus/types.hpp"

namespace shmbus::detail {

/// Test-only: called by a reader right after it loaded `write_seq` (the
/// argument), before it looks at the slot, so a test can make that load
/// stale by publishing, killing and recovering meanwhile. Null in production.
inline void (*read_hook)(std::uint64_t write_seq) = nullptr;

/// `busy` (a key's value only, read_value): rewritten under the reader on
/// every attempt; try again.
enum class read_status { ok, empty, buffer_too_small, busy };

/// What a read's visitor decides about the message it was shown: `take` it
/// (copied; the cursor moves past it), decline it as `too_small` for the
/// caller's buffer (the cursor stays on it), or `skip` it (a key the reader
/// does not follow, or an update its snapshot holds already: the cursor
/// moves past it and the read looks at the next one, uncopied).
enum class visit_action { take, too_small, skip };

/// A keyed message's key: its index in the topic's key table and the key's
/// own update count (key_seq: 1, 2, 3 ... per key). Both 0 on plain topics.
struct slot_keys {
  std::uint32_t key = 0;
  std::uint64_t key_seq = 0;
};

/// A topic's ring as readers and writers use it: where it lies in this
/// process's mapping, and its geometry from the validated private copy of
/// the parameters (never re-read from shared memory).
struct ring_view {
  const a_u64* write_seq = nullptr;  ///< in the topic header
  std::byte* slots = nullptr;
  std::uint64_t slot_stride = 0;
  std::uint32_t slot_count = 0;
  std::uint32_t depth = 0;
  std::uint64_t max_message_size = 0;

  [[nodiscard]] slot_header& slot(std::uint64_t seq) const noexcept {
    return *reinterpret_cast<slot_header*>(slots + (seq % slot_count) * slot_stride);
  }
  [[nodiscard]] static std::byte* payload(slot_header& s) noexcept { return reinterpret_cast<std::byte*>(&s + 1); }
  /// Newest complete message (0 = none).
  [[nodiscard]] std::uint64_t newest() const noexcept { return write_seq->load(std::memory_order_seq_cst); }
};

// ---- writer (holds the publish right) --------------------------------------

/// Marks slot `s` as being written with message `seq`: the odd marker first,
/// and the release fence keeps every later store (key, payload, size) from
/// becoming visible before it, so a reader that saw the slot's old word
/// again after reading any of them knows it read the old message whole. A
/// keyed message's key index is one of those stores: stored before the
/// marker, a reader could pair the old payload with the new key
/// (tests/model/keyed.pml -DBUG_KEY_BEFORE_BEGIN).
inline void write_begin(slot_header& s, std::uint64_t seq, std::uint32_t key = 0) noexcept {
  s.seq.store(2 * seq - 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  s.key.store(key, std::memory_order_relaxed);
}

/// Completes message `seq` in slot `s` (payload already copied in).
inline void write_end(slot_header& s, std::uint64_t seq, std::uint64_t size, std::int64_t timestamp_ns,
                      std::uint64_t key_seq = 0) noexcept {
  s.size.store(static_cast<std::uint32_t>(size), std::memory_order_relaxed);
  s.timestamp_ns.store(timestamp_ns, std::memory_order_relaxed);
  s.key_seq.store(key_seq, std::memory_order_relaxed);
  s.seq.store(2 * seq, std::memory_order_release);
}

// ---- reader ----------------------------------------------------------------

namespace seqlock_detail {

// A reader lapped this many times in a row by the publisher gives up for
// now (reports nothing) rather than spin without bound.
inline constexpr unsigned max_read_attempts = 1000;

// Decides what to do when a slot's word does not match: a lapped slot means
// retry further ahead; a word that can never match, or too many retries,
// ends the attempt (`ec` set only for corruption). A complete slot holds
// 2*seq and a slot's word never decreases (recovery leaves a torn slot's odd
// marker), so anything below 2*wanted for a message at or before write_seq
// was never written by a publisher.
inline bool may_retry(std::uint64_t slot_word, std::uint64_t wanted, unsigned& attempts, std::error_code& ec) noexcept {
  if (slot_word < 2 * wanted) {
    ec = make_error_code(errc::corrupt_segment);
    return false;
  }
  return ++attempts < max_read_attempts;
}

}  // namespace seqlock_detail

namespace seqlock_detail {
// Messages a read skips (visit_action::skip) before it returns empty-handed
// and lets its caller decide (wait, or read again): a filtering reader
// behind a fast publisher still returns.
inline constexpr unsigned max_skips_per_read = 4096;
}  // namespace seqlock_detail

/// The one seqlock read. Finds the message at cursor `next` (or, when `next`
/// has fallen out of the ring, the oldest retained one), calls
/// `visit(meta, keys, payload)` on the slot in place, then validates; a slot
/// overwritten meanwhile is retried further ahead. `visit` returns a
/// visit_action and must treat the bytes as possibly torn until this
/// returns: a copy is used only after validation, and a skip decided on a
/// torn key is undone (the slot is visited again). `meta.missed` counts the
/// messages lost to overruns, whatever the status; the cursor and the count
/// move together, so no loss is missed or counted twice. If `visit` throws,
/// `next` is unchanged.
template <class Visit>
read_status seqlock_read(const ring_view& ring, std::uint64_t& next, message_info& meta, Visit&& visit,
                         std::error_code& ec) {
  clear_error(ec);
  std::uint64_t skipped = 0;  // lost to overruns
  std::uint64_t want = next;
  for (unsigned attempts = 0, skips = 0;;) {
    const std::uint64_t w = ring.newest();
    if (read_hook != nullptr) read_hook(w);
    if (want > w) break;
    // Exactly `depth` messages are guaranteed retained: w-depth+1 .. w.
    const std::uint64_t oldest = w >= ring.depth ? w - ring.depth + 1 : 1;
    const std::uint64_t seq = want < oldest ? oldest : want;
    skipped += seq - want;
    want = seq;
    slot_header& s = ring.slot(seq);
    const std::uint64_t v1 = s.seq.load(std::memory_order_acquire);
    if (v1 != 2 * seq) {
      if (!seqlock_detail::may_retry(v1, seq, attempts, ec)) break;
      continue;
    }
    const std::uint64_t size = s.size.load(std::memory_order_relaxed);
    const slot_keys keys{s.key.load(std::memory_order_relaxed), s.key_seq.load(std::memory_order_relaxed)};
    meta = message_info{};
    meta.sequence = seq;
    meta.timestamp_ns = s.timestamp_ns.load(std::memory_order_relaxed);
    meta.size = static_cast<std::size_t>(size);
    meta.missed = skipped;
    const bool sane = size <= ring.max_message_size;
    const visit_action action =
        sane ? visit(static_cast<const message_info&>(meta), keys,
                     std::span<const std::byte>(ring_view::payload(s), static_cast<std::size_t>(size)))
             : visit_action::too_small;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.seq.load(std::memory_order_relaxed) != v1) {  // lapped while visiting
      if (!seqlock_detail::may_retry(v1 + 1, seq, attempts, ec)) break;
      continue;
    }
    if (!sane) {
      ec = make_error_code(errc::corrupt_segment);
      break;
    }
    if (action == visit_action::skip) {
      want = seq + 1;
      if (++skips == seqlock_detail::max_skips_per_read) break;
      continue;
    }
    next = seq + (action == visit_action::take ? 1 : 0);
    return action == visit_action::take ? read_status::ok : read_status::buffer_too_small;
  }
  // Nothing delivered: keep the cursor's progress and the loss, reported
  // with the next delivery.
  next = want;
  meta.missed = skipped;
  return read_status::empty;
}

}  // namespace shmbus::detail
