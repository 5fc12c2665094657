// Issue 9's bus-level defects, each pinned by a test that failed before its
// fix: what a client reads from the registry, the broker's claim on a bus,
// and clients noticing a stopped or replaced broker.
#include <doctest/doctest.h>

#include <cstring>

#include "shmbus/client.hpp"
#include "shmbus/detail/registry.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;

// ---- item 1: nothing read from the registry is used unless validated ------

namespace {
std::string g_flip_bus;
// Plays the writer that flips topic_count between validation and use.
void flip_topic_count() {
  platform::shared_memory_region live(open_only, detail::registry_object_name(g_flip_bus), access::read_write);
  auto& h = detail::registry_of(live.data());
  std::atomic_ref<std::uint32_t>(h.topic_count).store(0x7fffffff, std::memory_order_relaxed);
}
}  // namespace

SHMBUS_CHILD("open-bus-while-count-flips")(const std::vector<std::string>& a) {
  g_flip_bus = a.at(0);
  detail::registry_open_hook = flip_topic_count;
  std::error_code ec;
  bus b(a.at(0), ec);
  detail::registry_open_hook = nullptr;
  signal_parent("ec=" + std::to_string(ec.value()) + " topics=" + std::to_string(ec ? 0 : b.topics().size()));
  return 0;
}

TEST_CASE("item 1: a registry count changed after validation is never used (bus open, another writer)") {
  test_bus tb({topic("a", 64, 1), topic("b", 64, 4)});
  auto child = child_process::self("open-bus-while-count-flips", {tb.name});
  const auto line = child.expect_line("topics=");
  // Before the fix the child read 2^31-1 entries from a 2-entry mapping and died.
  CHECK(child.wait() == 0);
  CHECK(field(line, "ec") == 0);
  CHECK(field(line, "topics") == 2);
}
