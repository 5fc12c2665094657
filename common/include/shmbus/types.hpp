#pragma once
/// \file
/// The values the topic protocol reports and takes: what a delivered message
/// carries (message_info), a topic's live figures (topic_stats) and how a
/// subscriber waits (wait_strategy). Included by shmbus/client.hpp.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/topic_params.hpp"

namespace shmbus {

/// A topic as the broker declared it.
using topic_info = topic_params;

/// One live subscriber of a topic, as it last reported itself.
struct subscriber_stats {
  std::uint64_t pid = 0;
  std::uint64_t last_read = 0;  ///< sequence it consumed last (at subscribe: the newest then)
  std::uint64_t received = 0;   ///< messages it consumed
  std::uint64_t missed = 0;     ///< messages it was told it missed (overrun or conflated)
  bool waiting = false;         ///< blocked in wait() right now
};

/// Live figures of one topic, read from its segment. Counters only grow
/// while the broker runs; rates come from two snapshots.
struct topic_stats {
  topic_info info;
  std::uint64_t published = 0;  ///< sequence of the newest message
  std::uint64_t bytes_published = 0;
  unsigned live_subscribers = 0;              ///< registered subscribers whose process runs
  std::uint64_t mutex_recoveries = 0;         ///< publishers that died holding the mutex or the exclusive right
  std::uint64_t torn_discarded = 0;           ///< half-written messages those recoveries discarded
  std::int64_t last_publish_ns = 0;           ///< platform::monotonic_ns() of the last publish; 0 = never
  std::uint64_t exclusive_pid = 0;            ///< pid holding the exclusive publish right; 0 = none
  std::uint32_t keys = 0;                     ///< keyed topics: keys in use (of info.key_capacity)
  std::vector<subscriber_stats> subscribers;  ///< the live ones

  /// Messages published but not yet consumed by the slowest live
  /// subscriber (0 without subscribers). Past `info.depth` it is losing
  /// messages.
  [[nodiscard]] std::uint64_t slowest_lag() const noexcept {
    std::uint64_t lag = 0;
    for (const auto& s : subscribers)
      if (published > s.last_read && published - s.last_read > lag) lag = published - s.last_read;
    return lag;
  }
  /// Messages the live subscribers were told they missed, summed.
  [[nodiscard]] std::uint64_t missed() const noexcept {
    std::uint64_t n = 0;
    for (const auto& s : subscribers) n += s.missed;
    return n;
  }
};

/// Facts about one delivered message.
struct message_info {
  std::uint64_t sequence = 0;     ///< 1, 2, 3 ... per topic, set by the publisher
  std::int64_t timestamp_ns = 0;  ///< when publish() was called: shmbus::monotonic_ns() (shmbus/clock.hpp), ns
  std::size_t size = 0;           ///< payload bytes
  /// Messages this subscriber lost right before this one (overrun). A
  /// filtered subscriber of a keyed topic: updates of this message's key
  /// lost since the one it delivered before.
  std::uint64_t missed = 0;
  /// Keyed topics: the message's key (a view of the subscriber's own copy,
  /// valid while the subscriber lives); empty on plain topics.
  std::string_view key;
  /// Keyed topics: the key's update count (1, 2, 3 ...) this message made.
  std::uint64_t key_seq = 0;
  /// Delivered from a snapshot (a join or a resynchronisation): the key's
  /// latest value at that time, not an update from the stream.
  bool snapshot = false;
};

/// One key of a keyed topic (subscriber::keys()).
struct key_stats {
  std::string key;
  std::uint64_t sequence = 0;     ///< of the message that wrote its latest value
  std::int64_t timestamp_ns = 0;  ///< of that message
  std::size_t size = 0;           ///< its payload bytes
  std::uint64_t updates = 0;      ///< messages published under this key (its key_seq)
};

/// How a subscriber waits for its next message.
enum class wait_mode {
  /// Sleep in the kernel (futex / event). An idle subscriber uses no CPU; the
  /// publisher pays a wake system call, and the subscriber a scheduler
  /// wake-up, for each message that finds it asleep.
  block,
  /// Spin on the topic's sequence word with a CPU pause hint. Lowest latency
  /// and no system call on either side, but one core stays busy while idle:
  /// for subscribers that own a pinned core.
  busy_poll,
  /// Busy-poll for `wait_strategy::spin`, then block: messages that come
  /// quickly are caught at busy-poll latency, a quiet topic costs only the
  /// spin per wait.
  spin_then_block,
};

/// A wait mode and, for `spin_then_block`, how long to spin before sleeping.
struct wait_strategy {
  wait_mode mode = wait_mode::block;
  std::chrono::nanoseconds spin = std::chrono::microseconds(50);  ///< spin_then_block only

  [[nodiscard]] static constexpr wait_strategy blocking() noexcept { return {wait_mode::block, {}}; }
  [[nodiscard]] static constexpr wait_strategy busy_polling() noexcept { return {wait_mode::busy_poll, {}}; }
  [[nodiscard]] static constexpr wait_strategy spin_then_blocking(std::chrono::nanoseconds spin_for) noexcept {
    return {wait_mode::spin_then_block, spin_for};
  }
};

}  // namespace shmbus
