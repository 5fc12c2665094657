#include "shmbus/detail/key_follower.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>

#include "shmbus/error.hpp"

namespace shmbus::detail {
namespace {

// Snapshots that keep meeting a key rewritten under them, retried before
// the caller is told to try again.
constexpr unsigned max_value_tries = 100;
// Snapshots taken again because the publisher lapped the ring meanwhile.
constexpr unsigned max_snapshot_tries = 4;
// Baseline attempts for a filtered stream whose cursor may move (subscribe).
constexpr unsigned max_baseline_tries = 16;

// A visitor that copies nothing: for what a value's header says.
constexpr auto header_only = [](const message_info&, const slot_keys&, std::span<const std::byte>) noexcept {
  return true;
};

}  // namespace

key_follower::key_follower(const key_table_view& keys, const ring_view& ring, std::span<const std::string> filter)
    : keys_(keys), ring_(ring), filter_(filter.begin(), filter.end()) {}

bool key_follower::resolve(std::uint32_t index) noexcept {
  if (index < names_.size()) return true;
  if (index >= keys_.count()) return false;
  try {
    while (names_.size() <= index) {
      char bytes[max_key_size];
      std::size_t size = 0;
      if (!keys_.key_of(static_cast<std::uint32_t>(names_.size()), bytes, size)) return false;
      names_.emplace_back(bytes, size);
      follow_.push_back(follows(names_.back()) ? 1 : 0);
      // A key added after this subscriber started had no update before: 0.
      last_key_seq_.push_back(0);
      snapshot_seq_.push_back(0);
    }
  } catch (const std::bad_alloc&) {
    return false;
  }
  return true;
}

visit_action key_follower::decide(const message_info& meta, const slot_keys& keys) noexcept {
  corrupt_ = false;
  if (!resolve(keys.key)) {
    // A torn slot (the read retries it), or an index the table never held.
    corrupt_ = true;
    return visit_action::too_small;
  }
  if (follow_[keys.key] == 0) return visit_action::skip;
  if (meta.sequence <= dedup_until_ && meta.sequence <= snapshot_seq_[keys.key]) return visit_action::skip;
  return visit_action::take;
}

void key_follower::describe(message_info& info, const slot_keys& keys) noexcept {
  described_ = keys;
  info.key = names_[keys.key];
  info.key_seq = keys.key_seq;
  if (!filtered()) return;
  const std::uint64_t last = last_key_seq_[keys.key];
  // Updates at or below the baseline were published while it was taken:
  // delivered, but no loss can be told before them.
  info.missed = last != unknown && keys.key_seq > last ? keys.key_seq - last - 1 : 0;
}

void key_follower::commit() noexcept {
  if (!filtered()) return;
  std::uint64_t& last = last_key_seq_[described_.key];
  if (last == unknown || described_.key_seq > last) last = described_.key_seq;
}

std::uint64_t key_follower::take_snapshot(std::uint64_t cursor, std::uint64_t pending_missed, std::uint64_t& skipped,
                                          std::error_code& ec) noexcept {
  // A snapshot the publisher lapped the ring during is exact still, but the
  // stream after it starts with a loss: taken again, a few times.
  for (unsigned tries = 1;; ++tries) {
    const std::uint64_t resume = copy_values(ec);
    if (resume == 0) return 0;
    if (ring_.newest() < resume + ring_.depth - 1 || tries == max_snapshot_tries) break;
  }
  commit_snapshot(cursor, pending_missed, skipped);
  return resume_;
}

std::uint64_t key_follower::copy_values(std::error_code& ec) noexcept {
  clear_error(ec);
  // Every update up to `newest` wrote its value before it was announced,
  // so each value read below is at least as new as that update: the
  // stream from newest+1, minus what the values hold, is exact.
  const std::uint64_t newest = ring_.newest();
  const std::uint32_t count = keys_.count();
  if (count > 0 && !resolve(count - 1)) {
    ec = make_error_code(errc::corrupt_segment);
    return 0;
  }
  std::vector<snapshot_value> values;
  std::unique_ptr<std::byte[]> bytes;
  std::size_t used = 0;
  try {
    // Room for every value at its largest, uninitialised: only the pages
    // the copies touch are ever faulted in, and nothing is moved as it fills.
    std::size_t followed = 0;
    for (std::uint32_t i = 0; i < count; ++i) followed += follow_[i];
    bytes.reset(new std::byte[std::max<std::size_t>(followed * ring_.max_message_size, 1)]);
    values.reserve(followed);
    for (std::uint32_t i = 0; i < count; ++i) {
      if (follow_[i] == 0) continue;
      snapshot_value v{{}, i, used};
      slot_keys keys;
      std::byte* dst = bytes.get() + used;
      const auto copy = [dst](const message_info&, const slot_keys&, std::span<const std::byte> payload) noexcept {
        if (!payload.empty()) std::memcpy(dst, payload.data(), payload.size());
        return true;
      };
      read_status status = read_status::busy;
      for (unsigned tries = 0; tries < max_value_tries && status == read_status::busy; ++tries)
        status = read_value(keys_, ring_, i, v.info, keys, copy, ec);
      if (ec) return 0;
      if (status == read_status::busy) {
        ec = std::make_error_code(std::errc::resource_unavailable_try_again);
        return 0;
      }
      if (status != read_status::ok) continue;  // no value yet: the stream brings its first
      used += v.info.size;
      v.info.key_seq = keys.key_seq;
      v.info.snapshot = true;
      values.push_back(v);
    }
  } catch (const std::bad_alloc&) {
    ec = make_error_code(std::errc::not_enough_memory);
    return 0;
  }
  snapshot_ = std::move(values);
  bytes_ = std::move(bytes);
  pos_ = 0;
  resume_ = newest + 1;
  return resume_;
}

void key_follower::commit_snapshot(std::uint64_t cursor, std::uint64_t pending_missed,
                                   std::uint64_t& skipped) noexcept {
  // Skipped: the updates that will never be delivered, neither one by one
  // nor as a key's latest value in this snapshot.
  skipped = 0;
  std::fill(snapshot_seq_.begin(), snapshot_seq_.end(), 0);
  dedup_until_ = 0;
  if (filtered())
    for (std::size_t i = 0; i < follow_.size(); ++i)
      if (follow_[i] != 0 && last_key_seq_[i] == unknown) last_key_seq_[i] = 0;  // no value: no update yet
  std::uint64_t delivered_between = 0;  // snapshot values among the messages cursor .. resume-1
  for (snapshot_value& v : snapshot_) {
    v.info.key = names_[v.index];
    snapshot_seq_[v.index] = v.info.sequence;
    dedup_until_ = std::max(dedup_until_, v.info.sequence);
    if (v.info.sequence >= cursor && v.info.sequence < resume_) ++delivered_between;
    if (filtered()) {
      // Filtered: each key's updates since the one it was last told of,
      // but the one this value is.
      std::uint64_t& last = last_key_seq_[v.index];
      if (v.info.key_seq > last) skipped += v.info.key_seq - last - 1;
      last = std::max(last, v.info.key_seq);
    }
  }
  // Unfiltered: the messages between the cursor and the resume point, but
  // those whose values the snapshot delivers.
  if (!filtered()) skipped = pending_missed + (resume_ > cursor ? resume_ - cursor : 0) - delivered_between;
}

read_status key_follower::next_snapshot(std::span<std::byte> dst, message_info& info) noexcept {
  const snapshot_value& v = snapshot_[pos_];
  info = v.info;
  if (v.info.size > dst.size()) return read_status::buffer_too_small;
  if (v.info.size != 0) std::memcpy(dst.data(), bytes_.get() + v.offset, v.info.size);
  advance();
  return read_status::ok;
}

void key_follower::advance() noexcept {
  if (++pos_ < snapshot_.size()) return;
  // All delivered: free the copy (a whole market's worth).
  std::vector<snapshot_value>().swap(snapshot_);
  bytes_.reset();
  pos_ = 0;
}

std::optional<std::uint64_t> key_follower::key_seq_at(std::uint32_t index, std::uint64_t at) noexcept {
  // The two halves hold the key's two newest values: the newer one at or
  // before `at` is the key's state then, unless both are newer.
  std::optional<std::uint64_t> best;
  std::uint64_t best_seq = 0;
  for (unsigned which = 0; which < 2; ++which) {
    slot_header& h = keys_.half(index, which);
    const std::uint64_t w = h.seq.load(std::memory_order_acquire);
    const std::uint64_t ks = h.key_seq.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (h.seq.load(std::memory_order_relaxed) != w || !key_detail::complete(w) || w / 2 > at) continue;
    if (w / 2 >= best_seq) best_seq = w / 2, best = ks;
  }
  if (best) return best;
  // No value at or before `at`: none at all means no update yet.
  const std::uint64_t w0 = keys_.half(index, 0).seq.load(std::memory_order_acquire);
  const std::uint64_t w1 = keys_.half(index, 1).seq.load(std::memory_order_acquire);
  if (!key_detail::complete(w0) && !key_detail::complete(w1)) return 0;
  return std::nullopt;
}

std::uint64_t key_follower::set_baselines(std::uint64_t cursor, bool movable) noexcept {
  for (unsigned tries = 0;; ++tries) {
    const std::uint64_t at = movable ? ring_.newest() : cursor - 1;
    const std::uint32_t count = keys_.count();
    if (count > 0) resolve(count - 1);
    bool exact = true;
    for (std::uint32_t i = 0; i < names_.size() && i < count; ++i) {
      if (follow_[i] == 0) continue;
      const auto ks = key_seq_at(i, at);
      last_key_seq_[i] = ks.value_or(unknown);
      exact = exact && ks.has_value();
    }
    // Exact when no key was rewritten twice meanwhile, and (keys added
    // after `at` have no update at or before it) none was added.
    if (!movable || (exact && ring_.newest() == at) || tries + 1 == max_baseline_tries) return at + 1;
  }
}

void key_follower::set_filter(std::span<const std::string> filter, std::uint64_t cursor) noexcept {
  // Every key the table holds now gets its place: a key only resolved
  // later is one added later, with no update before the cursor.
  const std::uint32_t count = keys_.count();
  if (count > 0) resolve(count - 1);
  const bool was_filtered = filtered();
  try {
    std::vector<std::uint8_t> before = follow_;
    filter_ = std::unordered_set<std::string>(filter.begin(), filter.end());
    for (std::size_t i = 0; i < names_.size(); ++i) follow_[i] = follows(names_[i]) ? 1 : 0;
    if (!filtered()) return;
    // Keys newly followed, and every key when the stream was unfiltered
    // (which counts no key's updates): counted from the cursor on.
    const std::uint64_t at = cursor - 1;
    for (std::uint32_t i = 0; i < names_.size(); ++i)
      if (follow_[i] != 0 && (before[i] == 0 || !was_filtered)) last_key_seq_[i] = key_seq_at(i, at).value_or(unknown);
  } catch (const std::bad_alloc&) {
  }
}

read_status key_follower::get(std::string_view key, std::span<std::byte> dst, message_info& info,
                              std::error_code& ec) noexcept {
  clear_error(ec);
  const auto index = keys_.find(key);
  if (!index) return read_status::empty;
  if (!resolve(*index)) {
    ec = make_error_code(errc::corrupt_segment);
    return read_status::empty;
  }
  slot_keys keys;
  const read_status status = read_value(
      keys_, ring_, *index, info, keys,
      [&](const message_info&, const slot_keys&, std::span<const std::byte> payload) noexcept {
        if (payload.size() > dst.size()) return false;
        if (!payload.empty()) std::memcpy(dst.data(), payload.data(), payload.size());
        return true;
      },
      ec);
  if (status == read_status::busy) ec = std::make_error_code(std::errc::resource_unavailable_try_again);
  info.key = names_[*index];
  info.key_seq = keys.key_seq;
  return status;
}

std::vector<key_stats> key_follower::list(std::error_code& ec) {
  clear_error(ec);
  std::vector<key_stats> out;
  const std::uint32_t count = keys_.count();
  if (count > 0 && !resolve(count - 1)) {
    ec = make_error_code(errc::corrupt_segment);
    return out;
  }
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    message_info meta;
    slot_keys keys;
    const read_status status = read_value(keys_, ring_, i, meta, keys, header_only, ec);
    if (status == read_status::busy) ec = std::make_error_code(std::errc::resource_unavailable_try_again);
    if (ec) return {};
    if (status != read_status::ok) continue;
    out.push_back({names_[i], meta.sequence, meta.timestamp_ns, meta.size, keys.key_seq});
  }
  return out;
}

}  // namespace shmbus::detail
