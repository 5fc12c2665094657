// Topic semantics in one process: ordering, exact gap accounting, conflation,
// latest(), typed and zero-copy reads, waits and closing.
#include <doctest/doctest.h>

#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "shmbus/client.hpp"
#include "shmbus/clock.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;

namespace {
std::string text_of(const message& m) { return std::string(m.text()); }

// Blocks `sub` in wait(`timeout`) while another thread opens a publisher on
// topic "r" and publishes `text`; returns what the wait returned, or
// nullopt if it returned false.
template <class Timeout>
std::optional<std::string> wait_for_publish_from_thread(bus& b, subscriber& sub, const std::string& text,
                                                        Timeout timeout) {
  std::thread t([&] {
    auto pub = b.make_publisher("r");
    pub.publish(text);
  });
  message m;
  const bool got = sub.wait(m, timeout);
  t.join();
  if (!got) return std::nullopt;
  return text_of(m);
}
}  // namespace

TEST_CASE("ring topic delivers every message in order to a subscriber that keeps up") {
  one_topic fixture(topic("r", 64, 8));
  auto& [tb, b, pub, sub] = fixture;
  message m;
  CHECK_FALSE(sub.try_read(m));
  for (int i = 1; i <= 100; ++i) {
    CHECK(pub.publish("m" + std::to_string(i)) == static_cast<std::uint64_t>(i));
    REQUIRE(sub.try_read(m));
    CHECK(m.sequence() == static_cast<std::uint64_t>(i));
    CHECK(m.missed() == 0);
    CHECK(text_of(m) == "m" + std::to_string(i));
  }
  CHECK_FALSE(sub.try_read(m));
  CHECK(sub.missed_total() == 0);
}

TEST_CASE("ring topic: a subscriber that falls behind is told exactly how many it missed") {
  const std::uint32_t depth = 8;
  one_topic fixture(topic("r", 64, depth));
  auto& [tb, b, pub, sub] = fixture;
  const int published = 50;
  for (int i = 1; i <= published; ++i) pub.publish("m" + std::to_string(i));
  message m;
  REQUIRE(sub.try_read(m));
  // Continues from the oldest message still held: published - depth + 1.
  CHECK(m.sequence() == published - depth + 1);
  CHECK(m.missed() == published - depth);
  CHECK(text_of(m) == "m" + std::to_string(published - depth + 1));
  for (std::uint64_t s = published - depth + 2; s <= published; ++s) {
    REQUIRE(sub.try_read(m));
    CHECK(m.sequence() == s);
    CHECK(m.missed() == 0);
  }
  CHECK_FALSE(sub.try_read(m));
  CHECK(sub.received_total() + sub.missed_total() == published);
}

TEST_CASE("gap accounting holds across several lapses") {
  one_topic fixture(topic("r", 32, 4));
  auto& [tb, b, pub, sub] = fixture;
  message m;
  std::uint64_t published = 0;
  for (int round = 1; round <= 10; ++round) {
    for (int i = 0; i < round * 3; ++i) pub.publish("x"), ++published;
    while (sub.try_read(m)) {
    }
    CHECK(sub.received_total() + sub.missed_total() == published);
    CHECK(m.sequence() == published);
  }
}

TEST_CASE("latest-value topic (depth 1) conflates and reports skipped messages") {
  one_topic fixture(topic("lv", 64, 1));
  auto& [tb, b, pub, sub] = fixture;
  message m;
  for (int i = 1; i <= 10; ++i) pub.publish("v" + std::to_string(i));
  REQUIRE(sub.try_read(m));
  CHECK(m.sequence() == 10);
  CHECK(m.missed() == 9);
  CHECK(text_of(m) == "v10");
  CHECK_FALSE(sub.try_read(m));
  pub.publish("v11");
  REQUIRE(sub.try_read(m));
  CHECK(m.sequence() == 11);
  CHECK(m.missed() == 0);
}

TEST_CASE("latest() jumps to the newest message and a new subscriber starts after it") {
  test_bus tb({topic("r", 64, 16)});
  bus b(tb.name);
  auto pub = b.make_publisher("r");
  message m;
  {
    auto early = b.make_subscriber("r");
    CHECK_FALSE(early.latest(m));  // nothing published yet
  }
  for (int i = 1; i <= 5; ++i) pub.publish("p" + std::to_string(i));
  auto sub = b.make_subscriber("r");
  CHECK_FALSE(sub.try_read(m));  // messages before subscribing are not delivered
  REQUIRE(sub.latest(m));
  CHECK(m.sequence() == 5);
  CHECK(text_of(m) == "p5");
  pub.publish("p6");
  pub.publish("p7");
  REQUIRE(sub.latest(m));
  CHECK(m.sequence() == 7);
  CHECK(m.missed() == 1);
}

TEST_CASE("typed publish and read of a trivially copyable struct") {
  struct tick {
    double price;
    std::int64_t volume;
    char symbol[16];
  };
  test_bus tb({topic("ticks", sizeof(tick), 4, sizeof(tick))});
  bus b(tb.name);
  auto pub = b.make_publisher<tick>("ticks");
  auto sub = b.make_subscriber<tick>("ticks");
  tick t{101.25, 7, "ESZ6"};
  pub.publish_value(t);
  tick got{};
  message_info info;
  REQUIRE(sub.try_read(got, &info));
  CHECK(got.price == 101.25);
  CHECK(got.volume == 7);
  CHECK(std::string(got.symbol) == "ESZ6");
  CHECK(info.sequence == 1);
  CHECK(info.size == sizeof(tick));
  CHECK(info.timestamp_ns > 0);
}

TEST_CASE("a caller buffer too small for the message loses nothing") {
  one_topic fixture(topic("r", 256, 4));
  auto& [tb, b, pub, sub] = fixture;
  pub.publish(std::string(100, 'a'));
  std::vector<std::byte> small(10), big(256);
  std::error_code ec;
  CHECK_FALSE(sub.try_read(std::span<std::byte>(small), ec));
  CHECK(ec == errc::buffer_too_small);
  CHECK_THROWS_AS(sub.try_read(std::span<std::byte>(small)), std::system_error);
  auto info = sub.try_read(std::span<std::byte>(big));
  REQUIRE(info);
  CHECK(info->sequence == 1);
  CHECK(info->size == 100);
  CHECK(static_cast<char>(big[99]) == 'a');
}

TEST_CASE("zero-copy read_view sees the payload in place") {
  one_topic fixture(topic("r", 64, 4));
  auto& [tb, b, pub, sub] = fixture;
  CHECK_FALSE(sub.read_view([](const message_info&, std::span<const std::byte>) {}));
  pub.publish("zero-copy");
  std::string seen;
  std::uint64_t seq = 0;
  REQUIRE(sub.read_view([&](const message_info& i, std::span<const std::byte> p) {
    seen.assign(reinterpret_cast<const char*>(p.data()), p.size());
    seq = i.sequence;
  }));
  CHECK(seen == "zero-copy");
  CHECK(seq == 1);
  CHECK_FALSE(sub.read_view([](const message_info&, std::span<const std::byte>) {}));
}

TEST_CASE("wait() times out when nothing is published and returns a message that is") {
  one_topic fixture(topic("r", 64, 4));
  auto& [tb, b, pub, sub] = fixture;
  message m;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(sub.wait(m, std::chrono::milliseconds(50)));
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(50));
  pub.publish("now");
  REQUIRE(sub.wait(m, std::chrono::milliseconds(0)));
  CHECK(text_of(m) == "now");
}

TEST_CASE("a subscriber blocked in wait() is woken by a publish from another thread") {
  test_bus tb({topic("r", 64, 4)});
  bus b(tb.name);
  auto sub = b.make_subscriber("r");
  const auto got = wait_for_publish_from_thread(b, sub, "wake", std::chrono::seconds(10));
  REQUIRE(got.has_value());
  CHECK(*got == "wake");
}

TEST_CASE("stopping the broker wakes a blocked subscriber with topic_closed, and publishers fail clearly") {
  auto tb = std::make_unique<test_bus>(std::vector<topic_config>{topic("r", 64, 4)});
  bus b(tb->name);
  auto sub = b.make_subscriber("r");
  auto pub = b.make_publisher("r");
  std::error_code ec;
  message m;
  std::thread stopper([&] { tb.reset(); });
  // Either the broker is already gone or it closes while we wait.
  const bool got = sub.wait(m, std::chrono::seconds(10), ec);
  stopper.join();
  CHECK_FALSE(got);
  CHECK(ec == errc::topic_closed);
  pub.publish("late", ec);
  CHECK(ec == errc::topic_closed);
  CHECK_FALSE(b.broker_alive());
}

TEST_CASE("several publishers on one topic are serialised: sequences are unique and gapless") {
  test_bus tb({topic("r", 64, 4096)});
  bus b(tb.name);
  auto sub = b.make_subscriber("r");
  constexpr int per_thread = 1000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&b, t] {
      auto pub = b.make_publisher("r");
      for (int i = 0; i < per_thread; ++i) pub.publish("t" + std::to_string(t) + ":" + std::to_string(i));
    });
  }
  for (auto& t : threads) t.join();
  message m;
  std::uint64_t expect = 1;
  while (sub.try_read(m)) {
    CHECK(m.sequence() == expect);
    ++expect;
  }
  CHECK(expect - 1 == 3 * per_thread);
  CHECK(sub.missed_total() == 0);
}

TEST_CASE("latest() on an already consumed message copies it again without counting it twice") {
  one_topic fixture(topic("r", 64, 4));
  auto& [tb, b, pub, sub] = fixture;
  pub.publish("one");
  message m;
  REQUIRE(sub.try_read(m));
  REQUIRE(sub.latest(m));
  CHECK(text_of(m) == "one");
  CHECK(m.sequence() == 1);
  CHECK(m.missed() == 0);
  CHECK(sub.received_total() == 1);
  CHECK_FALSE(sub.try_read(m));
}

TEST_CASE("a timeout too large to add to the clock means wait for ever, not return at once") {
  test_bus tb({topic("r", 64, 4)});
  bus b(tb.name);
  auto sub = b.make_subscriber("r");
  const auto got = wait_for_publish_from_thread(b, sub, "late", std::chrono::nanoseconds::max());
  REQUIRE(got.has_value());
  CHECK(*got == "late");
}

TEST_CASE("typed wait: false after the timeout, else the value published meanwhile") {
  test_bus tb({topic("v", 8, 4, 8)});
  bus b(tb.name);
  auto sub = b.make_subscriber<std::uint64_t>("v");
  auto pub = b.make_publisher<std::uint64_t>("v");
  std::uint64_t v = 7;
  std::error_code ec;
  CHECK_FALSE(sub.wait(v, std::chrono::milliseconds(20), nullptr, ec));
  CHECK_FALSE(ec);
  CHECK(v == 7);
  // Either published before the wait starts or while it sleeps: one wait gets it.
  std::thread publisher_thread([&] { pub.publish_value(std::uint64_t{42}); });
  message_info info;
  const bool got = sub.wait(v, std::chrono::seconds(10), &info);
  publisher_thread.join();
  CHECK(got);
  CHECK(v == 42);
  CHECK(info.sequence == 1);
  CHECK(info.size == 8);
}

TEST_CASE("messages are stamped on the public clock, shmbus::monotonic_ns()") {
  test_bus tb({topic("c", 64, 4)});
  bus b(tb.name);
  auto sub = b.make_subscriber("c");
  auto pub = b.make_publisher("c");
  const std::int64_t before = monotonic_ns();
  pub.publish("now");
  const std::int64_t after = monotonic_ns();
  message m;
  REQUIRE(sub.try_read(m));
  CHECK(m.timestamp_ns() >= before);
  CHECK(m.timestamp_ns() <= after);
}
