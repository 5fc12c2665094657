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
/// meaning across reboots or machines. Where Linux's clock source is an
/// invariant TSC (x86-64), read from the TSC and calibrated against
/// CLOCK_MONOTONIC every millisecond: the same clock to within a microsecond,
/// at about 10 ns a read instead of 26 (`SHMBUS_CLOCK=kernel` reads the
/// kernel's clock every time instead). Never decreases within a thread.
[[nodiscard]] std::int64_t monotonic_ns() noexcept;

}  // namespace shmbus
