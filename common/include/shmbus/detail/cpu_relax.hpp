#pragma once
/// \file
/// A CPU pause hint for spin loops (busy-poll waits, benchmark spins).
///
/// Busy-poll must not make system calls, but a bare loading loop floods the
/// core's memory pipeline and, on SMT machines, starves the sibling thread;
/// the pause hint avoids both and costs tens of cycles. Where no hint is
/// known the fallback yields, which is a system call but keeps the loop
/// correct.

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
#elif !(defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__)))
#include <thread>
#endif

namespace shmbus::detail {

/// Tells the CPU this thread is spinning on memory written by another core.
inline void cpu_relax() noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_ia32_pause();
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
  _mm_pause();
#elif defined(__GNUC__) && (defined(__aarch64__) || defined(__arm__))
  __asm__ __volatile__("yield" ::: "memory");
#else
  std::this_thread::yield();
#endif
}

}  // namespace shmbus::detail
