// Windows implementation of tests/support/child_process.hpp; mirrors
// tests/support/posix/child_process.cpp.
//
// Pipe ends are CRT file descriptors (_open_osfhandle); the HANDLE is taken
// back with _get_osfhandle and closed with _close. process_ is the process
// HANDLE; pid_ its id.
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <fcntl.h>
#include <io.h>

#include "../child_process.hpp"

#include "shmbus/platform/process.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace shmbus::test {
namespace {

// Exit codes given to killed children, as on POSIX (128 + signal number).
constexpr UINT kill_exit_code = 137;       // SIGKILL
constexpr UINT terminate_exit_code = 143;  // SIGTERM (fallback only, see terminate())

// Only one spawn at a time: the child-side pipe ends are inheritable between
// CreatePipe and CloseHandle, and a concurrent CreateProcess (bInheritHandles
// TRUE) would let another child inherit them and hold our pipes open.
std::mutex g_spawn_mutex;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

[[noreturn]] void fail_win(const std::string& what, DWORD code) {
  fail(what + " failed (error " + std::to_string(code) + ")");
}

HANDLE fd_handle(int fd) { return reinterpret_cast<HANDLE>(::_get_osfhandle(fd)); }

void close_handle(HANDLE& h) {
  if (h != nullptr && h != INVALID_HANDLE_VALUE) ::CloseHandle(h);
  h = nullptr;
}

// Quotes one argument so the MSVCRT / CommandLineToArgvW parser yields it back:
// wrapped in double quotes when it is empty or holds whitespace or a quote;
// backslashes are doubled only where they precede a quote (or the closing quote).
std::string quote_arg(const std::string& a) {
  if (!a.empty() && a.find_first_of(" \t\n\v\"") == std::string::npos) return a;
  std::string r = "\"";
  for (auto it = a.begin();; ++it) {
    std::size_t backslashes = 0;
    while (it != a.end() && *it == '\\') {
      ++it;
      ++backslashes;
    }
    if (it == a.end()) {
      r.append(backslashes * 2, '\\');
      break;
    }
    if (*it == '"') {
      r.append(backslashes * 2 + 1, '\\');
      r.push_back('"');
    } else {
      r.append(backslashes, '\\');
      r.push_back(*it);
    }
  }
  r.push_back('"');
  return r;
}

std::wstring widen(const std::string& s, const std::string& program) {
  if (s.empty()) return {};
  const int n = ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(), static_cast<int>(s.size()), nullptr, 0);
  if (n <= 0) fail_win("MultiByteToWideChar for command line of '" + program + "'", ::GetLastError());
  std::wstring w(static_cast<std::size_t>(n), L'\0');
  ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(), static_cast<int>(s.size()), w.data(), n);
  return w;
}

}  // namespace

child_process::child_process(std::vector<std::string> argv, bool merge_stderr) {
  if (argv.empty()) fail("child_process: empty argv");
  const std::string& program = argv[0];

  std::string cmd;
  for (const auto& a : argv) {
    if (!cmd.empty()) cmd.push_back(' ');
    cmd += quote_arg(a);
  }
  std::wstring wcmd = widen(cmd, program);

  const std::lock_guard<std::mutex> lock(g_spawn_mutex);

  SECURITY_ATTRIBUTES sa{};
  sa.nLength = sizeof sa;
  sa.bInheritHandle = TRUE;
  HANDLE out_r = nullptr, out_w = nullptr, in_r = nullptr, in_w = nullptr, err = nullptr;
  const auto cleanup = [&] {
    close_handle(out_r);
    close_handle(out_w);
    close_handle(in_r);
    close_handle(in_w);
    close_handle(err);
  };
  const auto fail_spawn = [&](const std::string& what) {
    const DWORD code = ::GetLastError();
    cleanup();
    fail_win(what + " for '" + program + "'", code);
  };

  if (!::CreatePipe(&out_r, &out_w, &sa, 0)) fail_spawn("CreatePipe (stdout)");
  if (!::CreatePipe(&in_r, &in_w, &sa, 0)) fail_spawn("CreatePipe (stdin)");
  // The parent's ends must not leak into the child (or its EOF never comes).
  if (!::SetHandleInformation(out_r, HANDLE_FLAG_INHERIT, 0) || !::SetHandleInformation(in_w, HANDLE_FLAG_INHERIT, 0))
    fail_spawn("SetHandleInformation");

  HANDLE child_err = out_w;
  if (!merge_stderr) {
    // Inherit the parent's stderr: an inheritable duplicate, so the child
    // gets it even when the parent's own handle is not inheritable.
    child_err = ::GetStdHandle(STD_ERROR_HANDLE);
    if (child_err != nullptr && child_err != INVALID_HANDLE_VALUE &&
        ::DuplicateHandle(::GetCurrentProcess(), child_err, ::GetCurrentProcess(), &err, 0, TRUE,
                          DUPLICATE_SAME_ACCESS))
      child_err = err;
    else
      err = nullptr;
  }

  STARTUPINFOW si{};
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = in_r;
  si.hStdOutput = out_w;
  si.hStdError = child_err;
  PROCESS_INFORMATION pi{};
  // lpApplicationName is null so that, like a shell, a program named without
  // ".exe" (e.g. argv[0] as typed) is still found.
  // CREATE_NEW_PROCESS_GROUP: terminate() can send the child (alone) CTRL_BREAK_EVENT.
  if (!::CreateProcessW(nullptr, wcmd.data(), nullptr, nullptr, TRUE, CREATE_NEW_PROCESS_GROUP, nullptr, nullptr, &si,
                        &pi))
    fail_spawn("CreateProcessW");
  ::CloseHandle(pi.hThread);
  // The child has its copies now; keeping ours would hide its EOF.
  close_handle(out_w);
  close_handle(in_r);
  close_handle(err);

  pid_ = static_cast<long>(pi.dwProcessId);
  process_ = pi.hProcess;
  out_fd_ = ::_open_osfhandle(reinterpret_cast<std::intptr_t>(out_r), _O_RDONLY | _O_BINARY);
  if (out_fd_ < 0) {
    close_handle(out_r);
    close_handle(in_w);
    fail("_open_osfhandle (stdout pipe) failed for '" + program + "'");  // the destructor kills the child
  }
  in_fd_ = ::_open_osfhandle(reinterpret_cast<std::intptr_t>(in_w), _O_WRONLY | _O_BINARY);
  if (in_fd_ < 0) {
    close_handle(in_w);
    fail("_open_osfhandle (stdin pipe) failed for '" + program + "'");
  }
}

child_process::~child_process() {
  if (process_ != nullptr) {
    if (!status_) {
      ::TerminateProcess(process_, kill_exit_code);
      ::WaitForSingleObject(process_, 10'000);
    }
    ::CloseHandle(process_);
  }
  if (out_fd_ >= 0) ::_close(out_fd_);
  if (in_fd_ >= 0) ::_close(in_fd_);
}

child_process::read_status child_process::read_some(std::chrono::milliseconds) {
  const HANDLE h = fd_handle(out_fd_);
  DWORD avail = 0;
  if (!::PeekNamedPipe(h, nullptr, 0, nullptr, &avail, nullptr)) {
    const DWORD e = ::GetLastError();
    if (e == ERROR_BROKEN_PIPE) return read_status::eof;  // every writer closed: EOF
    fail_win("PeekNamedPipe on stdout of child pid " + std::to_string(pid_), e);
  }
  if (avail == 0) {
    // Anonymous pipes cannot be waited on; poll (the caller bounds it by its deadline).
    ::Sleep(1);
    return read_status::nothing;
  }
  char buf[4096];
  DWORD n = 0;
  if (!::ReadFile(h, buf, std::min<DWORD>(avail, sizeof buf), &n, nullptr)) {
    const DWORD e = ::GetLastError();
    if (e == ERROR_BROKEN_PIPE) return read_status::eof;
    fail_win("ReadFile on stdout of child pid " + std::to_string(pid_), e);
  }
  buffer_.append(buf, n);
  return read_status::data;
}

void child_process::write(const std::string& text) {
  const HANDLE h = fd_handle(in_fd_);
  std::size_t off = 0;
  while (off < text.size()) {
    const DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(text.size() - off, 1u << 20));
    DWORD n = 0;
    if (!::WriteFile(h, text.data() + off, chunk, &n, nullptr)) fail_win("write to child stdin", ::GetLastError());
    off += n;
  }
}

void child_process::close_stdin() {
  if (in_fd_ >= 0) ::_close(in_fd_);
  in_fd_ = -1;
}

void child_process::kill_hard() {
  if (process_ != nullptr) ::TerminateProcess(process_, kill_exit_code);
}

// The Windows counterpart of SIGTERM: platform::request_termination sets the
// child's stop event (shmbus programs listen on it) or sends CTRL_BREAK_EVENT
// to its process group (it was started with CREATE_NEW_PROCESS_GROUP, so only
// it gets the event). When neither can be delivered, fall back to a hard kill
// reported as 143 (128 + SIGTERM): the child gets no chance to clean up.
// Under wine 8.0, GenerateConsoleCtrlEvent always fails (ERROR_INVALID_ACCESS
// without a console, ERROR_INVALID_HANDLE with one), so only the event works.
void child_process::terminate() {
  if (!platform::request_termination(static_cast<std::uint64_t>(pid_)) && process_ != nullptr)
    ::TerminateProcess(process_, terminate_exit_code);
}

int child_process::wait(std::chrono::milliseconds timeout) {
  if (status_) return *status_;
  const auto ms = static_cast<DWORD>(std::clamp<long long>(timeout.count(), 0, INFINITE - 1));
  const DWORD r = ::WaitForSingleObject(process_, ms);
  if (r == WAIT_TIMEOUT)
    fail("child pid " + std::to_string(pid_) + " did not exit within " + std::to_string(timeout.count()) + " ms");
  if (r != WAIT_OBJECT_0) fail_win("WaitForSingleObject on child pid " + std::to_string(pid_), ::GetLastError());
  DWORD code = 0;
  if (!::GetExitCodeProcess(process_, &code))
    fail_win("GetExitCodeProcess for child pid " + std::to_string(pid_), ::GetLastError());
  status_ = static_cast<int>(code);
  return *status_;
}

void set_env(const std::string& name, const std::string& value) {
  // The process block, which CreateProcess hands to children, and the C
  // runtime's copy, which getenv reads.
  ::SetEnvironmentVariableA(name.c_str(), value.empty() ? nullptr : value.c_str());
  ::_putenv_s(name.c_str(), value.c_str());
}

}  // namespace shmbus::test
