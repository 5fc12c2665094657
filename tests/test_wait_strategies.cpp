// Wait strategies (block, busy-poll, spin-then-block): each delivers every
// message in order across threads and processes, honours timeouts and
// notices a closed topic; and a publish with nobody asleep makes no wake
// system call. Behaviour only: nothing here asserts a speed.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <sstream>
#include <thread>

#include "shmbus/client.hpp"
#include "shmbus/detail/registry.hpp"
#include "shmbus/detail/topic_segment.hpp"
#include "support/multiprocess.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;
using namespace std::chrono_literals;

namespace {

struct named_strategy {
  std::string name;
  wait_strategy how;
};

// spin_then_block with a 1 us spin almost always ends up asleep; with 200 us
// it catches some messages spinning and sleeps for others: both paths run.
const named_strategy all_strategies[] = {
    {"block", wait_strategy::blocking()},
    {"busy_poll", wait_strategy::busy_polling()},
    {"spin_then_block_1us", wait_strategy::spin_then_blocking(1us)},
    {"spin_then_block_200us", wait_strategy::spin_then_blocking(200us)},
};

wait_strategy strategy_named(const std::string& name) {
  for (const auto& s : all_strategies)
    if (name == s.name) return s.how;
  throw std::invalid_argument("unknown strategy " + name);
}

// Reads `count` messages "m<seq>" with `how`; counts what is wrong.
struct reader_result {
  std::uint64_t received = 0, disorder = 0, bad_payload = 0, missed = 0, timeouts = 0, last = 0;
};

reader_result read_all(subscriber& sub, std::uint64_t count, const wait_strategy& how,
                       std::atomic<std::uint64_t>* progress = nullptr) {
  reader_result r;
  message m;
  while (r.last < count) {
    // Bounded: a lost wake-up or a stuck poll shows as a timeout.
    if (!sub.wait(m, 10s, how)) {
      ++r.timeouts;
      break;
    }
    if (m.sequence() != r.last + 1) ++r.disorder;
    if (m.text() != "m" + std::to_string(m.sequence())) ++r.bad_payload;
    r.last = m.sequence();
    ++r.received;
    if (progress != nullptr) progress->store(r.last, std::memory_order_release);
  }
  r.missed = sub.missed_total();
  return r;
}

}  // namespace

TEST_CASE("every wait strategy delivers every message in order across threads") {
  constexpr std::uint64_t count = 20000;
  for (const auto& s : all_strategies) {
    CAPTURE(s.name);
    // The ring holds every message, so nothing can be lost however far the
    // publisher runs ahead: any gap would be the strategy's fault.
    test_bus tb({topic("r", 64, static_cast<std::uint32_t>(count))});
    bus b(tb.name);
    auto sub = b.make_subscriber("r");
    reader_result r;
    std::thread reader([&] { r = read_all(sub, count, s.how); });
    auto pub = b.make_publisher("r");
    for (std::uint64_t i = 1; i <= count; ++i) pub.publish("m" + std::to_string(i));
    reader.join();
    CHECK(r.received == count);
    CHECK(r.disorder == 0);
    CHECK(r.bad_payload == 0);
    CHECK(r.missed == 0);
    CHECK(r.timeouts == 0);
  }
}

TEST_CASE("every wait strategy, lockstep across threads: each message finds the reader waiting") {
  // Small: with ctest -j2 on two cores a busy-polling reader and a spinning
  // publisher may share a core, and each hand-over then waits for the
  // scheduler.
  constexpr std::uint64_t count = 1000;
  for (const auto& s : all_strategies) {
    CAPTURE(s.name);
    test_bus tb({topic("r", 64, 1)});
    bus b(tb.name);
    auto sub = b.make_subscriber("r");
    std::atomic<std::uint64_t> progress{0};
    reader_result r;
    std::thread reader([&] { r = read_all(sub, count, s.how, &progress); });
    auto pub = b.make_publisher("r");
    for (std::uint64_t i = 1; i <= count; ++i) {
      await([&] { return progress.load(std::memory_order_acquire) == i - 1; }, "reader done with the previous message");
      pub.publish("m" + std::to_string(i));
    }
    reader.join();
    CHECK(r.received == count);
    CHECK(r.disorder == 0);
    CHECK(r.missed == 0);
    CHECK(r.timeouts == 0);
  }
}

SHMBUS_CHILD("strategy-subscriber")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  auto sub = b.make_subscriber(a.at(1));
  const std::uint64_t count = std::stoull(a.at(2));
  // The strategy is set on the subscriber: wait() without one must use it.
  sub.set_wait_strategy(strategy_named(a.at(3)));
  signal_parent("ready");
  std::uint64_t received = 0, disorder = 0, bad = 0, last = 0;
  message m;
  while (last < count) {
    if (!sub.wait(m, 10s)) {
      signal_parent("result timeout at=" + std::to_string(last));
      return 2;
    }
    if (m.sequence() != last + 1) ++disorder;
    if (m.text() != "m" + std::to_string(m.sequence())) ++bad;
    last = m.sequence();
    ++received;
  }
  signal_parent("result received=" + std::to_string(received) + " disorder=" + std::to_string(disorder) +
                " bad=" + std::to_string(bad) + " missed=" + std::to_string(sub.missed_total()) +
                " last=" + std::to_string(last));
  return 0;
}

TEST_CASE("every wait strategy delivers every message in order across processes") {
  for (const auto& s : all_strategies) {
    CAPTURE(s.name);
    for (const bool lockstep : {false, true}) {
      CAPTURE(lockstep);
      // Lockstep is smaller for the reason given above.
      const std::uint64_t count = stress_count(lockstep ? 2000 : 20000);
      // Free running: a ring deep enough to hold everything. Lockstep: a
      // latest-value topic, each publish made once the subscriber has taken
      // the previous message and is back waiting (polling, spinning or
      // asleep), i.e. in the window a lost wake-up needs.
      test_bus tb({topic("w", 64, lockstep ? 1 : static_cast<std::uint32_t>(count))});
      auto child = started_child("strategy-subscriber", {tb.name, "w", std::to_string(count), s.name});
      lockstep_publisher feed(tb.name, "w");
      const bool sleeps =
          s.how.mode == wait_mode::block || (s.how.mode == wait_mode::spin_then_block && s.how.spin <= 1us);
      for (std::uint64_t i = 1; i <= count; ++i) {
        // A sleeper is caught asleep; a poller just after it read.
        if (lockstep) feed.await_back_in_wait(i - 1, sleeps);
        feed.pub.publish("m" + std::to_string(i));
      }
      const std::string line = child.expect_line("result", 60s);
      INFO(line);
      CHECK(field(line, "received") == count);
      CHECK(field(line, "disorder") == 0);
      CHECK(field(line, "bad") == 0);
      CHECK(field(line, "missed") == 0);
      CHECK(field(line, "last") == count);
      CHECK(child.wait() == 0);
    }
  }
}

TEST_CASE("every wait strategy honours its timeout and then delivers what is published") {
  for (const auto& s : all_strategies) {
    CAPTURE(s.name);
    one_topic fixture(topic("r", 64, 4));
    auto& [tb, b, pub, sub] = fixture;
    std::error_code ec;
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(sub.wait_available(30ms, s.how, ec));
    CHECK_FALSE(ec);
    CHECK(std::chrono::steady_clock::now() - t0 >= 30ms);
    message m;
    CHECK_FALSE(sub.wait(m, 0ms, s.how));
    // A spin longer than the timeout ends at the timeout, not after the spin.
    CHECK_FALSE(sub.wait_available(1ms, wait_strategy::spin_then_blocking(1h), ec));
    CHECK_FALSE(ec);
    pub.publish("m1");
    CHECK(sub.wait_available(0ms, s.how, ec));
    REQUIRE(sub.wait(m, 0ms, s.how));
    CHECK(m.text() == "m1");
    CHECK_FALSE(sub.wait(m, 1ms, s.how));
  }
}

TEST_CASE("every wait strategy notices a topic closed while it waits") {
  for (const auto& s : all_strategies) {
    CAPTURE(s.name);
    auto tb = std::make_unique<test_bus>(std::vector<topic_config>{topic("r", 64, 4)});
    bus b(tb->name);
    auto sub = b.make_subscriber("r");
    std::thread stopper([&] { tb.reset(); });
    // No timeout: only noticing the close can end this wait.
    std::error_code ec;
    CHECK_FALSE(sub.wait_available(std::nullopt, s.how, ec));
    stopper.join();
    CHECK(ec == errc::topic_closed);
    message m;
    CHECK_THROWS_AS(sub.wait(m, std::nullopt, s.how), shmbus::error);
  }
}

TEST_CASE("a subscriber's wait strategy is kept, and moves with it") {
  test_bus tb({topic("r", 64, 4)});
  bus b(tb.name);
  auto sub = b.make_subscriber("r");
  CHECK(sub.strategy().mode == wait_mode::block);
  sub.set_wait_strategy(wait_strategy::spin_then_blocking(123us));
  subscriber moved = std::move(sub);
  CHECK(moved.strategy().mode == wait_mode::spin_then_block);
  CHECK(moved.strategy().spin == 123us);
}

TEST_CASE("a publish with nobody asleep makes no wake system call, one with a sleeper makes one") {
  one_topic fixture(topic("r", 64, 1));
  auto& [tb, b, pub, sub] = fixture;
  auto raw = open_raw(tb.name, "r");
  const std::uint64_t before = platform::named_event::wake_calls();

  // A subscriber that exists but does not wait.
  for (int i = 0; i < 10000; ++i) pub.publish("x");
  CHECK(platform::named_event::wake_calls() == before);

  // A busy-polling subscriber is never asleep, however often it waits.
  constexpr std::uint64_t count = 2000;
  auto poller = b.make_subscriber("r");
  poller.set_wait_strategy(wait_strategy::busy_polling());
  std::atomic<std::uint64_t> progress{0};
  const std::uint64_t base = pub.publish("m0");
  std::thread reader([&] {
    message m;
    while (progress.load() < count) {
      if (!poller.wait(m, 10s)) break;
      progress.store(m.sequence() - base, std::memory_order_release);
    }
  });
  for (std::uint64_t i = 1; i <= count; ++i) {
    await([&] { return progress.load(std::memory_order_acquire) == i - 1; }, "poller done with the previous message");
    pub.publish("x");
  }
  reader.join();
  CHECK(progress.load() == count);
  CHECK_FALSE(raw.event().has_sleepers());
  CHECK(platform::named_event::wake_calls() == before);

  // Control: the counter does count. A subscriber asleep costs exactly one.
  message drained;
  while (sub.try_read(drained)) {
  }
  std::thread sleeper([&] {
    message m;
    CHECK(sub.wait(m, std::nullopt, wait_strategy::blocking()));
  });
  await([&] { return raw.event().has_sleepers(); }, "subscriber asleep");
  pub.publish("wake");
  sleeper.join();
  CHECK(platform::named_event::wake_calls() == before + 1);
}
