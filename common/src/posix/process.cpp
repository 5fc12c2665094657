#include "shmbus/platform/process.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

namespace shmbus::platform {
namespace {

// Field 22 of /proc/PID/stat: start time in clock ticks since boot. The
// command name (field 2) may hold spaces and ')', so parse after the last ')'.
std::uint64_t start_time_of(std::uint64_t pid) noexcept {
  try {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return 0;
    const auto close = line.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream fields(line.substr(close + 2));
    std::string field;
    // After ")": field 3 (state) is the first; we want field 22.
    for (int i = 3; i < 22 && fields >> field; ++i) {
    }
    std::uint64_t start = 0;
    fields >> start;
    return start;
  } catch (...) {
    return 0;
  }
}

std::atomic<std::uint64_t> g_incarnation{1};

// Registered when the library is loaded, before any fork it must see.
const int g_atfork_registered =
    ::pthread_atfork(nullptr, nullptr, [] { g_incarnation.fetch_add(1, std::memory_order_relaxed); });

}  // namespace

std::uint64_t process_incarnation() noexcept {
  (void)g_atfork_registered;
  return g_incarnation.load(std::memory_order_relaxed);
}

process_identity current_process() noexcept {
  const auto pid = static_cast<std::uint64_t>(::getpid());
  return {pid, start_time_of(pid)};
}

bool is_alive(const process_identity& p) noexcept {
  if (p.pid == 0 || p.pid > static_cast<std::uint64_t>(INT32_MAX)) return false;
  if (::kill(static_cast<pid_t>(p.pid), 0) != 0 && errno == ESRCH) return false;
  const std::uint64_t now = start_time_of(p.pid);
  // 0: /proc unreadable (hidepid): trust kill().
  return now == 0 || p.start_time == 0 || now == p.start_time;
}

bool stdout_is_terminal() noexcept { return ::isatty(STDOUT_FILENO) == 1; }

bool wait_for_termination_request(std::chrono::milliseconds timeout) {
  static const sigset_t set = [] {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGHUP);
    // Blocked here, delivered to sigtimedwait below. Threads created after
    // the first call inherit the mask.
    pthread_sigmask(SIG_BLOCK, &s, nullptr);
    return s;
  }();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  const timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  for (;;) {
    const int sig = ::sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return true;
    if (errno == EINTR) continue;
    return false;
  }
}

bool request_termination(std::uint64_t pid) noexcept {
  return pid > 0 && pid <= static_cast<std::uint64_t>(INT32_MAX) && ::kill(static_cast<pid_t>(pid), SIGTERM) == 0;
}

}  // namespace shmbus::platform
