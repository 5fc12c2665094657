#pragma once
// The benchmark's own platform layer: CPU pinning, CPU time, a futex for the
// reference transport, and a description of the machine. One implementation
// per OS (bench/posix/sys.cpp, bench/win32/sys.cpp), chosen by CMake.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "harness.hpp"

namespace shmbus::bench::sys {

/// CPUs this process may run on.
unsigned cpu_count() noexcept;

/// Pins the calling thread (and threads it creates later) to `cpu`. Returns
/// an empty string on success, else why it could not.
std::string pin_thread(unsigned cpu);
/// Lets the calling thread run on every CPU it could before pin_thread.
void unpin_thread() noexcept;

/// CPU time this process has used, all threads, in ns.
std::int64_t process_cpu_ns() noexcept;
/// CPU time the calling thread has used, in ns.
std::int64_t thread_cpu_ns() noexcept;
/// Times the calling thread was switched out against its will so far (a
/// system call: for the rare slow sample only), or -1 where the OS does not
/// count them per thread. Tells a preempted sample from a slow call.
std::int64_t involuntary_switches() noexcept;

/// CPU model, logical CPUs, OS and kernel, on one line.
std::string machine_description();
/// The system's 1-minute load average, where the OS keeps one ("" if not):
/// other work on the machine shows in every figure.
std::string load_average();

/// Process set-up for the benchmark: a write to a subscriber that died must
/// fail, not kill the publisher (POSIX: ignore SIGPIPE).
void prepare_process() noexcept;

/// Subscriber processes end with their parent, even if it is killed (a
/// busy-polling orphan would spin for ever). Linux: PR_SET_PDEATHSIG.
void die_with_parent() noexcept;

/// Whether futex_wait/futex_wake work across processes here (Linux: yes).
bool has_futex() noexcept;
/// Sleeps while `word == expected`, until woken or `timeout` passes.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::optional<nanoseconds> timeout);
/// Wakes every sleeper on `word`.
void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept;

}  // namespace shmbus::bench::sys
