#pragma once
/// \file
/// The clock shmbus stamps messages with: `message_info::timestamp_ns` (and
/// `message::timestamp_ns()`) is `shmbus::monotonic_ns()` at the publish.
///
/// \code
///   const std::int64_t age_ns = shmbus::monotonic_ns() - m.timestamp_ns();
/// \endcode

#include <cstdint>

namespace shmbus {

/// Nanoseconds on the system-wide monotonic clock (CLOCK_MONOTONIC on
/// Linux, QueryPerformanceCounter on Windows): comparable across the
/// processes of one machine, unaffected by changes of the wall clock, with no
/// meaning across reboots or machines.
[[nodiscard]] std::int64_t monotonic_ns() noexcept;

}  // namespace shmbus
