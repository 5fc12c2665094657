#include "../child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

namespace shmbus::test {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

}  // namespace

child_process::child_process(std::vector<std::string> argv, bool merge_stderr) {
  int out[2], in[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) fail("pipe2 failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
  if (merge_stderr) posix_spawn_file_actions_adddup2(&fa, out[1], STDERR_FILENO);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  const int e = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  ::close(in[0]);
  if (e != 0) fail("posix_spawn(" + argv[0] + "): " + std::strerror(e));
  pid_ = pid;
  out_fd_ = out[0];
  in_fd_ = in[1];
}

child_process::~child_process() {
  if (pid_ > 0 && !status_) {
    ::kill(static_cast<pid_t>(pid_), SIGKILL);
    int st = 0;
    ::waitpid(static_cast<pid_t>(pid_), &st, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (in_fd_ >= 0) ::close(in_fd_);
}

child_process::read_status child_process::read_some(std::chrono::milliseconds left) {
  pollfd p{out_fd_, POLLIN, 0};
  const int r = ::poll(&p, 1, static_cast<int>(left.count()));
  if (r <= 0) return read_status::nothing;  // timeout or EINTR: the caller checks its deadline
  char buf[4096];
  const ssize_t n = ::read(out_fd_, buf, sizeof buf);
  if (n < 0 && errno == EINTR) return read_status::nothing;
  if (n <= 0) return read_status::eof;
  buffer_.append(buf, static_cast<std::size_t>(n));
  return read_status::data;
}

void child_process::write(const std::string& text) {
  std::size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(in_fd_, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write to child stdin failed");
    off += static_cast<std::size_t>(n);
  }
}

void child_process::close_stdin() {
  if (in_fd_ >= 0) ::close(in_fd_);
  in_fd_ = -1;
}

void child_process::kill_hard() { ::kill(static_cast<pid_t>(pid_), SIGKILL); }
void child_process::terminate() { ::kill(static_cast<pid_t>(pid_), SIGTERM); }

int child_process::wait(std::chrono::milliseconds timeout) {
  if (status_) return *status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(static_cast<pid_t>(pid_), &st, WNOHANG);
    if (r == static_cast<pid_t>(pid_)) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return *status_;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      fail("child pid " + std::to_string(pid_) + " did not exit within " + std::to_string(timeout.count()) + " ms");
    // Polling for exit (bounded by the deadline above); not synchronisation.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void set_env(const std::string& name, const std::string& value) {
  if (value.empty())
    ::unsetenv(name.c_str());
  else
    ::setenv(name.c_str(), value.c_str(), 1);
}

}  // namespace shmbus::test
