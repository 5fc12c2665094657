// POSIX-only: object permission bits and another user's access. (Windows
// uses DACLs; see tests/win32/.)
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "shmbus/client.hpp"
#include "shmbus/names.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;

SHMBUS_CHILD("open-bus-as-nobody")(const std::vector<std::string>& args) {
  // Root ignores permission bits; drop to an unprivileged user first.
  if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) return 90;
  std::error_code ec;
  shmbus::bus b(args.at(0), ec);
  if (ec == errc::permission_denied) {
    try {
      shmbus::bus again(args.at(0));
    } catch (const std::exception& e) {
      signal_parent(e.what());
    }
    return 0;
  }
  signal_parent("unexpected: " + ec.message());
  return 1;
}

TEST_CASE("permission denied for another user, by default (objects are 0600)") {
  test_bus tb({topic("t", 64, 1)});
  struct stat st {};
  REQUIRE(::stat(("/dev/shm/" + detail::registry_object_name(tb.name)).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  if (::geteuid() != 0) {
    // Without root there is no second user to become; take the read bit away instead.
    ::chmod(("/dev/shm/" + detail::registry_object_name(tb.name)).c_str(), 0);
  }
  auto child = child_process::self("open-bus-as-nobody", {tb.name});
  const auto line = child.read_line();
  REQUIRE(line);
  CHECK(line->find("Permission denied") != std::string::npos);
  CHECK(line->find("open registry") != std::string::npos);
  CHECK(child.wait() == 0);
}
