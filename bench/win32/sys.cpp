// Windows: thread affinity, GetProcessTimes, GetSystemInfo. There is no
// cross-process futex (WaitOnAddress works within one process only), so the
// reference transport offers busy-poll alone here.
#include "../sys.hpp"

#include <windows.h>

namespace shmbus::bench::sys {

unsigned cpu_count() noexcept {
  DWORD_PTR process = 0, system = 0;
  if (!::GetProcessAffinityMask(::GetCurrentProcess(), &process, &system)) return 1;
  unsigned n = 0;
  for (; process != 0; process &= process - 1) ++n;
  return n > 0 ? n : 1;
}

std::string pin_thread(unsigned cpu) {
  DWORD_PTR process = 0, system = 0;
  if (!::GetProcessAffinityMask(::GetCurrentProcess(), &process, &system)) return "GetProcessAffinityMask failed";
  unsigned seen = 0;
  for (unsigned bit = 0; bit < sizeof(DWORD_PTR) * 8; ++bit) {
    const DWORD_PTR mask = DWORD_PTR{1} << bit;
    if ((process & mask) == 0) continue;
    if (seen++ != cpu) continue;
    if (::SetThreadAffinityMask(::GetCurrentThread(), mask) == 0) return "SetThreadAffinityMask failed";
    return {};
  }
  return "no CPU #" + std::to_string(cpu) + " among the " + std::to_string(seen) + " allowed";
}

void unpin_thread() noexcept {
  DWORD_PTR process = 0, system = 0;
  if (::GetProcessAffinityMask(::GetCurrentProcess(), &process, &system))
    ::SetThreadAffinityMask(::GetCurrentThread(), process);
}

std::int64_t process_cpu_ns() noexcept {
  FILETIME created, exited, kernel, user;
  if (!::GetProcessTimes(::GetCurrentProcess(), &created, &exited, &kernel, &user)) return 0;
  auto ticks = [](const FILETIME& f) {
    return static_cast<std::int64_t>((static_cast<std::uint64_t>(f.dwHighDateTime) << 32) | f.dwLowDateTime);
  };
  return (ticks(kernel) + ticks(user)) * 100;  // 100 ns units
}

std::int64_t thread_cpu_ns() noexcept {
  FILETIME created, exited, kernel, user;
  if (!::GetThreadTimes(::GetCurrentThread(), &created, &exited, &kernel, &user)) return 0;
  auto ticks = [](const FILETIME& f) {
    return static_cast<std::int64_t>((static_cast<std::uint64_t>(f.dwHighDateTime) << 32) | f.dwLowDateTime);
  };
  return (ticks(kernel) + ticks(user)) * 100;  // 100 ns units, updated at each clock tick
}

// Windows keeps no per-thread count of involuntary switches.
std::int64_t involuntary_switches() noexcept { return -1; }

std::string machine_description() {
  SYSTEM_INFO si;
  ::GetSystemInfo(&si);
  return std::to_string(si.dwNumberOfProcessors) + " CPUs, Windows";
}

void prepare_process() noexcept {}

// The parent's child_process handles terminate subscribers it abandons; a
// killed parent's orphans would need a job object, which this does not set up.
void die_with_parent() noexcept {}

std::string load_average() { return {}; }

bool has_futex() noexcept { return false; }

void futex_wait(std::atomic<std::uint32_t>&, std::uint32_t, std::optional<nanoseconds>) {
  fail("no cross-process futex on Windows");
}

void futex_wake_all(std::atomic<std::uint32_t>&) noexcept {}

}  // namespace shmbus::bench::sys
