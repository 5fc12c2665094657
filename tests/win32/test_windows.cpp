// Windows-only facts: the Local\ / Global\ namespaces, security descriptors,
// and names that vanish with their last handle. Wine does not enforce DACLs
// and lets anyone create Global\ objects; the tests of those facts say so and
// skip that part under wine.
#include <doctest/doctest.h>

#include <windows.h>

#include <string>

#include "shmbus/client.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/permissions.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;

namespace {

bool under_wine() {
  const HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  return ntdll != nullptr && ::GetProcAddress(ntdll, "wine_get_version") != nullptr;
}

bool mapping_exists(const std::string& full_name) {
  const std::wstring w(full_name.begin(), full_name.end());
  HANDLE h = ::OpenFileMappingW(FILE_MAP_READ, FALSE, w.c_str());
  if (h == nullptr) return false;
  ::CloseHandle(h);
  return true;
}

// Restores the process-wide namespace however the test ends.
struct namespace_scope {
  explicit namespace_scope(platform::object_namespace ns) { platform::set_object_namespace(ns); }
  ~namespace_scope() { platform::set_object_namespace(platform::object_namespace::local); }
};

broker_options with_security(const std::string& bus, std::string sddl, std::string group = {}) {
  auto o = options(bus, {topic("t", 64, 1)});
  o.sddl = std::move(sddl);
  o.group = std::move(group);
  return o;
}

}  // namespace

TEST_CASE("Windows: objects are named in Local\\ by default and vanish with their last handle") {
  std::string name;
  {
    test_bus tb({topic("t", 64, 1)});
    name = tb.name;
    CHECK(mapping_exists("Local\\" + detail::registry_object_name(name)));
    CHECK(mapping_exists("Local\\" + topic_object(name, "t")));
    bus b(name);
    CHECK(b.topics().size() == 1);
  }
  // No remove() on Windows: closing the broker's handles was enough.
  CHECK_FALSE(mapping_exists("Local\\" + detail::registry_object_name(name)));
  try {
    bus gone(name);
    FAIL("opened a bus after its broker closed");
  } catch (const std::system_error& e) {
    CHECK(e.code() == errc::no_broker);
  }
}

TEST_CASE("Windows: Global\\ namespace when selected, for broker and clients alike") {
  namespace_scope global(platform::object_namespace::global);
  const std::string name = unique_bus();
  try {
    broker brk(options(name, {topic("t", 64, 1)}));
    CHECK(mapping_exists("Global\\" + detail::registry_object_name(name)));
    bus b(name);
    auto pub = b.make_publisher("t");
    auto sub = b.make_subscriber("t");
    pub.publish("global");
    message m;
    REQUIRE(sub.try_read(m));
    CHECK(m.text() == "global");
    if (under_wine()) {
      MESSAGE("wine maps Local\\ and Global\\ to one directory: the separation check is skipped");
    } else {
      platform::set_object_namespace(platform::object_namespace::local);
      CHECK_FALSE(mapping_exists("Local\\" + detail::registry_object_name(name)));
    }
  } catch (const std::system_error& e) {
    // Real Windows without SeCreateGlobalPrivilege: a clear permission error.
    REQUIRE_FALSE(under_wine());
    CHECK(e.code() == std::errc::permission_denied);
    MESSAGE("Global\\ needs SeCreateGlobalPrivilege, which this account lacks: " << e.what());
  }
}

TEST_CASE("Windows: a security descriptor (SDDL) or group is applied, and bad ones are clear errors") {
  // Everyone: creation with an explicit DACL works end to end.
  {
    broker brk(with_security(unique_bus(), "D:P(A;;GA;;;WD)"));
    bus b(brk.bus());
    CHECK_NOTHROW(b.make_subscriber("t"));
  }
  try {
    broker brk(with_security(unique_bus(), "not an sddl"));
    FAIL("accepted a malformed SDDL string");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find("invalid security descriptor 'not an sddl'") != std::string::npos);
  }
  try {
    broker brk(with_security(unique_bus(), "", "no-such-group-shmbus"));
    FAIL("accepted an unknown group");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find("cannot grant group 'no-such-group-shmbus' access") != std::string::npos);
  }
  // SYSTEM only: this (non-SYSTEM) user is refused.
  broker brk(with_security(unique_bus(), "D:P(A;;GA;;;SY)"));
  if (under_wine()) {
    MESSAGE("wine does not enforce DACLs: the access-denied check is skipped");
    return;
  }
  try {
    bus b(brk.bus());
    FAIL("a DACL granting only SYSTEM let this user open the bus");
  } catch (const std::system_error& e) {
    CHECK(e.code() == errc::permission_denied);
  }
}
