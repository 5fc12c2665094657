// POSIX-only facts: permission bits, another user's access, a full /dev/shm. (Windows
// uses DACLs; see tests/win32/.)
#include <doctest/doctest.h>

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmbus/client.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;

SHMBUS_CHILD("open-bus-as-nobody")(const std::vector<std::string>& args) {
  // Root ignores permission bits; drop to an unprivileged user first.
  if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)) return 90;
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

// Becomes uid/gid with one supplementary group, then subscribes and waits
// for one message.
SHMBUS_CHILD("subscribe-as-user")(const std::vector<std::string>& a) {
  const auto uid = static_cast<uid_t>(std::stoul(a.at(1)));
  const auto group = static_cast<gid_t>(std::stoul(a.at(2)));
  const gid_t groups[] = {group};
  if (::setgroups(1, groups) != 0 || ::setgid(static_cast<gid_t>(uid)) != 0 || ::setuid(uid) != 0) return 90;
  std::error_code ec;
  shmbus::bus b(a.at(0), ec);
  if (ec) {
    signal_parent("denied " + ec.message());
    return 0;
  }
  auto sub = b.make_subscriber("t");
  signal_parent("subscribed");
  message m;
  if (!sub.wait(m, std::chrono::seconds(20))) return 2;
  signal_parent("got " + std::string(m.text()));
  // Subscribing does not make it a publisher.
  auto pub = b.make_publisher("t", 0, ec);
  signal_parent(ec ? "publish refused " + ec.message() : "publish allowed");
  return 0;
}

TEST_CASE("another user is refused by default, and admitted when the broker shares the bus with its group") {
  if (::geteuid() != 0) {
    MESSAGE("needs root to become another user (CI runs as root): skipped");
    return;
  }
  // Numeric ids need no account: like setpriv --reuid, no useradd to undo.
  const std::string uid = "54321", group = "54322";
  {
    test_bus tb({topic("t", 64, 1)});
    auto child = child_process::self("subscribe-as-user", {tb.name, uid, group});
    const std::string line = child.expect_line("denied");
    INFO(line);
    CHECK(line.find("ermission denied") != std::string::npos);
    CHECK(child.wait() == 0);
  }
  auto opts = options(unique_bus(), {topic("t", 64, 1)});
  opts.mode = 0660;
  opts.group = group;
  broker brk(opts);
  struct stat st {};
  REQUIRE(::stat(("/dev/shm/" + detail::registry_object_name(brk.bus())).c_str(), &st) == 0);
  // Only the broker writes the registry: the group reads it.
  CHECK((st.st_mode & 0777) == 0640);
  CHECK(st.st_gid == static_cast<gid_t>(std::stoul(group)));
  auto child = child_process::self("subscribe-as-user", {brk.bus(), uid, group});
  child.expect_line("subscribed");
  bus b(brk.bus());
  b.make_publisher("t").publish("for the group");
  CHECK(child.expect_line("got") == "got for the group");
  // The group reads the messages but cannot write them: no group write bit
  // on the data segment, only on the control segment subscribers register in.
  CHECK(child.expect_line("publish").find("publish refused") != std::string::npos);
  CHECK(child.wait() == 0);

  {  // --group-publish lets the group publish too
    auto both = options(unique_bus(), {topic("t", 64, 1)});
    both.mode = 0660;
    both.group = group;
    both.group_publishes = true;
    broker brk2(both);
    auto member = child_process::self("subscribe-as-user", {brk2.bus(), uid, group});
    member.expect_line("subscribed");
    bus b2(brk2.bus());
    b2.make_publisher("t").publish("x");
    member.expect_line("got");
    CHECK(member.expect_line("publish") == "publish allowed");
    CHECK(member.wait() == 0);
  }
}

TEST_CASE("an unknown group, or a Windows-only setting, is refused before anything is created") {
  auto opts = options(unique_bus(), {topic("t", 64, 1)});
  opts.group = "no-such-group-shmbus";
  CHECK_THROWS_WITH_AS(broker{opts}, doctest::Contains("unknown group 'no-such-group-shmbus'"), std::system_error);
  try {
    broker b{opts};
    FAIL("accepted an unknown group");
  } catch (const std::system_error& e) {
    CHECK(e.code() == errc::not_found);  // a name that names nothing
  }
  opts.group.clear();
  opts.sddl = "D:P(A;;GA;;;SY)";
  CHECK_THROWS_WITH_AS(broker{opts}, doctest::Contains("SDDL security descriptor is a Windows setting"),
                       std::system_error);
  CHECK(platform::shared_memory_region::list(detail::bus_object_prefix(opts.bus)).empty());
}

TEST_CASE("a /dev/shm too small for a topic is a clear error at broker start, not SIGBUS in a client later") {
  if (::geteuid() != 0 || ::access("/usr/bin/unshare", X_OK) != 0) {
    MESSAGE("needs root and unshare to mount a small /dev/shm in a private namespace: skipped");
    return;
  }
  // A 1 MiB /dev/shm, in a mount namespace of its own, and a topic of 8 MiB.
  child_process broker({"/usr/bin/unshare", "-m", "/bin/sh", "-c",
                        "mount -t tmpfs -o size=1m tmpfs /dev/shm 2>/dev/null || { echo 'skip: no mount'; exit 0; }; "
                        "exec \"$0\" --bus small --topic big:1M:8",
                        SHMBUS_BROKER_PATH},
                       true);
  const auto first = broker.read_line();
  REQUIRE(first);
  if (first->find("shmbus-broker:") == std::string::npos) {
    // unshare or mount refused by this sandbox: nothing to test here.
    MESSAGE("cannot mount a private /dev/shm here (" << *first << "): skipped");
    broker.wait();
    return;
  }
  const std::string line = *first;
  CHECK(line.find("No space left on device") != std::string::npos);
  CHECK(line.find("is /dev/shm too small?") != std::string::npos);
  CHECK(broker.wait() == 1);
}
