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
  subscriber_port(subscriber_port&& o) noexcept;
  subscriber_port& operator=(subscriber_port&& o) noexcept;
  ~subscriber_port();

  [[nodiscard]] bool is_open() const noexcept { return seg_.is_open(); }
  [[nodiscard]] const topic_params& params() const noexcept { return seg_.params(); }
  /// Closed, or its broker replaced: see topic_segment::gone.
  [[nodiscard]] bool gone() const noexcept { return seg_.gone(); }
  [[nodiscard]] std::uint64_t missed_total() const noexcept { return missed_total_; }
  [[nodiscard]] std::uint64_t received_total() const noexcept { return received_total_; }
  /// A message newer than the cursor is there.
  [[nodiscard]] bool available() const noexcept { return seg_.newest() >= next_; }

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
  void release() noexcept;

  topic_segment seg_;
  registration reg_;
  std::uint64_t next_ = 1;            // sequence of the next message to deliver
  std::uint64_t pending_missed_ = 0;  // skips found by reads that delivered nothing
  std::uint64_t missed_total_ = 0;
  std::uint64_t received_total_ = 0;
};

template <class F>
bool subscriber_port::read_in_place(F&& f, std::error_code& ec) {
  message_info delivered;
  const read_status status = seqlock_read(
      seg_.ring(), next_, delivered,
      [&](const message_info& meta, std::span<const std::byte> payload) {
        message_info told = meta;
        told.missed += pending_missed_;
        f(static_cast<const message_info&>(told), payload);
        return true;
      },
      ec);
  if (status != read_status::ok) {
    pending_missed_ += delivered.missed;
    if (!ec && gone()) ec = make_error_code(errc::topic_closed);
    return false;
  }
  delivered.missed += pending_missed_;
  pending_missed_ = 0;
  account(delivered);
  return true;
}

}  // namespace shmbus::detail
