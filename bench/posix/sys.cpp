// Linux: sched_setaffinity, CLOCK_PROCESS_CPUTIME_ID, /proc/cpuinfo, futex.
#include "../sys.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <fstream>

namespace shmbus::bench::sys {

namespace {
// The CPUs the process started with (a pinned thread's own mask is one CPU).
const cpu_set_t& initial_cpus() noexcept {
  static const cpu_set_t set = [] {
    cpu_set_t s;
    CPU_ZERO(&s);
    if (::sched_getaffinity(0, sizeof s, &s) != 0) CPU_SET(0, &s);
    return s;
  }();
  return set;
}
}  // namespace

std::string pin_thread(unsigned cpu) {
  const cpu_set_t& allowed = initial_cpus();
  // The cpu-th CPU we may use (a container may not start at CPU 0).
  unsigned seen = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &allowed)) continue;
    if (seen++ != cpu) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(c, &one);
    if (::sched_setaffinity(0, sizeof one, &one) != 0) return std::string("sched_setaffinity: ") + std::strerror(errno);
    return {};
  }
  return "no CPU #" + std::to_string(cpu) + " among the " + std::to_string(seen) + " allowed";
}

unsigned cpu_count() noexcept {
  const int n = CPU_COUNT(&initial_cpus());
  return n > 0 ? static_cast<unsigned>(n) : 1;
}

void unpin_thread() noexcept { ::sched_setaffinity(0, sizeof(cpu_set_t), &initial_cpus()); }

std::int64_t process_cpu_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t thread_cpu_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t involuntary_switches() noexcept {
  rusage u{};
  if (::getrusage(RUSAGE_THREAD, &u) != 0) return -1;
  return u.ru_nivcsw;
}

std::string machine_description() {
  std::string model = "unknown CPU";
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) model = line.substr(colon + 2);
      break;
    }
  }
  utsname u{};
  ::uname(&u);
  return model + ", " + std::to_string(cpu_count()) + " CPUs, " + u.sysname + " " + u.release + " " + u.machine;
}

void prepare_process() noexcept { ::signal(SIGPIPE, SIG_IGN); }

void die_with_parent() noexcept {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died before the call took effect.
  if (::getppid() == 1) ::_exit(1);
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one;
}

bool has_futex() noexcept { return true; }

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::optional<nanoseconds> timeout) {
  timespec rel{};
  if (timeout)
    rel = {static_cast<time_t>(timeout->count() / 1'000'000'000), static_cast<long>(timeout->count() % 1'000'000'000)};
  // Shared (not FUTEX_PRIVATE): the waker is another process. EAGAIN (the
  // word moved), EINTR and ETIMEDOUT all just return: the caller re-checks.
  ::syscall(SYS_futex, &word, FUTEX_WAIT, expected, timeout ? &rel : nullptr, nullptr, 0);
}

void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, &word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace shmbus::bench::sys
