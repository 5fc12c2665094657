// The market-data demo end to end, as scripts/demo runs it: broker with the
// shipped configuration, md-feed, a table strategy and a headless one.
#include <doctest/doctest.h>

#include <chrono>

#include "shmbus/client.hpp"
#include "shmbus/market_data.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "support/child_process.hpp"

using namespace shmbus::test;

namespace {

std::vector<std::string> lines_until_eof(child_process& p) {
  std::vector<std::string> lines;
  while (auto line = p.read_line()) lines.push_back(*line);
  return lines;
}

bool has_line(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// The demo's broker (examples/market_data/broker.ini) on `bus`, ready.
child_process demo_broker(const std::string& bus) {
  child_process broker({SHMBUS_BROKER_PATH, "--bus", bus, "--config",
                        SHMBUS_SOURCE_DIR "/examples/market_data/broker.ini", "--log-level", "warn"},
                       true);
  broker.expect_line("ready");
  return broker;
}

}  // namespace

TEST_CASE("market-data demo: feed, table strategy and headless strategy, then a clean shutdown") {
  const std::string bus = unique_bus();
  auto broker = demo_broker(bus);
  child_process feed({SHMBUS_MD_FEED_PATH, "--bus", bus, "--layout", "both", "--rate", "1000", "--seed", "7"}, true);
  CHECK(feed.read_line() == "md-feed: 8 instruments, 1000 snapshots/s, to topics 'md' and 'md.ID' on bus '" + bus +
                                "', exclusive publisher");
  child_process headless(
      {SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--per-instrument", "--headless", "--label", "headless"}, true);
  // Not a terminal: one status line per interval, then the summary.
  child_process table({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--seconds", "1.5", "--interval", "0.5"}, true);
  const auto out = lines_until_eof(table);
  CHECK(table.wait() == 0);
  INFO(joined(out));
  CHECK(has_line(out, " snapshots/s  8 instruments  gaps 0  latency p50 "));
  CHECK(has_line(out, " snapshots from 8 instruments in "));
  CHECK(has_line(out, "; stopped: time is up"));
  CHECK(has_line(out, "md-strategy: publish->receive latency p50 "));
  CHECK(has_line(out, "md-strategy:   rb2605     SHFE "));
  CHECK(has_line(out, "md-strategy:   IF2603     CFFEX "));

  // While it runs, `shmbus stat` sees the feed's rate on the keyed topic and
  // the headless strategy on each per-instrument topic.
  child_process stat({SHMBUS_CLI_PATH, "--bus", bus, "stat", "--json", "--interval", "0.3"}, true);
  const std::string json = stat.read_line().value();
  CHECK(stat.wait() == 0);
  CHECK(json.find("{\"name\":\"md\",\"max_message_size\":408,\"depth\":4096,\"type_size\":408,") != std::string::npos);
  CHECK(json.find("{\"name\":\"md.rb2605\",\"max_message_size\":408,\"depth\":1,\"type_size\":408,") !=
        std::string::npos);
  const auto md = json.find("{\"name\":\"md\"");
  const auto rate = std::stod(json.substr(json.find("\"publishes_per_s\":", md) + 18));
  CHECK(rate > 100);
  CHECK(json.find("\"subscribers\":1", json.find("{\"name\":\"md.SR605\"")) != std::string::npos);
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
  REQUIRE(out.size() == 2);
  CHECK(out[0].find("md-strategy: 0 snapshots from 0 instruments in ") == 0);
  CHECK(out[0].find(" (0/s), 0 missed; stopped: time is up") != std::string::npos);
  CHECK(out[1] == "md-strategy: no market data received (is md-feed running on bus '" + bus + "'?)");
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
