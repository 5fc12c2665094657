#pragma once
/// \file
/// A keyed topic's key table, as readers and writers use it: the key index
/// (open-addressing buckets over the key entries) and each key's latest
/// value, kept in a pair of slots so that a publisher rewriting a key never
/// destroys the value a reader is copying, nor, if it dies half-way, the
/// key's previous value. docs/design.md ("Keyed topics") argues why it is
/// correct; tests/model/keyed.pml checks it.
///
/// Every index and size read from shared memory is checked against the
/// validated geometry before it is used: a corrupt table is reported
/// (corrupt_segment), never followed.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>

#include "shmbus/detail/layout.hpp"
#include "shmbus/detail/seqlock.hpp"
#include "shmbus/error.hpp"

namespace shmbus::detail {

/// The hash of a key (FNV-1a, then a 64-bit finaliser so that the low bits,
/// which pick the bucket, depend on every byte).
inline std::uint64_t key_hash(std::string_view key) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : key) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

/// Test-only: called when a new key has been counted but before its bucket
/// is stored, so a test can kill the publisher exactly there. Null in production.
inline void (*insert_hook)() = nullptr;

/// Checks a key given by a caller: 1..max_key_size bytes.
inline bool valid_key(std::string_view key) noexcept { return !key.empty() && key.size() <= max_key_size; }

struct key_table_view {
  const a_u32* key_count = nullptr;  ///< in the topic header
  key_bucket* buckets = nullptr;
  key_entry* entries = nullptr;
  std::byte* values = nullptr;
  std::uint32_t bucket_count = 0;  ///< a power of two
  std::uint32_t capacity = 0;
  std::uint64_t value_stride = 0;

  [[nodiscard]] bool keyed() const noexcept { return capacity != 0; }

  /// Keys in the table, as far as it can be trusted: never above capacity.
  [[nodiscard]] std::uint32_t count() const noexcept {
    const std::uint32_t n = key_count->load(std::memory_order_acquire);
    return n < capacity ? n : capacity;
  }

  /// A copy of key `index`'s bytes, false if its entry is corrupt.
  /// `index` must be below count().
  bool key_of(std::uint32_t index, char (&out)[max_key_size], std::size_t& size) const noexcept {
    const key_entry& e = entries[index];
    size = e.size;
    if (size == 0 || size > max_key_size) return false;
    std::memcpy(out, e.bytes, size);
    return true;
  }

  /// The key's index, if the table holds it. Safe beside a writer adding
  /// keys: a bucket is stored only once its entry is complete.
  [[nodiscard]] std::optional<std::uint32_t> find(std::string_view key) const noexcept {
    return find(key, key_hash(key));
  }
  [[nodiscard]] std::optional<std::uint32_t> find(std::string_view key, std::uint64_t hash) const noexcept {
    const std::uint64_t mask = bucket_count - 1;
    const std::uint64_t tag = hash >> 32;
    std::uint64_t i = hash & mask;
    for (std::uint32_t probes = 0; probes < bucket_count; ++probes, i = (i + 1) & mask) {
      const std::uint64_t b = buckets[i].load(std::memory_order_acquire);
      if (b == 0) return std::nullopt;
      if ((b >> 32) != tag) continue;
      const std::uint64_t index = (b & 0xffffffffULL) - 1;
      if (index >= capacity) continue;  // corrupt bucket: not ours to follow
      const key_entry& e = entries[index];
      if (e.size == key.size() && std::memcmp(e.bytes, key.data(), key.size()) == 0)
        return static_cast<std::uint32_t>(index);
    }
    return std::nullopt;
  }

  // ---- writer (holds the publish right) ------------------------------------

  /// Adds `key` (not in the table) as entry count(): the entry, then the
  /// count, then the bucket, so a reader that finds the bucket finds a whole
  /// entry. Returns its index, or nullopt when the table is full.
  std::optional<std::uint32_t> insert(std::string_view key, std::uint64_t hash) const noexcept {
    const std::uint32_t n = key_count->load(std::memory_order_relaxed);
    if (n >= capacity) return std::nullopt;
    key_entry& e = entries[n];
    e.size = static_cast<std::uint8_t>(key.size());
    std::memcpy(e.bytes, key.data(), key.size());
    const_cast<a_u32*>(key_count)->store(n + 1, std::memory_order_release);
    if (insert_hook != nullptr) insert_hook();
    index_entry(n, hash);
    return n;
  }

  /// Stores entry `index`'s bucket: after a death between the count and the
  /// bucket (insert), recovery calls it for the last entry.
  void index_entry(std::uint32_t index, std::uint64_t hash) const noexcept {
    const std::uint64_t mask = bucket_count - 1;
    std::uint64_t i = hash & mask;
    // At most half the buckets are in use: an empty one comes soon.
    while (buckets[i].load(std::memory_order_relaxed) != 0) i = (i + 1) & mask;
    buckets[i].store((hash >> 32) << 32 | (std::uint64_t{index} + 1), std::memory_order_release);
  }

  // ---- values ----------------------------------------------------------------

  [[nodiscard]] slot_header& half(std::uint32_t index, unsigned which) const noexcept {
    return *reinterpret_cast<slot_header*>(values + (2 * std::uint64_t{index} + which) * value_stride);
  }
};

/// The ring and the key table of the data segment at `base`, laid out as
/// `g` (computed from the validated `p`) says: the one place that turns a
/// geometry into views (topic_segment, and the fuzz target).
inline ring_view ring_of(std::byte* base, const topic_params& p, const topic_geometry& g) noexcept {
  return {&header_of(base).write_seq, base + g.slots_offset, g.slot_stride, g.slot_count, p.depth, p.max_message_size};
}
/// Empty (keyed() false) for a plain topic.
inline key_table_view key_table_of(std::byte* base, const topic_params& p, const topic_geometry& g) noexcept {
  if (!p.keyed()) return {};
  return {&header_of(base).key_count,
          reinterpret_cast<key_bucket*>(base + g.buckets_offset),
          reinterpret_cast<key_entry*>(base + g.entries_offset),
          base + g.values_offset,
          g.bucket_count,
          p.key_capacity,
          g.slot_stride};
}

namespace key_detail {

inline bool complete(std::uint64_t word) noexcept { return word != 0 && word % 2 == 0; }

// The half holding the newest complete value whose message is announced
// (its sequence <= `announced`), or -1.
inline int newest_half(std::uint64_t w0, std::uint64_t w1, std::uint64_t announced) noexcept {
  const bool ok0 = complete(w0) && w0 / 2 <= announced, ok1 = complete(w1) && w1 / 2 <= announced;
  if (ok0 && ok1) return w0 > w1 ? 0 : 1;
  return ok0 ? 0 : ok1 ? 1 : -1;
}

}  // namespace key_detail

/// The writer's choice of half for key `index`'s next value: never the one
/// holding its newest complete value (a half-written one, left by a dead
/// publisher, is written over). `prev_key_seq` receives the newest value's
/// key_seq (0: none).
inline slot_header& value_target(const key_table_view& kt, std::uint32_t index, std::uint64_t& prev_key_seq) noexcept {
  slot_header& h0 = kt.half(index, 0);
  slot_header& h1 = kt.half(index, 1);
  const int newest = key_detail::newest_half(h0.seq.load(std::memory_order_relaxed),
                                             h1.seq.load(std::memory_order_relaxed), ~std::uint64_t{0});
  prev_key_seq = newest < 0 ? 0 : (newest == 0 ? h0 : h1).key_seq.load(std::memory_order_relaxed);
  return newest == 0 ? h1 : h0;
}

/// The one read of a key's value: the newest complete half whose message
/// had been announced when the read began (a value is written before its
/// message is announced, so a newer half may still wait for its
/// write_seq), visited in place as seqlock_read does, then validated.
/// write_seq is loaded first: a half whose word is still the same after the
/// visit then holds exactly the announced message that word names
/// (tests/model/keyed.pml, the W_FIRST read). `visit(meta, keys, payload)`
/// returns whether it took the value (false: buffer too small). `empty`:
/// the key has no announced value (it was added by a publish still under
/// way, or one that died and was discarded); `busy`: both halves were
/// rewritten under the reader on every attempt.
template <class Visit>
read_status read_value(const key_table_view& kt, const ring_view& ring, std::uint32_t index, message_info& meta,
                       slot_keys& keys, Visit&& visit, std::error_code& ec) {
  clear_error(ec);
  slot_header& h0 = kt.half(index, 0);
  slot_header& h1 = kt.half(index, 1);
  for (unsigned attempts = 0; attempts < seqlock_detail::max_read_attempts; ++attempts) {
    const std::uint64_t announced = ring.newest();
    const std::uint64_t w0 = h0.seq.load(std::memory_order_acquire);
    const std::uint64_t w1 = h1.seq.load(std::memory_order_acquire);
    const int which = key_detail::newest_half(w0, w1, announced);
    if (which < 0) {
      // A key's first value goes to half 0, so half 1 untouched means no
      // value was ever complete and announced. Otherwise both halves
      // changed between our loads (two odd words seen at different
      // times), or both are newer than `announced`: look again.
      if (w1 == 0) return read_status::empty;
      continue;
    }
    slot_header& s = which == 0 ? h0 : h1;
    const std::uint64_t v = which == 0 ? w0 : w1;
    const std::uint64_t size = s.size.load(std::memory_order_relaxed);
    keys = {index, s.key_seq.load(std::memory_order_relaxed)};
    meta = message_info{};
    meta.sequence = v / 2;
    meta.timestamp_ns = s.timestamp_ns.load(std::memory_order_relaxed);
    meta.size = static_cast<std::size_t>(size);
    const bool sane = size <= ring.max_message_size;
    const bool taken = sane && visit(static_cast<const message_info&>(meta), static_cast<const slot_keys&>(keys),
                                     std::span<const std::byte>(ring_view::payload(s), static_cast<std::size_t>(size)));
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.seq.load(std::memory_order_relaxed) != v) continue;  // rewritten while visiting
    if (!sane) {
      ec = make_error_code(errc::corrupt_segment);
      return read_status::empty;
    }
    return taken ? read_status::ok : read_status::buffer_too_small;
  }
  return read_status::busy;
}

}  // namespace shmbus::detail
