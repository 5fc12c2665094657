#pragma once
/// \file
/// The subscriber's share of the topic protocol: its registration in the
/// subscriber table, its cursor, the reads (all through the one seqlock
/// read, shmbus/detail/seqlock.hpp), what it reports of itself, and the one
/// wait loop (check, spin, sleep, deadlines, the slice after which it looks
/// whether its broker is gone). docs/design.md ("Reading", "Waiting")
/// argues why it is correct; tests/model/futex.pml and windows_wait.pml
/// check the wait.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "shmbus/detail/key_follower.hpp"
#include "shmbus/detail/topic_segment.hpp"
#include "shmbus/types.hpp"

namespace shmbus::detail {

class subscriber_port {
 public:
  using clock = std::chrono::steady_clock;

  subscriber_port() = default;
  /// Registers this process on `seg` (opened in the subscribe role); empty
  /// with `ec` = too_many_subscribers when all entries are live.
  subscriber_port(topic_segment seg, std::error_code& ec) noexcept;
  /// Opens topic `declared` (as the registry declares it) of broker `instance` on `bus` and registers.
  static subscriber_port open(std::string_view bus, std::uint64_t instance, const topic_params& declared,
                              std::error_code& ec, std::string& what);

  /// Keyed topics: follows only `keys` (every key when empty) and, with
  /// `snapshot`, delivers every followed key's latest value first, then the
  /// stream from exactly where the values leave off. Call once, right
  /// after opening. Errors: invalid_key (a plain topic, or a bad key).
  bool follow(std::span<const std::string> keys, bool snapshot, std::error_code& ec) noexcept;
  /// Keyed topics: follows `keys` from now on (every key when empty).
  bool set_keys(std::span<const std::string> keys, std::error_code& ec) noexcept;
  /// Keyed topics: drops what is unread, takes a new snapshot of the
  /// followed keys (delivered next, as at a join) and resumes the stream
  /// after it. Returns the updates skipped (never to be delivered, one by
  /// one or as a latest value, nor reported missed), or nullopt with `ec` set.
  std::optional<std::uint64_t> resync(std::error_code& ec) noexcept;
  /// Keyed topics: the latest value of `key` (see key_follower::get).
  read_status get(std::string_view key, std::span<std::byte> dst, message_info& info, std::error_code& ec) noexcept;
  /// Keyed topics: every key with a value.
  std::vector<key_stats> keys(std::error_code& ec);
  subscriber_port(subscriber_port&& o) noexcept;
  subscriber_port& operator=(subscriber_port&& o) noexcept;
  ~subscriber_port();

  [[nodiscard]] bool is_open() const noexcept { return seg_.is_open(); }
  [[nodiscard]] const topic_params& params() const noexcept { return seg_.params(); }
  /// Closed, or its broker replaced: see topic_segment::gone.
  [[nodiscard]] bool gone() const noexcept { return seg_.gone(); }
  [[nodiscard]] std::uint64_t missed_total() const noexcept { return missed_total_; }
  [[nodiscard]] std::uint64_t received_total() const noexcept { return received_total_; }
  /// A message newer than the cursor (or a snapshot value) is there.
  [[nodiscard]] bool available() const noexcept { return seg_.newest() >= next_ || keys_.snapshot_pending(); }

  /// Copies the next message into `dst`. `ok`: `info` describes it;
  /// `buffer_too_small`: `info` describes the message, which stays unread;
  /// `empty`: nothing new (`ec` = topic_closed once the topic is gone and
  /// everything published before was read).
  read_status read(std::span<std::byte> dst, message_info& info, std::error_code& ec) noexcept;
  /// Consumes the message a `buffer_too_small` read described, uncopied
  /// (a typed read does, so that one bad message cannot block the stream).
  void skip(const message_info& info) noexcept;
  /// Zero-copy read: calls `f(info, payload)` on the slot in place (again
  /// if the slot was overwritten meanwhile). False when nothing is new; if
  /// `f` throws the cursor stays.
  template <class F>
  bool read_in_place(F&& f, std::error_code& ec);
  /// Skips to the newest message and copies it (again, uncounted, if it
  /// was consumed already). False when nothing was ever published.
  bool latest(std::span<std::byte> dst, message_info& info, std::error_code& ec) noexcept;

  /// Waits until a message is available: the one wait loop. False on
  /// timeout, or with `ec` set (topic_closed, or the OS refused to wait).
  bool wait(std::optional<clock::duration> timeout, const wait_strategy& how, std::error_code& ec) noexcept;

 private:
  enum class poll_result { available, closed, timed_out };
  poll_result poll_until(std::optional<clock::time_point> until) noexcept;
  bool block_until(std::optional<clock::time_point> deadline, std::error_code& ec) noexcept;
  // Counts a delivery and records it in our entry (for `shmbus stat`).
  void account(const message_info& info) noexcept;
  // A stream read's decision on a message before it is copied: keyed
  // topics skip keys not followed and updates the snapshot holds.
  visit_action decide(const message_info& meta, const slot_keys& keys) noexcept {
    return keys_.active() ? keys_.decide(meta, keys) : visit_action::take;
  }
  // After a stream read: what it lost is reported with the message finally
  // delivered (filtered: that key's own losses), the key named, the
  // delivery counted; corrupt_segment for a key index the table never
  // held, topic_closed once everything before a close was read.
  void finish_read(read_status& status, message_info& info, const slot_keys& keys, std::error_code& ec) noexcept;
  // Counts a snapshot value's delivery.
  void account_snapshot() noexcept;
  // Keyed topics only: checks that this is one (invalid_key otherwise).
  bool keyed(std::error_code& ec) const noexcept;
  void release() noexcept;

  topic_segment seg_;
  registration reg_;
  std::uint64_t next_ = 1;            // sequence of the next message to deliver
  std::uint64_t pending_missed_ = 0;  // skips found by reads that delivered nothing
  std::uint64_t missed_total_ = 0;
  std::uint64_t received_total_ = 0;
  key_follower keys_;  // keyed topics; inactive otherwise
};

template <class F>
bool subscriber_port::read_in_place(F&& f, std::error_code& ec) {
  message_info delivered;
  slot_keys keys;
  if (keys_.snapshot_pending()) {
    // The snapshot is a private copy: a view of it is as good as any.
    keys_.peek_snapshot([&](const message_info& info, std::span<const std::byte> payload) { f(info, payload); });
    account_snapshot();
    return true;
  }
  read_status status = seqlock_read(
      seg_.ring(), next_, delivered,
      [&](const message_info& meta, const slot_keys& k, std::span<const std::byte> payload) {
        const visit_action action = decide(meta, k);
        if (action != visit_action::take) return action;
        keys = k;
        message_info told = meta;
        told.missed += pending_missed_;
        if (keys_.active()) keys_.describe(told, k);
        f(static_cast<const message_info&>(told), payload);
        return visit_action::take;
      },
      ec);
  finish_read(status, delivered, keys, ec);
  return status == read_status::ok;
}

}  // namespace shmbus::detail
