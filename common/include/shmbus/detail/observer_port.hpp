#pragma once
/// \file
/// The observer's share of the topic protocol: the one snapshot of a
/// topic's live figures that `bus::stats`, `broker::status` and `shmbus stat`
/// report. Read-only: an observer maps both segments read-only and writes
/// nothing.

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "shmbus/detail/topic_segment.hpp"
#include "shmbus/types.hpp"

namespace shmbus::detail {

/// The figures of `seg` now (each counter one relaxed load: the snapshot is
/// not atomic as a whole, and need not be).
topic_stats snapshot(const topic_segment& seg);

class observer_port {
 public:
  observer_port() = default;
  /// Opens topic `declared` (as the registry declares it) of broker `instance` on `bus` read-only.
  static observer_port open(std::string_view bus, std::uint64_t instance, const topic_params& declared,
                            std::error_code& ec, std::string& what);

  [[nodiscard]] topic_stats snapshot() const { return detail::snapshot(seg_); }

 private:
  explicit observer_port(topic_segment seg) noexcept : seg_(std::move(seg)) {}
  topic_segment seg_;
};

}  // namespace shmbus::detail
