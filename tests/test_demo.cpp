// The market-data demo end to end, as scripts/demo runs it: broker with the
// shipped configuration, md-feed, a table strategy and a headless one.
#include <doctest/doctest.h>

#include <chrono>
#include <sstream>
#include <thread>

#ifndef _WIN32
#include <signal.h>
#endif

#include "shmbus/client.hpp"
#include "shmbus/market_data.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "support/child_process.hpp"
#include "support/process_output.hpp"

using namespace shmbus::test;

namespace {

// The demo's broker (examples/market_data/broker.ini) on `bus`, ready.
child_process demo_broker(const std::string& bus) {
  child_process broker({SHMBUS_BROKER_PATH, "--bus", bus, "--config",
                        SHMBUS_SOURCE_DIR "/examples/market_data/broker.ini", "--log-level", "warn"},
                       true);
  broker.expect_line("ready");
  return broker;
}

// Bounded wait on what the topic `md` of `b` reports in its segment.
template <class Done>
void wait_for(shmbus::bus& b, const char* what, Done&& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    for (const auto& s : b.stats())
      if (s.info.name == "md" && done(s)) return;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "timed out waiting until " << what);
    std::this_thread::yield();
  }
}

}  // namespace

TEST_CASE("market-data demo: feed, table strategy and headless strategy, then a clean shutdown") {
  const std::string bus = unique_bus();
  auto broker = demo_broker(bus);
  child_process feed({SHMBUS_MD_FEED_PATH, "--bus", bus, "--rate", "1000", "--seed", "7"}, true);
  CHECK(feed.read_line() ==
        "md-feed: 8 instruments, 1000 snapshots/s, to keyed topic 'md' on bus '" + bus + "', exclusive publisher");
  child_process headless({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--headless", "--label", "headless"}, true);
  // Not a terminal: one status line per interval, then the summary.
  child_process table({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--seconds", "1.5", "--interval", "0.5"}, true);
  const auto out = lines_until_eof(table);
  CHECK(table.wait() == 0);
  INFO(joined(out));
  CHECK(has_line(out, " snapshots/s  8 instruments  gaps 0  resyncs 0  latency p50 "));
  CHECK(has_line(out, " snapshots from 8 instruments in "));
  CHECK(has_line(out, "; stopped: time is up"));
  CHECK(has_line(out, "md-strategy: publish->receive latency p50 "));
  CHECK(has_line(out, "md-strategy:   rb2605     SHFE "));
  CHECK(has_line(out, "md-strategy:   IF2603     CFFEX "));

  // While it runs, `shmbus stat` sees the feed's rate on the keyed topic and
  // the headless strategy reading it.
  child_process stat({SHMBUS_CLI_PATH, "--bus", bus, "stat", "--json", "--interval", "0.3"}, true);
  const std::string json = stat.read_line().value();
  CHECK(stat.wait() == 0);
  CHECK(json.find("{\"name\":\"md\",\"max_message_size\":408,\"depth\":4096,\"type_size\":408,") != std::string::npos);
  const auto md = json.find("{\"name\":\"md\"");
  const auto rate = std::stod(json.substr(json.find("\"publishes_per_s\":", md) + 18));
  CHECK(rate > 100);
  CHECK(json.find("\"subscribers\":1", md) != std::string::npos);
  // One keyed topic holds the whole market (keys = 4096).
  {
    shmbus::bus b(bus);
    REQUIRE(b.topics().size() == 1);
    CHECK(b.topics()[0].key_capacity == 4096);
    CHECK(b.stats().at(0).keys == 8);
  }
  // The feed holds its topics' exclusive publish right: stat names it, and
  // a second feed started by mistake is refused, naming the first.
  CHECK(json.find("\"exclusive_pid\":" + std::to_string(feed.pid()), md) != std::string::npos);
  child_process second({SHMBUS_MD_FEED_PATH, "--bus", bus, "--seconds", "5"}, true);
  const auto second_out = lines_until_eof(second);
  CHECK(second.wait() == 1);
  INFO(joined(second_out));
  CHECK(has_line(second_out, "md-feed: topic 'md': publisher pid " + std::to_string(feed.pid()) +
                                 " holds the exclusive publish right"));

  headless.terminate();
  const auto head_out = lines_until_eof(headless);
  CHECK(headless.wait() == 0);
  CHECK(has_line(head_out, "headless: "));
  CHECK(has_line(head_out, " from 8 instruments in "));
  CHECK(has_line(head_out, "; stopped: asked to stop (Ctrl-C or SIGTERM)"));
  feed.terminate();
  CHECK(feed.expect_line("snapshots published").find("md-feed: ") == 0);
  CHECK(feed.wait() == 0);
  broker.terminate();
  CHECK(broker.wait() == 0);
  // Nothing left behind (where names outlive their handles and can be listed).
  CHECK(shmbus::platform::shared_memory_region::list(shmbus::detail::bus_object_prefix(bus)).empty());
}

TEST_CASE("market-data demo: a strategy that receives nothing says so and fails") {
  const std::string bus = unique_bus();
  auto broker = demo_broker(bus);
  child_process strategy({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--seconds", "0.2", "--headless"}, true);
  const auto out = lines_until_eof(strategy);
  CHECK(strategy.wait() == 1);
  REQUIRE(out.size() == 3);
  // Joined with the snapshot of an empty topic.
  CHECK(out[0] == "md-strategy: joined with a snapshot of 0 instruments");
  CHECK(out[1].find("md-strategy: 0 snapshots from 0 instruments in ") == 0);
  CHECK(out[1].find(" (0/s), 0 missed, 0 resyncs; stopped: time is up") != std::string::npos);
  CHECK(out[2] == "md-strategy: no market data received (is md-feed running on bus '" + bus + "'?)");
  broker.terminate();
  CHECK(broker.wait() == 0);
}

TEST_CASE("market-data demo: md-strategy skips a message that is not a snapshot and goes on") {
  const std::string bus = unique_bus();
  // An untyped topic: any size may be published to it.
  child_process broker({SHMBUS_BROKER_PATH, "--bus", bus, "--topic", "raw:512:16", "--log-level", "warn"}, true);
  broker.expect_line("ready");
  child_process strategy({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--topic", "raw", "--headless"}, true);
  shmbus::bus b(bus);
  // Bounded waits on what the strategy's subscriber reports in the topic.
  auto wait_for = [&](const char* what, auto&& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done(b.stats().at(0)))
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "md-strategy never " << what);
  };
  wait_for("subscribed", [](const shmbus::topic_stats& s) { return s.live_subscribers == 1; });
  auto pub = b.make_publisher("raw");
  pub.publish("hello");
  shmbus::market_data::depth_market_data md{};
  shmbus::market_data::set_text(md.instrument_id, "rb2605");
  md.last_price = 3512;
  pub.publish_value(md);
  wait_for("read both",
           [](const shmbus::topic_stats& s) { return !s.subscribers.empty() && s.subscribers[0].received == 2; });
  strategy.terminate();
  const auto out = lines_until_eof(strategy);
  CHECK(strategy.wait() == 0);
  INFO(joined(out));
  CHECK(has_line(out, "md-strategy: topic 'raw': message #1 is 5 bytes, not a snapshot; skipped"));
  CHECK(has_line(out, "md-strategy: 1 snapshots from 1 instruments in "));
  broker.terminate();
  CHECK(broker.wait() == 0);
}

TEST_CASE(
    "market-data demo: a strategy restarted mid-session shows every instrument at once, and --instruments follows a "
    "few") {
  const std::string bus = unique_bus();
  auto broker = demo_broker(bus);
  // A slow feed: in its first line a strategy could not have seen all 8
  // instruments from the stream, only from the snapshot.
  child_process feed({SHMBUS_MD_FEED_PATH, "--bus", bus, "--rate", "50", "--seed", "7"}, true);
  CHECK(feed.read_line().value().find("md-feed: 8 instruments, 50 snapshots/s, to keyed topic 'md'") == 0);
  shmbus::bus b(bus);
  wait_for(b, "the feed published every instrument", [](const shmbus::topic_stats& s) { return s.keys == 8; });
  const std::string all = " 8 instruments: IF2603 SR605 au2606 cu2603 i2605 m2605 rb2605 sc2604";

  // A strategy that dies mid-session (SIGKILL), and its restart.
  child_process first({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--headless", "--label", "first"}, true);
  CHECK(first.read_line() == "first: joined with a snapshot of" + all);
  first.kill_hard();
  first.wait();
  child_process restarted(
      {SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--seconds", "1", "--interval", "0.4", "--label", "restarted"}, true);
  // Its first output line, before any interval has passed.
  CHECK(restarted.read_line() == "restarted: joined with a snapshot of" + all);
  auto out = lines_until_eof(restarted);
  CHECK(restarted.wait() == 0);
  INFO(joined(out));
  CHECK(has_line(out, " snapshots/s  8 instruments  gaps 0  resyncs 0  latency "));
  CHECK(has_line(out, " snapshots from 8 instruments in "));
  CHECK(has_line(out, " 0 missed, 0 resyncs; stopped: time is up"));

  // Following two instruments: the snapshot and the stream hold only those.
  child_process some({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--instruments", "rb2605,IF2603", "--seconds", "1",
                      "--interval", "0.4", "--label", "some"},
                     true);
  CHECK(some.read_line() == "some: joined with a snapshot of 2 instruments: IF2603 rb2605");
  out = lines_until_eof(some);
  CHECK(some.wait() == 0);
  INFO(joined(out));
  CHECK(has_line(out, " snapshots/s  2 instruments  gaps 0  resyncs 0  latency "));
  CHECK(has_line(out, "some: "));
  CHECK(has_line(out, " from 2 instruments in "));
  CHECK(has_line(out, "some:   IF2603     CFFEX "));
  CHECK(has_line(out, "some:   rb2605     SHFE "));
  CHECK(!has_line(out, "some:   cu2603"));
  feed.terminate();
  CHECK(feed.wait() == 0);

  // With the feed stopped, the snapshot alone: market data (exit 0), but
  // no ticks (its values are not this run's updates).
  child_process after({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--seconds", "0.3", "--headless", "--label", "after"},
                      true);
  CHECK(after.read_line() == "after: joined with a snapshot of" + all);
  out = lines_until_eof(after);
  CHECK(after.wait() == 0);
  INFO(joined(out));
  CHECK(has_line(out, "after: 0 snapshots from 8 instruments in "));
  CHECK(has_line(out, "after:   rb2605     SHFE          0 snapshots  last "));
  broker.terminate();
  CHECK(broker.wait() == 0);
}

#ifndef _WIN32
TEST_CASE("market-data demo: a strategy that falls behind the ring resyncs, and its table ends current") {
  const std::string bus = unique_bus();
  // A 64-deep ring, so that a strategy stopped briefly falls behind it.
  child_process broker({SHMBUS_BROKER_PATH, "--bus", bus, "--topic", "md:408:64:16", "--log-level", "warn"}, true);
  broker.expect_line("ready");
  child_process feed({SHMBUS_MD_FEED_PATH, "--bus", bus, "--rate", "5000", "--seed", "7"}, true);
  feed.expect_line("md-feed: ");
  shmbus::bus b(bus);
  wait_for(b, "the feed published every instrument", [](const shmbus::topic_stats& s) { return s.keys == 8; });
  child_process strategy({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--headless", "--label", "behind"}, true);
  CHECK(strategy.expect_line("behind: joined with a snapshot of ").find(" 8 instruments: ") != std::string::npos);
  wait_for(b, "the strategy subscribed", [](const shmbus::topic_stats& s) { return s.subscribers.size() == 1; });
  // Stopped (SIGSTOP) until the feed is four rings ahead of it.
  REQUIRE(::kill(static_cast<pid_t>(strategy.pid()), SIGSTOP) == 0);
  wait_for(b, "the strategy fell behind", [](const shmbus::topic_stats& s) {
    return s.subscribers.size() == 1 && s.published > s.subscribers[0].last_read + 4 * 64;
  });
  REQUIRE(::kill(static_cast<pid_t>(strategy.pid()), SIGCONT) == 0);
  wait_for(b, "the strategy was told of its loss",
           [](const shmbus::topic_stats& s) { return s.subscribers.size() == 1 && s.subscribers[0].missed > 0; });
  // The feed stops; the strategy reads up to its last message.
  feed.terminate();
  CHECK(feed.wait() == 0);
  wait_for(b, "the strategy read everything", [](const shmbus::topic_stats& s) {
    return s.subscribers.size() == 1 && s.subscribers[0].last_read == s.published;
  });
  strategy.terminate();
  const auto out = lines_until_eof(strategy);
  CHECK(strategy.wait() == 0);
  INFO(joined(out));

  // "behind: N snapshots from 8 instruments in T s (R/s), M missed, K resyncs; ..."
  std::uint64_t missed = 0, resyncs = 0, gaps = 0;
  std::size_t rows = 0;
  auto reader = b.make_subscriber("md");
  for (const auto& line : out) {
    const auto from = line.find(" snapshots from 8 instruments in ");
    if (line.rfind("behind: ", 0) == 0 && from != std::string::npos) {
      const auto m = line.find("), ", from);
      REQUIRE(m != std::string::npos);
      std::istringstream in(line.substr(m + 3));
      std::string word;
      in >> missed >> word >> resyncs;
      CHECK(word == "missed,");
    }
    // "behind:   ID EXCH N snapshots  last P volume V gaps G ...": the
    // table's last state. Each row must be the instrument's final value,
    // not one from before the loss.
    if (line.rfind("behind:   ", 0) != 0) continue;
    std::istringstream in(line.substr(10));
    std::string id, exchange, word, last;
    std::uint64_t snapshots = 0, row_gaps = 0;
    std::int32_t volume = -1;
    in >> id >> exchange >> snapshots >> word >> word >> last >> word >> volume >> word >> row_gaps;
    CAPTURE(line);
    shmbus::market_data::depth_market_data latest{};
    REQUIRE(reader.get(id, latest));
    CHECK(volume == latest.volume);
    gaps += row_gaps;
    ++rows;
  }
  CHECK(rows == 8);
  CHECK(missed > 0);
  CHECK(resyncs >= 1);
  CHECK(gaps == missed);  // the total is the instruments' gaps
  broker.terminate();
  CHECK(broker.wait() == 0);
}
#endif
