// The portable half of the test support: child roles, this binary's path,
// bus names, stress counts. Process spawning is in posix/ and win32/.
#include "child_process.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

#include "shmbus/platform/process.hpp"

namespace shmbus::test {
namespace {
std::string g_self;
[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }
}  // namespace

const std::string& self_path() { return g_self; }
void set_self_path(std::string path) { g_self = std::move(path); }

std::map<std::string, child_fn>& child_roles() {
  static std::map<std::string, child_fn> roles;
  return roles;
}

std::string unique_bus() {
  static std::atomic<unsigned> counter{0};
  return "test" + std::to_string(platform::current_process().pid) + "_" + std::to_string(counter++);
}

std::uint64_t stress_count(std::uint64_t n) {
  const char* env = std::getenv("SHMBUS_TEST_STRESS_PERCENT");
  if (env == nullptr || *env == '\0') return n;
  const unsigned long long percent = std::strtoull(env, nullptr, 10);
  const std::uint64_t scaled = n / 100 * percent + n % 100 * percent / 100;
  return scaled == 0 ? 1 : scaled;
}

void signal_parent(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

child_process child_process::self(const std::string& role, std::vector<std::string> args) {
  std::vector<std::string> argv{self_path(), "--child", role};
  argv.insert(argv.end(), args.begin(), args.end());
  return child_process(std::move(argv));
}

child_process::child_process(child_process&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      process_(std::exchange(o.process_, nullptr)),
      out_fd_(std::exchange(o.out_fd_, -1)),
      in_fd_(std::exchange(o.in_fd_, -1)),
      buffer_(std::move(o.buffer_)),
      status_(o.status_) {}

child_process& child_process::operator=(child_process&& o) noexcept {
  std::swap(pid_, o.pid_);
  std::swap(process_, o.process_);
  std::swap(out_fd_, o.out_fd_);
  std::swap(in_fd_, o.in_fd_);
  std::swap(buffer_, o.buffer_);
  std::swap(status_, o.status_);
  return *this;
}

std::optional<std::string> child_process::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      fail("timed out after " + std::to_string(timeout.count()) + " ms waiting for a line from child pid " +
           std::to_string(pid_) + " (partial: '" + buffer_ + "')");
    if (read_some(left) == read_status::eof) {
      // A last line without '\n' is still a line.
      if (buffer_.empty()) return std::nullopt;
      return std::exchange(buffer_, {});
    }
  }
}

std::string child_process::expect_line(const std::string& needle, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string seen;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) fail("timed out waiting for '" + needle + "'; got: " + seen);
    auto line = read_line(left);
    if (!line)
      fail("child pid " + std::to_string(pid_) + " closed stdout before printing '" + needle + "'; got: " + seen);
    if (line->find(needle) != std::string::npos) return *line;
    seen += *line + " | ";
  }
}

}  // namespace shmbus::test
