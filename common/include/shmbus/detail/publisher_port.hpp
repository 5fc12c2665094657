#pragma once
/// \file
/// The publisher's share of the topic protocol: publishing under the topic
/// mutex and recovering from a publisher that died holding it.
/// docs/design.md ("Publishing" and "A publisher dies") argues why it is
/// correct; tests/model/seqlock.pml checks it.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "shmbus/detail/topic_segment.hpp"

namespace shmbus::detail {

/// What the mutex recovery inside a publish found, for the caller to log.
struct recovery_report {
  bool recovered = false;            ///< this publish recovered a dead publisher's mutex
  std::uint64_t recoveries = 0;      ///< recoveries on this topic so far
  std::uint64_t torn_discarded = 0;  ///< half-written messages discarded so far
};

class publisher_port {
 public:
  publisher_port() = default;
  explicit publisher_port(topic_segment seg) noexcept : seg_(std::move(seg)) {}
  /// Opens topic `declared` (as the registry declares it) of broker `instance` on `bus` for publishing.
  static publisher_port open(std::string_view bus, std::uint64_t instance, const topic_params& declared,
                             std::error_code& ec, std::string& what);

  [[nodiscard]] const topic_segment& segment() const noexcept { return seg_; }

  /// Publishes one message under the mutex; recovers a mutex whose owner
  /// died (and says so in `report`). Returns the new sequence, or 0 with
  /// `ec` set: message_too_large, type_size_mismatch (the topic declares a
  /// type size and the payload is another size), topic_closed.
  std::uint64_t publish(std::span<const std::byte> payload, std::error_code& ec,
                        recovery_report* report = nullptr) noexcept;

  /// Publishers that died holding the mutex, recovered so far.
  [[nodiscard]] std::uint64_t mutex_recoveries() const noexcept;

 private:
  void recover_after_owner_death() noexcept;
  void copy_payload(std::byte* dst, std::span<const std::byte> payload) noexcept;

  topic_segment seg_;
};

}  // namespace shmbus::detail
