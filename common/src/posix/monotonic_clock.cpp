// platform::monotonic_ns(): CLOCK_MONOTONIC, read from the TSC where the
// kernel's own clock source is an invariant TSC.
//
// Why: the vDSO's clock_gettime reads the same counter, but ordered (lfence
// or rdtscp) and through its data page's seqlock: ~26 ns on the reference
// machine against ~10 ns for a bare rdtsc, and the timestamp is read on the
// critical path of every publish (docs/performance.md, issue 11).
//
// How it stays the kernel's clock: each thread keeps an anchor (a TSC value
// and the CLOCK_MONOTONIC reading taken with it) and a rate (ns per tick,
// 32.32 fixed point) measured against CLOCK_MONOTONIC over the last 10 ms to
// 1 s, and renews the anchor every millisecond. Between anchors it
// extrapolates: the error is the anchor's (the bracketing kernel reads must
// be within max_anchor_ns of each other, else it is retried) plus the rate's
// error over at most a millisecond, so any two processes agree to within a
// microsecond, NTP slewing included (at its 500 ppm maximum that is 0.5 us
// per millisecond). Per thread, so there is nothing to share or lock; a
// thread's readings never decrease.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>

#include "shmbus/platform/process.hpp"

#if defined(__x86_64__)
#include <x86intrin.h>
#define SHMBUS_HAVE_TSC 1
#endif

namespace shmbus::platform {

std::int64_t kernel_monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

#ifdef SHMBUS_HAVE_TSC
namespace {

// 128-bit products: ticks x (ns per tick << 32). (__extension__: GCC and
// Clang have the type; -Wpedantic would name it non-standard.)
__extension__ using u128 = unsigned __int128;

constexpr std::int64_t reanchor_ns = 1'000'000;     // renew the anchor after 1 ms
constexpr std::int64_t first_rate_ns = 10'000'000;  // the first rate: over >= 10 ms
constexpr std::int64_t rate_span_ns = 100'000'000;  // later ones: over >= 100 ms
// A longer span may hide a pause of the clock the rate is measured against
// (CLOCK_MONOTONIC stops in suspend; the TSC need not): start a new one.
constexpr std::int64_t max_rate_span_ns = 1'000'000'000;
constexpr std::int64_t max_anchor_ns = 2'000;  // bracketing kernel reads at most 2 us apart
constexpr int anchor_attempts = 8;

// The kernel keeps the TSC as its clock source only when it found the
// counter invariant and synchronised across CPUs (and switches away when its
// watchdog sees otherwise); the flags say the counter neither changes rate
// nor stops in deep sleep.
bool tsc_is_the_kernels_clock() noexcept {
  try {
    if (const char* env = std::getenv("SHMBUS_CLOCK"); env != nullptr && std::strcmp(env, "kernel") == 0) return false;
    std::ifstream source("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    std::string name;
    if (!(source >> name) || name != "tsc") return false;
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);)
      if (line.rfind("flags", 0) == 0)
        return (line + " ").find(" constant_tsc ") != std::string::npos &&
               (line + " ").find(" nonstop_tsc ") != std::string::npos;
  } catch (...) {
  }
  return false;
}

// Decided when the library loads, not at the first reading: that may come
// in a process that allows itself no more system calls by then (a seccomp
// filter; tests/posix/test_no_syscalls.cpp), and the decision reads files.
// A reading taken before this initialiser ran uses the kernel's clock.
const bool g_use_tsc = tsc_is_the_kernels_clock();

bool use_tsc() noexcept { return g_use_tsc; }

struct thread_clock {
  std::uint64_t anchor_tsc = 0;
  std::int64_t anchor_ns = 0;
  std::uint64_t rate = 0;  // ns per tick << 32; 0 until measured
  std::uint64_t base_tsc = 0;
  std::int64_t base_ns = 0;
  bool have_base = false;
  std::uint64_t valid_ticks = 0;  // how long the anchor serves, in ticks
  std::int64_t last = 0;          // the last reading: none below it
};

thread_local thread_clock t_clock;

struct anchor {
  std::uint64_t tsc;
  std::int64_t ns;
  bool tight;  // the kernel reads were close enough to trust the midpoint
};

// A TSC reading and the kernel's time at that moment: the midpoint of two
// kernel reads around it, retried while they are far apart (preempted).
anchor take_anchor() noexcept {
  anchor best{0, 0, false};
  std::int64_t best_width = INT64_MAX;
  for (int i = 0; i < anchor_attempts; ++i) {
    const std::int64_t before = kernel_monotonic_ns();
    const std::uint64_t tsc = __rdtsc();
    const std::int64_t after = kernel_monotonic_ns();
    if (after - before < best_width) {
      best_width = after - before;
      best = {tsc, before + (after - before) / 2, best_width <= max_anchor_ns};
    }
    if (best.tight) break;
  }
  return best;
}

std::int64_t renew(thread_clock& c) noexcept {
  const anchor a = take_anchor();
  if (!a.tight) {
    // Preempted on every attempt: no anchor to extrapolate from; the
    // kernel's time, and another try at the next call.
    c.valid_ticks = 0;
    return kernel_monotonic_ns();
  }
  const std::int64_t span = a.ns - c.base_ns;
  if (!c.have_base || a.tsc <= c.base_tsc || span > max_rate_span_ns) {
    c.base_tsc = a.tsc;
    c.base_ns = a.ns;
    c.have_base = true;
  } else if (span >= (c.rate == 0 ? first_rate_ns : rate_span_ns)) {
    const auto ticks = static_cast<u128>(a.tsc - c.base_tsc);
    c.rate = static_cast<std::uint64_t>((static_cast<u128>(span) << 32) / ticks);
    c.base_tsc = a.tsc;
    c.base_ns = a.ns;
  }
  c.anchor_tsc = a.tsc;
  c.anchor_ns = a.ns;
  c.valid_ticks = c.rate == 0 ? 0 : static_cast<std::uint64_t>((static_cast<u128>(reanchor_ns) << 32) / c.rate);
  return a.ns;
}

}  // namespace

std::int64_t monotonic_ns() noexcept {
  if (!use_tsc()) return kernel_monotonic_ns();
  thread_clock& c = t_clock;
  const std::uint64_t elapsed = __rdtsc() - c.anchor_tsc;
  std::int64_t now;
  if (elapsed < c.valid_ticks) {
    now = c.anchor_ns + static_cast<std::int64_t>((static_cast<u128>(elapsed) * c.rate) >> 32);
  } else {
    // Also taken when the counter reads below the anchor (elapsed wraps):
    // another CPU's counter a few ticks behind.
    now = renew(c);
  }
  if (now < c.last) now = c.last;
  c.last = now;
  return now;
}

const char* clock_source() noexcept { return use_tsc() ? "tsc" : "kernel"; }

#else

std::int64_t monotonic_ns() noexcept { return kernel_monotonic_ns(); }
const char* clock_source() noexcept { return "kernel"; }

#endif

}  // namespace shmbus::platform
