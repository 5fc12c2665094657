// The market-data demo with CTP's newer struct layouts (shmbus/market_data.hpp):
// md-feed --ctp publishes v6.5.1 or v6.6.7+ snapshots, and md-strategy reads
// whichever layout a topic carries, told apart by size.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "shmbus/client.hpp"
#include "shmbus/market_data.hpp"
#include "support/child_process.hpp"
#include "support/process_output.hpp"

using namespace shmbus::test;
namespace md = shmbus::market_data;

namespace {

child_process broker_with(const std::string& bus, const std::vector<std::string>& topics) {
  std::vector<std::string> argv{SHMBUS_BROKER_PATH, "--bus", bus, "--log-level", "warn"};
  argv.insert(argv.end(), topics.begin(), topics.end());
  child_process broker(argv, true);
  broker.expect_line("ready");
  return broker;
}

// Longer than the 30 characters of v6.3's InstrumentID.
const std::string long_id = "SIM-very-long-instrument-id-2605-C-4500";

}  // namespace

TEST_CASE("md-feed --ctp v6.5 and v6.7 publish CTP's newer layouts, and md-strategy reads them") {
  struct layout {
    const char* ctp;
    std::size_t size;
  };
  for (const layout l :
       {layout{"v6.5", sizeof(md::depth_market_data_v6_5)}, layout{"v6.7", sizeof(md::depth_market_data_v6_7)}}) {
    CAPTURE(l.ctp);
    const std::string bus = unique_bus();
    const std::string size = std::to_string(l.size);
    config_file ini(bus,
                    "[topic md]\nmax_message_size = " + size + "\ntype_size = " + size + "\ndepth = 1024\nkeys = 16\n");
    auto broker = broker_with(bus, {"--config", ini.path.string()});
    child_process feed({SHMBUS_MD_FEED_PATH, "--bus", bus, "--ctp", l.ctp, "--instruments", "rb2605," + long_id,
                        "--rate", "500", "--seed", "7"},
                       true);
    CHECK(feed.read_line() == "md-feed: 2 instruments, 500 snapshots/s, to keyed topic 'md' on bus '" + bus +
                                  "', exclusive publisher, CTP " + l.ctp + " layout (" + size + " bytes)");
    child_process strategy({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--seconds", "1.5", "--headless"}, true);
    const auto out = lines_until_eof(strategy);
    CHECK(strategy.wait() == 0);
    INFO(joined(out));
    CHECK(has_line(out, " snapshots from 2 instruments in "));
    CHECK(has_line(out, ", 0 missed, 0 resyncs; stopped: time is up"));
    // The whole 39-character ID, which v6.3 could not carry, and the
    // exchange beside it: read from the wide fields at the end.
    CHECK(has_line(out, "md-strategy:   " + long_id + " SIM "));
    CHECK(has_line(out, "md-strategy:   rb2605     SHFE "));
    feed.terminate();
    CHECK(feed.expect_line("snapshots published").find("md-feed: ") == 0);
    CHECK(feed.wait() == 0);
    broker.terminate();
    CHECK(broker.wait() == 0);
  }
}

TEST_CASE("md-strategy reads each message of an untyped topic in the layout its size names") {
  const std::string bus = unique_bus();
  auto broker = broker_with(bus, {"--topic", "raw:1024:16"});
  child_process strategy({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--topic", "raw", "--headless"}, true);
  shmbus::bus b(bus);
  auto wait_for = [&](const char* what, auto&& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done(b.stats().at(0)))
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "md-strategy never " << what);
  };
  wait_for("subscribed", [](const shmbus::topic_stats& s) { return s.live_subscribers == 1; });
  auto pub = b.make_publisher("raw");
  md::depth_market_data_v6_3 v63{};
  md::set_text(v63.instrument_id, "rb2605");
  md::set_text(v63.exchange_id, "SHFE");
  v63.last_price = 3512;
  md::depth_market_data_v6_5 v65{};
  md::set_text(v65.instrument_id, long_id);
  md::set_text(v65.exchange_id, "DCE");
  v65.last_price = 2915;
  md::depth_market_data_v6_7 v67{};
  md::set_text(v67.instrument_id, long_id + "-v67");
  md::set_text(v67.exchange_id, "CFFEX");
  v67.last_price = 3925.4;
  pub.publish_value(v63);
  pub.publish_value(v65);
  pub.publish_value(v67);
  pub.publish("not a snapshot");
  wait_for("read all four",
           [](const shmbus::topic_stats& s) { return !s.subscribers.empty() && s.subscribers[0].received == 4; });
  strategy.terminate();
  const auto out = lines_until_eof(strategy);
  CHECK(strategy.wait() == 0);
  INFO(joined(out));
  CHECK(has_line(out, "md-strategy: 3 snapshots from 3 instruments in "));
  CHECK(has_line(out, "md-strategy:   rb2605     SHFE          1 snapshots  last 3512 "));
  CHECK(has_line(out, "md-strategy:   " + long_id + " DCE           1 snapshots  last 2915 "));
  CHECK(has_line(out, "md-strategy:   " + long_id + "-v67 CFFEX         1 snapshots  last 3925.4 "));
  CHECK(has_line(out, "md-strategy: topic 'raw': message #4 is 14 bytes, not a snapshot; skipped"));
  broker.terminate();
  CHECK(broker.wait() == 0);
}

TEST_CASE("md-strategy refuses a topic typed as no CTP layout") {
  const std::string bus = unique_bus();
  config_file ini(bus, "[topic ticks]\nmax_message_size = 56\ntype_size = 56\n");
  auto broker = broker_with(bus, {"--config", ini.path.string()});
  child_process strategy({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--topic", "ticks", "--headless"}, true);
  const auto out = lines_until_eof(strategy);
  CHECK(strategy.wait() == 1);
  INFO(joined(out));
  CHECK(has_line(out,
                 "md-strategy: topic 'ticks' declares a 56-byte type, not a CTP depth-market-data layout "
                 "(408, 568 or 584 bytes)"));
  broker.terminate();
  CHECK(broker.wait() == 0);
}

TEST_CASE("md-feed refuses an instrument ID its layout cannot hold, and an unknown --ctp") {
  // Refused before it opens the bus: no broker is needed.
  const std::string bus = unique_bus();
  // Cut to 30 characters, two long IDs could publish under one name.
  child_process feed({SHMBUS_MD_FEED_PATH, "--bus", bus, "--instruments", long_id, "--seconds", "1"}, true);
  auto out = lines_until_eof(feed);
  CHECK(feed.wait() == 2);
  INFO(joined(out));
  CHECK(has_line(out, "md-feed: instrument ID '" + long_id +
                          "' is 39 characters; the v6.3 layout holds at most 30 (--ctp v6.5 or v6.7: 80)"));
  child_process bad({SHMBUS_MD_FEED_PATH, "--bus", bus, "--ctp", "v6.4"}, true);
  out = lines_until_eof(bad);
  CHECK(bad.wait() == 2);
  CHECK(has_line(out, "md-feed: --ctp must be v6.3, v6.5 or v6.7"));
}

TEST_CASE("md-feed --layout ring publishes plain messages to a topic without keys, and each layout refuses the other") {
  const std::string bus = unique_bus();
  auto broker = broker_with(bus, {"--topic", "ring:408:64", "--topic", "keyed:408:64:4"});
  child_process feed({SHMBUS_MD_FEED_PATH, "--bus", bus, "--topic", "ring", "--layout", "ring", "--rate", "500"}, true);
  CHECK(feed.read_line() ==
        "md-feed: 8 instruments, 500 snapshots/s, to topic 'ring' on bus '" + bus + "', exclusive publisher");
  // md-strategy reads a plain ring as before: no snapshot, no key filter.
  child_process strategy({SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--topic", "ring", "--seconds", "1", "--headless"},
                         true);
  auto out = lines_until_eof(strategy);
  CHECK(strategy.wait() == 0);
  INFO(joined(out));
  CHECK(!has_line(out, "joined with a snapshot"));
  CHECK(has_line(out, " snapshots from 8 instruments in "));
  CHECK(has_line(out, "md-strategy:   rb2605     SHFE "));
  child_process filtered(
      {SHMBUS_MD_STRATEGY_PATH, "--bus", bus, "--topic", "ring", "--instruments", "rb2605", "--headless"}, true);
  out = lines_until_eof(filtered);
  CHECK(filtered.wait() == 1);
  CHECK(has_line(out, "md-strategy: topic 'ring' is not keyed: --instruments follows instruments of a keyed topic"));
  feed.terminate();
  CHECK(feed.wait() == 0);

  child_process keyed_to_ring({SHMBUS_MD_FEED_PATH, "--bus", bus, "--topic", "ring", "--seconds", "1"}, true);
  out = lines_until_eof(keyed_to_ring);
  CHECK(keyed_to_ring.wait() == 1);
  CHECK(has_line(out, "md-feed: topic 'ring' is not keyed (declare it with keys = N, or use --layout ring)"));
  child_process ring_to_keyed(
      {SHMBUS_MD_FEED_PATH, "--bus", bus, "--topic", "keyed", "--layout", "ring", "--seconds", "1"}, true);
  out = lines_until_eof(ring_to_keyed);
  CHECK(ring_to_keyed.wait() == 1);
  CHECK(has_line(out, "md-feed: topic 'keyed' is keyed (--layout keyed publishes to it)"));
  // 8 instruments do not fit 4 keys: told before anything is published.
  child_process too_many({SHMBUS_MD_FEED_PATH, "--bus", bus, "--topic", "keyed", "--seconds", "1"}, true);
  out = lines_until_eof(too_many);
  CHECK(too_many.wait() == 1);
  CHECK(has_line(out, "md-feed: topic 'keyed' holds at most 4 keys, not 8 instruments"));
  for (const auto& t : shmbus::bus(bus).stats())
    if (t.info.name == "keyed") CHECK(t.published == 0);
  broker.terminate();
  CHECK(broker.wait() == 0);
}

TEST_CASE("md-feed refuses an instrument ID longer than a key (before it opens the bus)") {
  const std::string bus = unique_bus();
  const std::string id64(64, 'x');
  child_process feed({SHMBUS_MD_FEED_PATH, "--bus", bus, "--ctp", "v6.7", "--instruments", id64}, true);
  const auto out = lines_until_eof(feed);
  CHECK(feed.wait() == 2);
  INFO(joined(out));
  CHECK(has_line(out,
                 "md-feed: instrument ID '" + id64 + "' is 64 characters; a key holds at most 63 (--layout ring: 80)"));
}
