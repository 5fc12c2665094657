#pragma once
// Test support: run a program (usually this test binary again, as a named
// child role) with its stdout on a pipe; read its lines with bounded waits;
// kill it; reap it with a bounded wait. Every wait fails loudly on timeout.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shmbus::test {

using namespace std::chrono_literals;

class child_process {
 public:
  /// Starts `argv[0]` with the rest as arguments; with `merge_stderr` its
  /// stderr goes to the same pipe as stdout.
  explicit child_process(std::vector<std::string> argv, bool merge_stderr = false);
  /// Starts this test binary as child role `role` with `args`.
  static child_process self(const std::string& role, std::vector<std::string> args = {});

  child_process(child_process&&) noexcept;
  child_process& operator=(child_process&&) noexcept;
  child_process(const child_process&) = delete;
  ~child_process();  // kills and reaps a child still running

  /// Next line of the child's stdout (without '\n'); nullopt at EOF.
  /// Throws std::runtime_error when `timeout` passes first.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 20s);
  /// Reads lines until one contains `needle`; throws on EOF or timeout.
  std::string expect_line(const std::string& needle, std::chrono::milliseconds timeout = 20s);
  /// Writes `text` to the child's stdin.
  void write(const std::string& text);
  void close_stdin();

  /// What wait() returns for a child ended by kill_hard(): 128 + SIGKILL;
  /// on Windows, the exit code kill_hard() gives TerminateProcess.
  static constexpr int killed_exit_code = 137;

  void kill_hard();  ///< SIGKILL / TerminateProcess
  void terminate();  ///< SIGTERM
  /// Exit code (128+signal if killed). Throws on timeout.
  int wait(std::chrono::milliseconds timeout = 60s);
  [[nodiscard]] long pid() const noexcept { return pid_; }

 private:
  child_process() = default;
  /// What one read_some() did: appended output to buffer_, nothing yet
  /// (call again), or the child closed its stdout.
  enum class read_status { data, nothing, eof };
  /// Waits at most `left` for output on out_fd_ and appends it to buffer_
  /// (the platform's half of read_line).
  read_status read_some(std::chrono::milliseconds left);
  long pid_ = -1;
  void* process_ = nullptr;  // Windows: the process handle (unused on POSIX)
  int out_fd_ = -1;
  int in_fd_ = -1;
  std::string buffer_;
  std::optional<int> status_;
};

/// Path of this test binary (set by main).
const std::string& self_path();
void set_self_path(std::string path);

/// Child roles: `shmbus_tests --child ROLE ARGS...` runs the function.
using child_fn = std::function<int(const std::vector<std::string>&)>;
std::map<std::string, child_fn>& child_roles();

struct child_registrar {
  child_registrar(const std::string& role, child_fn fn) { child_roles()[role] = std::move(fn); }
};

/// A bus name unique to this process and call, so parallel tests never meet.
std::string unique_bus();

/// A stress test's message count scaled by $SHMBUS_TEST_STRESS_PERCENT
/// (default 100; at least 1). Under wine every kernel call is a round trip
/// to wineserver, so the cross build's ctest runs the hammer tests smaller;
/// a soak run can make them larger.
std::uint64_t stress_count(std::uint64_t n);

/// Sets (or, with an empty value, removes) an environment variable of this
/// process, which the children it starts afterwards inherit.
void set_env(const std::string& name, const std::string& value);

/// Tells the parent the child reached a point: one line on stdout, flushed.
void signal_parent(const std::string& line);

}  // namespace shmbus::test

#define SHMBUS_CONCAT2(a, b) a##b
#define SHMBUS_CONCAT(a, b) SHMBUS_CONCAT2(a, b)
/// Defines a child role: SHMBUS_CHILD("name")(const std::vector<std::string>& args) { ... return 0; }
#define SHMBUS_CHILD(role)                                                                 \
  static int SHMBUS_CONCAT(shmbus_child_, __LINE__)(const std::vector<std::string>&);      \
  static const ::shmbus::test::child_registrar SHMBUS_CONCAT(shmbus_child_reg_, __LINE__){ \
      role, &SHMBUS_CONCAT(shmbus_child_, __LINE__)};                                      \
  static int SHMBUS_CONCAT(shmbus_child_, __LINE__)
