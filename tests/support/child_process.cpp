// The portable half of the test support: child roles, this binary's path,
// bus names, stress counts. Process spawning is in posix/ and win32/.
#include "child_process.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "shmbus/platform/process.hpp"

namespace shmbus::test {
namespace {
std::string g_self;
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

}  // namespace shmbus::test
