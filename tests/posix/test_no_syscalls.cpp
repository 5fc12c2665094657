// Issue 9 item 9: nothing on the publish path makes a system call except the
// wake of a sleeping subscriber. The publisher proves it under a seccomp
// filter that kills it at the first other system call.
#include <doctest/doctest.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <string>

#include "shmbus/client.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;

namespace {

// Allows only what the publish loop may need: futex (a wake), the clock
// (a vDSO call, which falls back to the system call on some clock sources),
// and writing the result and exiting. Anything else: SIGSYS, process killed.
bool forbid_system_calls() {
  constexpr unsigned allowed[] = {SYS_futex, SYS_clock_gettime, SYS_write, SYS_exit, SYS_exit_group, SYS_rt_sigreturn};
  std::vector<sock_filter> prog;
  prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  for (unsigned nr : allowed) {
    prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1));
    prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  }
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0;
}

}  // namespace

SHMBUS_CHILD("publish-under-seccomp")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  const std::string mode = a.at(2);
  publisher_options o;
  o.exclusive = mode.find("exclusive") != std::string::npos;
  const bool by_loan = mode.find("loan") != std::string::npos;
  auto pub = b.make_publisher("t", o);
  auto idle = b.make_subscriber("t");  // subscribed, never asleep
  const auto seconds = std::stoi(a.at(1));
  std::string line(64, '\0');
  if (!forbid_system_calls()) return 90;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::uint64_t n = 0;
  std::error_code ec;
  while (std::chrono::steady_clock::now() < end && !ec)
    for (int i = 0; i < 1000; ++i) {
      if (by_loan) {
        std::memcpy(pub.loan(4, ec).data(), "tick", 4);
        n = pub.commit(ec);
      } else {
        n = pub.publish(std::string_view("tick"), ec);
      }
    }
  const int len =
      std::snprintf(line.data(), line.size(), "done n=%llu ec=%d\n", static_cast<unsigned long long>(n), ec.value());
  (void)!::write(1, line.data(), static_cast<std::size_t>(len));
  ::syscall(SYS_exit_group, 0);  // no destructor: they unmap, which is a system call
  return 0;
}

TEST_CASE("item 9: publishing for 2.5 s with nobody asleep makes no system call (seccomp-enforced)") {
  const char* mode = "shared";
  SUBCASE("by copy, under the mutex") {}
  SUBCASE("by copy, exclusive (issue 11)") { mode = "exclusive"; }
  SUBCASE("by loan, under the mutex (issue 11)") { mode = "loan"; }
  SUBCASE("by loan, exclusive (issue 11)") { mode = "exclusive-loan"; }
  CAPTURE(mode);
  test_bus tb({topic("t", 64, 16)});
  auto child = child_process::self("publish-under-seccomp", {tb.name, "3", mode});
  std::optional<std::string> line;
  try {
    line = child.read_line(30s);
  } catch (const std::runtime_error&) {
  }
  const int status = child.wait();
  INFO("exit status " << status << " (" << 128 + SIGSYS << " = killed by seccomp for a system call)");
  REQUIRE(line.has_value());
  CHECK(field(*line, "ec") == 0);
  CHECK(field(*line, "n") > 1000);
  CHECK(status == 0);
}
