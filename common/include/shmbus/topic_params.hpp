#pragma once
/// \file
/// The parameters of one topic, in one struct: what a broker is asked to
/// create (`broker_options::topics`), what the bus registry records, what the
/// topic's segment declares and what a client reports (`bus::topics()`,
/// `publisher::topic()`). Shared memory holds them in a fixed-width form of
/// their own, converted in exactly one place (shmbus/detail/layout.hpp).

#include <cstdint>
#include <string>

namespace shmbus {

/// Subscriber slots a topic has unless configured otherwise.
inline constexpr std::uint32_t default_max_subscribers = 64;

struct topic_params {
  std::string name;
  std::uint64_t max_message_size = 4096;  ///< bytes: the largest payload
  std::uint32_t depth = 1;                ///< 1 = latest value, N = ring of N
  std::uint32_t type_size = 0;            ///< declared payload type size, 0 = raw bytes
  std::uint32_t max_subscribers = default_max_subscribers;
  /// 0: a plain topic. N: a keyed topic: every message names a key (1-63
  /// bytes, up to N distinct ones), and the topic keeps each key's latest
  /// value beside the ring of `depth` updates.
  std::uint32_t key_capacity = 0;
  [[nodiscard]] bool keyed() const noexcept { return key_capacity != 0; }

  friend bool operator==(const topic_params&, const topic_params&) = default;
};

}  // namespace shmbus
