// Issue 9 item 6: the subscriber loops the README and docs/api.md show, as
// the compiled programs they quote, end when the broker stops instead of
// spinning a core.
#include <doctest/doctest.h>

#include "shmbus/client.hpp"
#include "support/child_process.hpp"
#include "support/multiprocess.hpp"

using namespace shmbus::test;

namespace {

struct env_guard {
  std::string name;
  env_guard(std::string n, const std::string& value) : name(std::move(n)) { set_env(name, value); }
  ~env_guard() { set_env(name, ""); }
};

void exits_when_the_broker_stops(const std::string& program) {
  const std::string bus = unique_bus();
  child_process broker({SHMBUS_BROKER_PATH, "--bus", bus, "--config", SHMBUS_SOURCE_DIR "/examples/api/broker.ini"},
                       true);
  broker.expect_line("ready");
  const env_guard env("SHMBUS_BUS", bus);
  child_process reader({program}, true);
  child_process publisher({SHMBUS_API_PUBLISHER_PATH, "3"}, true);
  CHECK(publisher.wait() == 0);
  reader.expect_line("#3");  // it reads
  broker.terminate();
  CHECK(broker.wait() == 0);
  // Bounded: a loop that ignores the close never gets here.
  CHECK(reader.expect_line("the broker stopped", 10s).find("topic 'quotes'") != std::string::npos);
  CHECK(reader.wait(10s) == 0);
}

}  // namespace

TEST_CASE("item 6: the README's subscriber loop (examples/api/poll_loop.cpp) ends when the broker stops") {
  exits_when_the_broker_stops(SHMBUS_API_POLL_LOOP_PATH);
}

TEST_CASE("item 6: docs/api.md's subscriber (examples/api/subscriber.cpp) ends when the broker stops") {
  exits_when_the_broker_stops(SHMBUS_API_SUBSCRIBER_PATH);
}

TEST_CASE("docs/api.md's subscriber without exceptions (examples/api/no_exceptions.cpp) ends when the broker stops") {
  exits_when_the_broker_stops(SHMBUS_API_NO_EXCEPTIONS_PATH);
}

TEST_CASE("docs/api.md's feed (examples/api/feed.cpp): an exclusive publisher by loan, and a second feed is refused") {
  const std::string bus = unique_bus();
  child_process broker({SHMBUS_BROKER_PATH, "--bus", bus, "--config", SHMBUS_SOURCE_DIR "/examples/api/broker.ini"},
                       true);
  broker.expect_line("ready");
  const env_guard env("SHMBUS_BUS", bus);
  child_process reader({SHMBUS_API_SUBSCRIBER_PATH}, true);
  // Subscribed before the feed starts: the feed soon blocks on its full
  // stdout pipe, and a reader that subscribed after that would see nothing.
  shmbus::bus b(bus);
  await([&] { return b.stats().at(0).live_subscribers == 1; }, "the reader's subscription");
  child_process feed({SHMBUS_API_FEED_PATH, "100000000"}, true);
  CHECK(feed.expect_line("published #1 cu2603 ").find("71010.0/71020.0") != std::string::npos);
  reader.expect_line("cu2603");  // quotes written in place arrive whole
  // While it runs, another feed cannot publish on its topic.
  child_process second({SHMBUS_API_FEED_PATH, "1"}, true);
  const auto refused = second.expect_line("api-feed: ");
  CHECK(refused.find("topic 'quotes': publisher pid " + std::to_string(feed.pid()) +
                     " holds the exclusive publish right") != std::string::npos);
  CHECK(second.wait() == 1);
  feed.kill_hard();
  feed.wait();
  broker.terminate();
  CHECK(broker.wait() == 0);
  CHECK(reader.expect_line("the broker stopped", 10s).find("topic 'quotes'") != std::string::npos);
  CHECK(reader.wait(10s) == 0);
}

TEST_CASE("docs/api.md's market (examples/api/market.cpp): a keyed topic joined with a snapshot, all keys or some") {
  const std::string bus = unique_bus();
  child_process broker({SHMBUS_BROKER_PATH, "--bus", bus, "--config", SHMBUS_SOURCE_DIR "/examples/api/broker.ini"},
                       true);
  broker.expect_line("ready");
  const env_guard env("SHMBUS_BUS", bus);
  child_process feed({SHMBUS_API_MARKET_PATH, "publish", "30"}, true);
  CHECK(feed.wait() == 0);
  // A late joiner sees every instrument's latest quote at once (quotes 28,
  // 29 and 30 went to rb2605, IF2612 and cu2603), in the order the
  // instruments first appeared.
  child_process all({SHMBUS_API_MARKET_PATH, "watch"}, true);
  CHECK(all.read_line() == "snapshot rb2605 #28 1028.0/1029.0");
  CHECK(all.read_line() == "snapshot IF2612 #29 1029.0/1030.0");
  CHECK(all.read_line() == "snapshot cu2603 #30 1030.0/1031.0");
  child_process one({SHMBUS_API_MARKET_PATH, "watch", "rb2605"}, true);
  CHECK(one.read_line() == "snapshot rb2605 #28 1028.0/1029.0");
  // Then the stream: the next quotes, after the snapshot, once.
  child_process more({SHMBUS_API_MARKET_PATH, "publish", "2"}, true);
  CHECK(more.wait() == 0);
  CHECK(all.read_line() == "update rb2605 #1 1001.0/1002.0");
  CHECK(all.read_line() == "update IF2612 #2 1002.0/1003.0");
  CHECK(one.read_line() == "update rb2605 #1 1001.0/1002.0");
  CHECK(all.wait(30s) == 0);  // 10 s without a quote end it
  CHECK(one.wait(30s) == 0);
  broker.terminate();
  CHECK(broker.wait() == 0);
}
