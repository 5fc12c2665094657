// Issue 9's bus-level defects, each pinned by a test that failed before its
// fix: what a client reads from the registry, the broker's claim on a bus,
// and clients noticing a stopped or replaced broker.
#include <doctest/doctest.h>

#include <cstring>
#include <iostream>

#include "shmbus/client.hpp"
#include "shmbus/detail/registry.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "support/multiprocess.hpp"
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

// ---- item 7: exactly one broker owns a bus --------------------------------

SHMBUS_CHILD("racing-broker")(const std::vector<std::string>& a) {
  std::string line;
  std::getline(std::cin, line);  // "go": both racers start together
  try {
    broker b(options(a.at(0), {topic("t", 64, 1)}));
    signal_parent("up");
    std::getline(std::cin, line);  // hold the bus until killed
  } catch (const std::system_error& e) {
    signal_parent("refused code=" + std::to_string(e.code().value()) + " " + e.what());
  }
  return 0;
}

TEST_CASE("item 7: two brokers started together on a stale bus: exactly one comes up, every time") {
  const std::string name = unique_bus();
  {  // A stale bus: a broker killed without cleaning up.
    auto first = child_process::self("racing-broker", {name});
    first.write("go\n");
    first.expect_line("up");
    kill_and_reap(first);
  }
  const std::uint64_t races = stress_count(300);
  std::uint64_t both_up = 0, none_up = 0;
  for (std::uint64_t i = 0; i < races; ++i) {
    std::vector<child_process> racers;
    racers.push_back(child_process::self("racing-broker", {name}));
    racers.push_back(child_process::self("racing-broker", {name}));
    for (auto& r : racers) r.write("go\n");
    unsigned up = 0;
    for (auto& r : racers) {
      std::optional<std::string> line;
      do line = r.read_line();  // skip the broker's own log lines
      while (line && *line != "up" && line->rfind("refused", 0) != 0);
      REQUIRE(line.has_value());
      if (*line == "up") {
        ++up;
      } else {
        INFO(*line);
        CHECK(line->find("code=" + std::to_string(static_cast<int>(errc::broker_running))) != std::string::npos);
      }
    }
    both_up += up > 1;
    none_up += up == 0;
    // The winner dies without cleaning up: the next race starts on a stale bus again.
    for (auto& r : racers) r.kill_hard();
    for (auto& r : racers) r.wait();
  }
  INFO("races: " << races << ", both up: " << both_up << ", none up: " << none_up);
  CHECK(both_up == 0);
  CHECK(none_up == 0);
  MESSAGE("broker races on a stale bus: " << races << ", won by two brokers: " << both_up);
  broker::remove_stale(name);
}

// ---- item 5: every read path notices a stopped or replaced broker ---------

TEST_CASE("item 5: a subscriber polling try_read is told topic_closed once its broker is replaced") {
  broker_process_bus fixture;
  auto& [name, first, b] = fixture;
  auto sub = b.make_subscriber("b");
  {
    auto pub = b.make_publisher("b");
    for (int i = 0; i < 5; ++i) pub.publish("first");
  }
  message m;
  for (int i = 0; i < 5; ++i) REQUIRE(sub.try_read(m));
  kill_and_reap(first);
  auto second = started_broker(name);
  bus fresh(name);
  auto pub = fresh.make_publisher("b");
  for (int i = 0; i < 50; ++i) pub.publish("second");

  // The strategy loop: spin over try_read. Bounded: 10 s, then fail loudly.
  std::error_code ec;
  std::uint64_t polls = 0, got = 0;
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!ec && std::chrono::steady_clock::now() < limit) {
    got += sub.try_read(m, ec);
    ++polls;
  }
  INFO("polls: " << polls << ", messages: " << got);
  CHECK(ec == errc::topic_closed);
  CHECK(got == 0);
  CHECK_THROWS_WITH_AS(sub.try_read(m), doctest::Contains("topic 'b'"), std::system_error);
  CHECK_THROWS_AS(sub.read_view([](const message_info&, std::span<const std::byte>) {}), std::system_error);
  second.terminate();  // a clean stop: nothing of the bus stays in /dev/shm
  CHECK(second.wait() == 0);
}
