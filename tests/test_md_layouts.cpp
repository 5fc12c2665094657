// The market-data demo with CTP's newer struct layouts (shmbus/market_data.hpp):
// md-strategy reads whichever layout a topic carries, told apart by size.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "shmbus/client.hpp"
#include "shmbus/market_data.hpp"
#include "support/child_process.hpp"

using namespace shmbus::test;
namespace md = shmbus::market_data;

namespace {

std::vector<std::string> all_lines(child_process& p) {
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

child_process broker_with(const std::string& bus, const std::vector<std::string>& topics) {
  std::vector<std::string> argv{SHMBUS_BROKER_PATH, "--bus", bus, "--log-level", "warn"};
  argv.insert(argv.end(), topics.begin(), topics.end());
  child_process broker(argv, true);
  broker.expect_line("ready");
  return broker;
}

// A broker configuration file, removed again at the end of the test.
struct config_file {
  std::filesystem::path path;
  config_file(const std::string& bus, const std::string& text)
      : path(std::filesystem::temp_directory_path() / (bus + ".ini")) {
    std::ofstream(path) << text;
  }
  ~config_file() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

// Longer than the 30 characters of v6.3's InstrumentID.
const std::string long_id = "SIM-very-long-instrument-id-2605-C-4500";

}  // namespace

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
  const auto out = all_lines(strategy);
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
  const auto out = all_lines(strategy);
  CHECK(strategy.wait() == 1);
  INFO(joined(out));
  CHECK(has_line(out,
                 "md-strategy: topic 'ticks' declares a 56-byte type, not a CTP depth-market-data layout "
                 "(408, 568 or 584 bytes)"));
  broker.terminate();
  CHECK(broker.wait() == 0);
}
