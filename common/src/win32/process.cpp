#include "shmbus/platform/process.hpp"

#include <windows.h>

#include <io.h>

#include <atomic>
#include <cstdio>

#include "os_error.hpp"

namespace shmbus::platform {
namespace {

// Creation time in 100 ns units since 1601: with the PID, it names one
// process for ever, so a reused PID never makes a dead broker look alive.
std::uint64_t creation_time(HANDLE process) noexcept {
  FILETIME created{}, exited{}, kernel{}, user{};
  if (!::GetProcessTimes(process, &created, &exited, &kernel, &user)) return 0;
  return (std::uint64_t{created.dwHighDateTime} << 32) | created.dwLowDateTime;
}

HANDLE g_termination = nullptr;

std::wstring stop_event_name(std::uint64_t pid) {
  // Always the session's namespace: whoever asks shares our session.
  return L"Local\\shmbus.stop." + std::to_wstring(pid);
}

BOOL WINAPI on_console_event(DWORD type) {
  switch (type) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
    case CTRL_CLOSE_EVENT:
    case CTRL_SHUTDOWN_EVENT: ::SetEvent(g_termination); return TRUE;  // handled: the waiting thread shuts down cleanly
    default: return FALSE;
  }
}

}  // namespace

// Windows has no fork: a process is one incarnation.
std::uint64_t process_incarnation() noexcept { return 1; }

process_identity current_process() noexcept { return {::GetCurrentProcessId(), creation_time(::GetCurrentProcess())}; }

bool is_alive(const process_identity& p) noexcept {
  if (p.pid == 0 || p.pid > 0xFFFFFFFFu) return false;
  HANDLE h = ::OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, static_cast<DWORD>(p.pid));
  if (h == nullptr) {
    // A PID that names nothing gives ERROR_INVALID_PARAMETER. A process we
    // may not even query (another user's protected process) exists; as on
    // POSIX (kill() EPERM) it counts as alive rather than risk declaring a
    // live broker dead.
    return ::GetLastError() == ERROR_ACCESS_DENIED;
  }
  win32::handle_guard guard(h);
  // Signalled = exited (a handle keeps an exited process's PID from reuse,
  // so this is exact; an exit code can be STILL_ACTIVE too, so not that).
  if (::WaitForSingleObject(h, 0) != WAIT_TIMEOUT) return false;
  // Running: it must also be the process that was recorded, not a new one
  // that reuses its PID.
  const std::uint64_t now = creation_time(h);
  return p.start_time == 0 || now == p.start_time;
}

std::int64_t kernel_monotonic_ns() noexcept {
  static const std::int64_t freq = [] {
    LARGE_INTEGER f{};
    ::QueryPerformanceFrequency(&f);
    return static_cast<std::int64_t>(f.QuadPart);
  }();
  LARGE_INTEGER c{};
  ::QueryPerformanceCounter(&c);
  // Split to avoid overflowing 64 bits for large counter values.
  const std::int64_t v = c.QuadPart;
  return v / freq * 1'000'000'000 + v % freq * 1'000'000'000 / freq;
}

// QueryPerformanceCounter already reads the invariant TSC where Windows
// trusts it, in user mode.
std::int64_t monotonic_ns() noexcept { return kernel_monotonic_ns(); }

const char* clock_source() noexcept { return "kernel"; }

bool stdout_is_terminal() noexcept {
  DWORD mode = 0;
  return ::GetConsoleMode(::GetStdHandle(STD_OUTPUT_HANDLE), &mode) != 0;
}

bool wait_for_termination_request(std::chrono::milliseconds timeout) {
  static const bool installed = [] {
    g_termination = ::CreateEventW(nullptr, TRUE, FALSE, stop_event_name(::GetCurrentProcessId()).c_str());
    return g_termination != nullptr && ::SetConsoleCtrlHandler(on_console_event, TRUE) != 0;
  }();
  if (!installed) {
    ::Sleep(static_cast<DWORD>(timeout.count()));
    return false;
  }
  return ::WaitForSingleObject(g_termination, static_cast<DWORD>(timeout.count())) == WAIT_OBJECT_0;
}

bool request_termination(std::uint64_t pid) noexcept {
  if (pid == 0 || pid > 0xFFFFFFFFu) return false;
  try {
    HANDLE h = ::OpenEventW(EVENT_MODIFY_STATE, FALSE, stop_event_name(pid).c_str());
    if (h != nullptr) {
      const BOOL ok = ::SetEvent(h);
      ::CloseHandle(h);
      if (ok) return true;
    }
  } catch (...) {
  }
  return ::GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, static_cast<DWORD>(pid)) != 0;
}

}  // namespace shmbus::platform
