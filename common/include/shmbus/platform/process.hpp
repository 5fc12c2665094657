#pragma once
/// \file
/// Process identity that survives PID reuse: a PID plus the process's start
/// time, so a recycled PID never makes a dead process look alive.

#include <chrono>
#include <cstdint>

namespace shmbus::platform {

struct process_identity {
  std::uint64_t pid = 0;
  std::uint64_t start_time = 0;  ///< OS-specific start stamp (Linux: jiffies since boot)
};

/// This process.
process_identity current_process() noexcept;

/// True when the process still runs (a process we may not signal counts as
/// alive); false when it is gone or its PID now names another process.
bool is_alive(const process_identity& p) noexcept;

/// Changes in a child made by fork() (POSIX: counted by a pthread_atfork
/// handler, so reading it is a load, not a system call); constant for a
/// process's life on Windows. What lets an object tied to the process that
/// made it (an exclusive publish right) notice it was inherited by a child.
std::uint64_t process_incarnation() noexcept;

/// Nanoseconds on the system-wide monotonic clock, comparable across
/// processes: CLOCK_MONOTONIC (Windows: QueryPerformanceCounter). Where the
/// kernel's own clock source is an invariant TSC (x86-64 Linux), it is read
/// from the TSC, scaled by a calibration against CLOCK_MONOTONIC that each
/// thread renews every millisecond: the same clock to within a microsecond
/// (tests/posix/test_clock.cpp), at the cost of an `rdtsc` instead of the
/// vDSO's ordered read (issue 11, docs/performance.md). Never decreases
/// within a thread. `SHMBUS_CLOCK=kernel` in the environment turns the TSC
/// off.
std::int64_t monotonic_ns() noexcept;

/// CLOCK_MONOTONIC (QueryPerformanceCounter) itself, read from the kernel's
/// clock every call: what monotonic_ns() is calibrated against.
std::int64_t kernel_monotonic_ns() noexcept;

/// Where monotonic_ns() comes from in this process: "tsc" or "kernel".
const char* clock_source() noexcept;

/// True when standard output is a terminal (for in-place redraws).
bool stdout_is_terminal() noexcept;

/// Waits up to `timeout` for SIGINT/SIGTERM/SIGHUP (Windows: Ctrl-C,
/// Ctrl-Break, console close, or `request_termination` from another
/// process). Returns true when one arrived. The first call installs the
/// handling; call it from one thread.
bool wait_for_termination_request(std::chrono::milliseconds timeout);

/// Asks process `pid` to shut down cleanly: SIGTERM on POSIX. Windows has
/// no signals and consoles cannot always carry Ctrl-Break, so a process
/// waiting in `wait_for_termination_request` also listens on a named event
/// (`Local\shmbus.stop.PID`) that this sets; other processes get
/// CTRL_BREAK_EVENT. Returns false when nothing could be delivered.
bool request_termination(std::uint64_t pid) noexcept;

}  // namespace shmbus::platform
