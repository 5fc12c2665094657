// The shipped binaries, end to end: shmbus-broker and the shmbus CLI.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string_view>
#include <thread>

#include "shmbus/client.hpp"
#include "shmbus/market_data.hpp"
#include "support/child_process.hpp"
#include "support/multiprocess.hpp"
#include "support/process_output.hpp"

using namespace shmbus::test;

namespace {

struct run_result {
  int code;
  std::string out;  // stdout and stderr together
};

run_result run(std::vector<std::string> argv, const std::string& input = {}) {
  child_process p(std::move(argv), true);
  if (!input.empty()) p.write(input);
  p.close_stdin();
  std::string out;
  while (auto line = p.read_line()) out += *line + "\n";
  return {p.wait(), out};
}

std::vector<std::string> cli(const std::string& bus, std::vector<std::string> args) {
  std::vector<std::string> v{SHMBUS_CLI_PATH, "--bus", bus};
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

struct running_broker {
  child_process proc;
  explicit running_broker(const std::string& bus)
      : running_broker(bus, {"--topic", "prices:512:64", "--topic", "status:32"}) {}
  running_broker(const std::string& bus, const std::vector<std::string>& topics)
      : proc(broker_argv(bus, topics), true) {
    proc.expect_line("ready");
  }
  ~running_broker() {
    proc.terminate();
    proc.wait();
  }
  static std::vector<std::string> broker_argv(const std::string& bus, const std::vector<std::string>& topics) {
    std::vector<std::string> v{SHMBUS_BROKER_PATH, "--bus", bus, "--log-level", "warn"};
    v.insert(v.end(), topics.begin(), topics.end());
    return v;
  }
};

// Bounded wait until `shmbus ls --json` shows `subscribers` on some topic.
void wait_for_subscribers(const std::string& bus, const std::string& json_fragment) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (run(cli(bus, {"ls", "--json"})).out.find(json_fragment) == std::string::npos)
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "never saw " << json_fragment);
}

// The whitespace-separated fields of the line of `out` starting with `first`.
std::vector<std::string> row_of(const std::string& out, const std::string& first) {
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream in(line);
    std::vector<std::string> fields;
    for (std::string f; in >> f;) fields.push_back(f);
    if (!fields.empty() && fields[0] == first) return fields;
  }
  FAIL("no line starting with '" << first << "' in:\n" << out);
  return {};
}

// A number after "key": in a one-line JSON object, from position `from`.
double json_number(const std::string& json, const std::string& key, std::size_t from = 0) {
  const auto at = json.find("\"" + key + "\":", from);
  REQUIRE_MESSAGE(at != std::string::npos, "no \"" << key << "\" in " << json);
  return std::stod(json.substr(at + key.size() + 3));
}

// The same snapshot in any of the CTP layouts; `id` must fit the layout.
template <shmbus::market_data::depth_market_data_layout T = shmbus::market_data::depth_market_data>
T sample_snapshot(std::string_view id = "rb2605") {
  using namespace shmbus::market_data;
  REQUIRE(id.size() < sizeof(T::instrument_id));
  T md{};
  set_text(md.trading_day, "20260105");
  set_text(md.instrument_id, id);
  set_text(md.exchange_id, "SHFE");
  set_text(md.exchange_inst_id, id);
  set_text(md.update_time, "09:30:01");
  set_text(md.action_day, "20260105");
  md.update_millisec = 500;
  md.last_price = 3512.5;
  md.volume = 123456;
  md.turnover = 4.3e9;
  md.open_interest = 1.9e6;
  for (std::size_t i = 0; i < book_depth; ++i) {
    md.*bid_price_of<T>[i] = 3512 - static_cast<double>(i);
    md.*bid_volume_of<T>[i] = 12 + static_cast<std::int32_t>(i);
    md.*ask_price_of<T>[i] = 3514 + static_cast<double>(i);
    md.*ask_volume_of<T>[i] = 8 + static_cast<std::int32_t>(i);
  }
  md.close_price = no_price;
  md.settlement_price = no_price;
  md.upper_limit_price = 3720;
  md.lower_limit_price = 3300;
  return md;
}

}  // namespace

// Subscribes and reads nothing until told to: one line "read" on stdin reads
// one message; EOF ends it. So a test controls exactly how far behind it is.
SHMBUS_CHILD("cli-lagging-subscriber")(const std::vector<std::string>& a) {
  shmbus::bus b(a.at(0));
  auto sub = b.make_subscriber(a.at(1));
  signal_parent("ready");
  shmbus::message m;
  for (std::string line; std::getline(std::cin, line);) {
    if (line != "read") continue;
    const bool got = sub.try_read(m);
    signal_parent("read got=" + std::to_string(got) + " seq=" + std::to_string(m.sequence()) +
                  " missed=" + std::to_string(m.missed()));
  }
  return 0;
}

namespace {}  // namespace

TEST_CASE("shmbus --help and shmbus-broker --help describe the commands") {
  auto r = run({SHMBUS_CLI_PATH, "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("ls") != std::string::npos);
  CHECK(r.out.find("pub  TOPIC") != std::string::npos);
  r = run({SHMBUS_CLI_PATH, "sub", "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("--count N") != std::string::npos);
  r = run({SHMBUS_BROKER_PATH, "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("--topic NAME[:MAX_SIZE[:DEPTH[:KEYS]]]") != std::string::npos);
}

TEST_CASE("CLI failures: non-zero exit and one clear line") {
  const std::string bus = unique_bus();
  auto r = run(cli(bus, {"ls"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: no broker is running on bus '" + bus + "'\n");
  r = run({SHMBUS_CLI_PATH, "frobnicate"});
  CHECK(r.code == 2);
  CHECK(r.out.find("unknown command 'frobnicate'") != std::string::npos);
  r = run({SHMBUS_BROKER_PATH, "--bus", bus});
  CHECK(r.code == 2);
  CHECK(r.out == "shmbus-broker: no topics: give --topic NAME or --config FILE (see --help)\n");
  r = run({SHMBUS_BROKER_PATH, "--bus", bus, "--topic", "x:12q"});
  CHECK(r.code == 1);
  CHECK(r.out.find("--topic 'x:12q': max message size '12q' is not a number") != std::string::npos);
}

TEST_CASE("shmbus ls, pub and sub against a running broker") {
  const std::string bus = unique_bus();
  running_broker broker(bus);

  auto r = run(cli(bus, {"ls"}));
  CHECK(r.code == 0);
  CHECK(r.out.find("TOPIC") == 0);
  CHECK(r.out.find("prices                          512      64            0           0") != std::string::npos);

  child_process sub(cli(bus, {"sub", "prices", "--count", "3", "--timeout", "20"}), true);
  // The subscriber is registered once ls counts it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (run(cli(bus, {"ls", "--json"})).out.find("\"subscribers\":1") == std::string::npos)
    REQUIRE(std::chrono::steady_clock::now() < deadline);

  r = run(cli(bus, {"pub", "prices", "first"}));
  CHECK(r.code == 0);
  r = run(cli(bus, {"pub", "prices"}), "second\nthird\twith tab\n");
  CHECK(r.code == 0);
  CHECK(sub.read_line() == "first");
  CHECK(sub.read_line() == "second");
  CHECK(sub.read_line() == "third\\twith tab");
  CHECK(sub.wait() == 0);

  r = run(cli(bus, {"ls", "--json"}));
  CHECK(r.out.find("{\"name\":\"prices\",\"max_message_size\":512,\"depth\":64,\"type_size\":0,"
                   "\"published\":3,\"subscribers\":0") != std::string::npos);

  r = run(cli(bus, {"sub", "status", "--timeout", "0.1"}));
  CHECK(r.code == 3);
  CHECK(r.out.find("timed out") != std::string::npos);

  r = run(cli(bus, {"pub", "status", std::string(40, 'x')}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'status': message of 40 bytes exceeds max_message_size 32\n");

  r = run(cli(bus, {"sub", "nosuch"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: bus '" + bus + "' has no topic 'nosuch' (topics: prices, status)\n");
}

TEST_CASE("shmbus sub reports gaps and prints hex") {
  const std::string bus = unique_bus();
  running_broker broker(bus);
  child_process sub(cli(bus, {"sub", "status", "--count", "1", "--format", "hex", "--timeout", "20"}), true);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (run(cli(bus, {"ls", "--json"})).out.find("\"subscribers\":1") == std::string::npos)
    REQUIRE(std::chrono::steady_clock::now() < deadline);
  CHECK(run(cli(bus, {"pub", "status", "AB"})).code == 0);
  CHECK(sub.read_line() == "4142");
  CHECK(sub.wait() == 0);
}

TEST_CASE("shmbus stat: counts, the slowest subscriber's lag and gaps, plain and as JSON") {
  const std::string bus = unique_bus();
  running_broker broker(bus, {"--topic", "prices:64:4", "--topic", "status:32"});
  auto lagging = started_child("cli-lagging-subscriber", {bus, "prices"});
  child_process reader(cli(bus, {"sub", "prices", "--timeout", "20"}), true);
  wait_for_subscribers(bus, "\"subscribers\":2");

  shmbus::bus b(bus);
  auto pub = b.make_publisher("prices");
  for (int i = 1; i <= 10; ++i) pub.publish("tick " + std::to_string(i));  // 6 bytes each, 7 for #10
  // The reader is woken per publish but may skip some (ring of 4): it is done
  // once it has consumed #10, whatever it missed.
  for (std::string line; (line = reader.read_line().value()) != "tick 10";) {
  }

  // The lagging subscriber has read nothing: 10 behind, no gaps yet.
  auto r = run(cli(bus, {"stat", "--interval", "0.05"}));
  CHECK(r.code == 0);
  CHECK(r.out.find("bus '" + bus + "', broker pid ") == 0);
  CHECK(row_of(r.out, "TOPIC") == std::vector<std::string>{"TOPIC", "DEPTH", "PUBLISHED", "MSG/S", "BYTES/S", "SUBS",
                                                           "MAX_LAG", "GAPS", "LAST_PUB", "RECOV", "KEYS"});
  auto row = row_of(r.out, "prices");
  REQUIRE(row.size() == 11);
  CHECK(row[1] == "4");    // depth
  CHECK(row[2] == "10");   // published
  CHECK(row[3] == "0.0");  // nothing published during the interval
  CHECK(row[4] == "0B/s");
  CHECK(row[5] == "2");   // live subscribers
  CHECK(row[6] == "10");  // the lagging one has read nothing
  CHECK(row[9] == "0");   // no mutex recoveries
  CHECK(row[10] == "-");  // a plain topic
  row = row_of(r.out, "status");
  CHECK(row[2] == "0");
  CHECK(row[8] == "never");

  // Now it reads: the ring kept only #7..#10, so it is told it missed 6.
  lagging.write("read\n");
  CHECK(lagging.expect_line("read got=1") == "read got=1 seq=7 missed=6");
  r = run(cli(bus, {"stat", "--interval", "0.05", "--json"}));
  CHECK(r.code == 0);
  const std::string& j = r.out;
  CHECK(j.find("{\"bus\":\"" + bus + "\",\"broker_pid\":") == 0);
  const auto prices = j.find("{\"name\":\"prices\"");
  REQUIRE(prices != std::string::npos);
  CHECK(json_number(j, "published", prices) == 10);
  CHECK(json_number(j, "bytes_published", prices) == 61);
  CHECK(json_number(j, "publishes_per_s", prices) == 0);
  CHECK(json_number(j, "subscribers", prices) == 2);
  CHECK(json_number(j, "slowest_lag", prices) == 3);  // read #7 of 10
  // The reader's own skips count too, so at least the lagging one's 6.
  const double missed = json_number(j, "missed", prices);
  CHECK(missed >= 6);
  CHECK(json_number(j, "last_publish_age_s", prices) >= 0);
  CHECK(j.find("\"pid\":" + std::to_string(lagging.pid()) +
               ",\"last_read\":7,\"lag\":3,\"received\":1,\"missed\":6,") != std::string::npos);
  const auto status = j.find("{\"name\":\"status\"");
  REQUIRE(status != std::string::npos);
  CHECK(j.find("\"last_publish_age_s\":null,\"subscribers\":0,\"slowest_lag\":0,\"missed\":0", status) !=
        std::string::npos);

  lagging.close_stdin();
  CHECK(lagging.wait() == 0);
  reader.terminate();
  reader.wait();
}

TEST_CASE("shmbus stat: rates over the interval, --watch, and waiting for a broker") {
  const std::string bus = unique_bus();
  // No broker yet: plain stat fails; --watch waits for one.
  auto r = run(cli(bus, {"stat"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: no broker is running on bus '" + bus + "'\n");
  CHECK(run(cli(bus, {"stat", "--count", "2"})).code == 2);

  child_process watch(cli(bus, {"stat", "--watch", "--json", "--interval", "0.2", "--count", "2"}), true);
  CHECK(watch.read_line() == "bus '" + bus + "': no broker running; waiting for one (Ctrl-C to stop)");
  running_broker broker(bus);

  // Publish 32-byte messages steadily while it samples: the rate it reports
  // must be positive and bytes/s 32 times msgs/s (within the few messages a
  // sample may catch between reading the two counters, if it is preempted).
  std::atomic<bool> stop{false};
  std::thread feeder([&] {
    shmbus::bus b(bus);
    auto pub = b.make_publisher("status");
    const std::string msg(32, 'x');
    while (!stop) {
      pub.publish(msg);
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // pacing, not synchronisation
    }
  });
  std::vector<std::string> samples;
  for (int i = 0; i < 2; ++i) samples.push_back(watch.expect_line("{\"bus\""));
  stop = true;
  feeder.join();
  CHECK(watch.wait() == 0);  // --count 2: exits by itself
  for (const auto& j : samples) {
    const auto status = j.find("{\"name\":\"status\"");
    REQUIRE(status != std::string::npos);
    const double interval = json_number(j, "interval_s");
    CHECK(interval >= 0.19);
    const double rate = json_number(j, "publishes_per_s", status);
    const double bytes = json_number(j, "bytes_per_s", status);
    CHECK(rate > 0);
    CHECK(std::abs(bytes - 32 * rate) <= 2 * 10 * 32 / interval);
    CHECK(json_number(j, "last_publish_age_s", status) < 10);
  }
}

TEST_CASE("shmbus sub --format depth_market_data decodes the market-data struct") {
  const std::string bus = unique_bus();
  config_file ini(bus,
                  "[topic md]\nmax_message_size = 408\ntype_size = 408\ndepth = 16\n"
                  "[topic raw]\nmax_message_size = 512\n"
                  "[topic small]\nmax_message_size = 64\n"
                  "[topic ticks]\nmax_message_size = 56\ntype_size = 56\n");
  running_broker broker(bus, {"--config", ini.path.string()});

  // Unknown formats and topics that cannot hold the struct are refused.
  auto r = run(cli(bus, {"sub", "md", "--format", "ctp"}));
  CHECK(r.code == 2);
  CHECK(r.out.find("unknown --format 'ctp' (known: text, hex, depth_market_data, depth_market_data_v6_3, "
                   "depth_market_data_v6_5, depth_market_data_v6_7)") != std::string::npos);
  r = run(cli(bus, {"sub", "ticks", "--format", "depth_market_data"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'ticks' declares a 56-byte type, the caller's type is 408 bytes\n");
  r = run(cli(bus, {"sub", "small", "--format", "depth_market_data"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'small' holds at most 64 bytes, the caller's type is 408 bytes\n");
  r = run(cli(bus, {"sub", "--help"}));
  CHECK(r.out.find("depth_market_data: CTP depth market data") != std::string::npos);

  child_process md_sub(cli(bus, {"sub", "md", "--format", "depth_market_data", "--count", "1", "-v"}), true);
  child_process raw_sub(cli(bus, {"sub", "raw", "--format", "depth_market_data", "--count", "2"}), true);
  wait_for_subscribers(bus,
                       "{\"name\":\"md\",\"max_message_size\":408,\"depth\":16,\"type_size\":408,"
                       "\"published\":0,\"subscribers\":1");
  wait_for_subscribers(bus,
                       "{\"name\":\"raw\",\"max_message_size\":512,\"depth\":1,\"type_size\":0,"
                       "\"published\":0,\"subscribers\":1");

  shmbus::bus b(bus);
  auto pub = b.make_publisher<shmbus::market_data::depth_market_data>("md");
  pub.publish_value(sample_snapshot());
  const std::string line = md_sub.read_line().value();
  CHECK(line.rfind("#1 408B ", 0) == 0);
  CHECK(line.find("us TradingDay=20260105 InstrumentID=rb2605 ExchangeID=SHFE ExchangeInstID=rb2605 "
                  "UpdateTime=09:30:01 UpdateMillisec=500 LastPrice=3512.5 Volume=123456 Turnover=4300000000 "
                  "OpenInterest=1900000 BidPrice1=3512 BidVolume1=12 AskPrice1=3514 AskVolume1=8 BidPrice2=3511 ") !=
        std::string::npos);
  CHECK(line.find(" BidPrice5=3508 BidVolume5=16 AskPrice5=3518 AskVolume5=12 ") != std::string::npos);
  CHECK(line.find(" ClosePrice=- SettlementPrice=- ") != std::string::npos);
  CHECK(line.find(" UpperLimitPrice=3720 LowerLimitPrice=3300 ") != std::string::npos);
  CHECK(line.find(" ActionDay=20260105") != std::string::npos);
  CHECK(md_sub.wait() == 0);

  // A raw topic may carry other sizes: those are shown as hex, with a note.
  auto raw = b.make_publisher("raw");
  raw.publish("abc");
  CHECK(raw_sub.read_line() == "shmbus: message #1 is 3 bytes, not a 408-byte depth_market_data; shown as hex");
  CHECK(raw_sub.read_line() == "616263");
  raw.publish_value(sample_snapshot());
  CHECK(raw_sub.expect_line("InstrumentID=").find("InstrumentID=rb2605 ") != std::string::npos);
  CHECK(raw_sub.wait() == 0);
}

TEST_CASE("shmbus sub --format depth_market_data_v6_5 and _v6_7 decode CTP's v6.5.1+ layouts, long IDs included") {
  using namespace shmbus::market_data;
  const std::string bus = unique_bus();
  config_file ini(bus,
                  "[topic md65]\nmax_message_size = 568\ntype_size = 568\ndepth = 16\n"
                  "[topic md67]\nmax_message_size = 584\ntype_size = 584\ndepth = 16\n");
  running_broker broker(bus, {"--config", ini.path.string()});
  // Longer than the 30 characters v6.3's InstrumentID holds; the second is
  // the full 80 of v6.5.1+.
  const std::string long_id = "SIM-very-long-instrument-id-2605-C-4500";
  const std::string longest(80, 'x');
  REQUIRE(long_id.size() > sizeof(depth_market_data_v6_3::instrument_id) - 1);

  // Each name decodes only its own size: a v6.3 or v6.5 reader of a newer
  // layout's topic is refused, as any type-size mismatch is.
  auto r = run(cli(bus, {"sub", "md65", "--format", "depth_market_data"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'md65' declares a 568-byte type, the caller's type is 408 bytes\n");
  r = run(cli(bus, {"sub", "md67", "--format", "depth_market_data_v6_5"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'md67' declares a 584-byte type, the caller's type is 568 bytes\n");
  r = run(cli(bus, {"sub", "--help"}));
  CHECK(r.out.find("depth_market_data_v6_5: CTP depth market data, v6.5.1 layout, 568 bytes") != std::string::npos);
  CHECK(r.out.find("depth_market_data_v6_7: CTP depth market data, v6.6.7-v6.7.11 layout, 584 bytes") !=
        std::string::npos);

  child_process sub65(cli(bus, {"sub", "md65", "--format", "depth_market_data_v6_5", "--count", "1", "-v"}), true);
  child_process sub67(cli(bus, {"sub", "md67", "--format", "depth_market_data_v6_7", "--count", "1", "-v"}), true);
  wait_for_subscribers(bus,
                       "{\"name\":\"md65\",\"max_message_size\":568,\"depth\":16,\"type_size\":568,"
                       "\"published\":0,\"subscribers\":1");
  wait_for_subscribers(bus,
                       "{\"name\":\"md67\",\"max_message_size\":584,\"depth\":16,\"type_size\":584,"
                       "\"published\":0,\"subscribers\":1");

  shmbus::bus b(bus);
  // The reserves hold text a v6.3-minded reader would take for the ID: the
  // decoder must read the wide fields at the end, and not print the reserves.
  auto md65 = sample_snapshot<depth_market_data_v6_5>(long_id);
  set_text(md65.reserve1, "reserve-one");
  set_text(md65.reserve2, "reserve-two");
  b.make_publisher<depth_market_data_v6_5>("md65").publish_value(md65);
  const std::string line65 = sub65.read_line().value();
  CHECK(line65.rfind("#1 568B ", 0) == 0);
  CHECK(line65.find("us TradingDay=20260105 InstrumentID=" + long_id + " ExchangeID=SHFE ExchangeInstID=" + long_id +
                    " UpdateTime=09:30:01 UpdateMillisec=500 LastPrice=3512.5 Volume=123456 Turnover=4300000000 "
                    "OpenInterest=1900000 BidPrice1=3512 BidVolume1=12 AskPrice1=3514 AskVolume1=8 BidPrice2=3511 ") !=
        std::string::npos);
  CHECK(line65.find(" BidPrice5=3508 BidVolume5=16 AskPrice5=3518 AskVolume5=12 ") != std::string::npos);
  CHECK(line65.find(" ClosePrice=- SettlementPrice=- ") != std::string::npos);
  CHECK(line65.find(" UpperLimitPrice=3720 LowerLimitPrice=3300 ") != std::string::npos);
  // v6.5.1 has no banding prices: ActionDay is the last field printed.
  CHECK(line65.ends_with(" ActionDay=20260105"));
  CHECK(line65.find("reserve") == std::string::npos);
  CHECK(sub65.wait() == 0);

  auto md67 = sample_snapshot<depth_market_data_v6_7>(longest);
  md67.banding_upper_price = 3650.5;
  md67.banding_lower_price = 3370;
  b.make_publisher<depth_market_data_v6_7>("md67").publish_value(md67);
  const std::string line67 = sub67.read_line().value();
  CHECK(line67.rfind("#1 584B ", 0) == 0);
  CHECK(line67.find(" InstrumentID=" + longest + " ExchangeID=SHFE ExchangeInstID=" + longest + " UpdateTime=") !=
        std::string::npos);
  CHECK(line67.find(" BidPrice5=3508 BidVolume5=16 AskPrice5=3518 AskVolume5=12 ") != std::string::npos);
  CHECK(line67.ends_with(" ActionDay=20260105 BandingUpperPrice=3650.5 BandingLowerPrice=3370"));
  CHECK(sub67.wait() == 0);
}

TEST_CASE("shmbus pub refuses a message of another size on a typed topic, for an argument and for stdin lines") {
  const std::string bus = unique_bus();
  config_file ini(bus, "[topic md]\nmax_message_size = 512\ntype_size = 408\ndepth = 16\n");
  running_broker broker(bus, {"--config", ini.path.string()});
  const std::string refused = "topic 'md' declares a 408-byte type, the message is 5 bytes; nothing was published";
  auto r = run(cli(bus, {"pub", "md", "hello"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: " + refused + "\n");
  r = run(cli(bus, {"pub", "md"}), "hello\nworld\n");
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: standard input line 1: " + refused + "\n");
  // Nothing reached the topic.
  r = run(cli(bus, {"ls", "--json"}));
  CHECK(r.out.find("{\"name\":\"md\",\"max_message_size\":512,\"depth\":16,\"type_size\":408,\"published\":0,") !=
        std::string::npos);
}

TEST_CASE("shmbus pub --exclusive holds the topic's publish right while it runs, others are refused naming it") {
  const std::string bus = unique_bus();
  running_broker broker(bus);
  shmbus::bus b(bus);
  auto sub = b.make_subscriber("prices");
  // A pipeline's writer: publishes the lines it reads, holding the right.
  child_process holder(cli(bus, {"pub", "--exclusive", "prices"}), true);
  holder.write("first\n");
  // Its first line is published once it holds the right.
  await([&] { return b.stats().at(0).published == 1; }, "the exclusive publisher's first line");
  const std::string pid = std::to_string(holder.pid());
  CHECK(b.stats().at(0).exclusive_pid == static_cast<std::uint64_t>(holder.pid()));
  auto r = run(cli(bus, {"pub", "prices", "refused"}));
  CHECK(r.code == 1);
  CHECK(r.out ==
        "shmbus: topic 'prices': publisher pid " + pid + " holds the exclusive publish right; nothing was published\n");
  r = run(cli(bus, {"pub", "-x", "prices", "refused"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'prices': publisher pid " + pid + " holds the exclusive publish right\n");
  r = run(cli(bus, {"stat", "--interval", "0.01"}));
  CHECK(r.out.find("topic 'prices': exclusive publisher pid " + pid + "\n") != std::string::npos);
  r = run(cli(bus, {"pub", "--wait-right", "1", "prices", "x"}));
  CHECK(r.code == 2);
  CHECK(r.out.find("shmbus: --wait-right needs --exclusive") == 0);
  // Once its input ends it gives the right back, and a waiting one gets it.
  holder.close_stdin();
  r = run(cli(bus, {"pub", "-x", "--wait-right", "60", "prices", "second"}));
  CHECK(r.code == 0);
  CHECK(holder.wait() == 0);
  shmbus::message m;
  REQUIRE(sub.try_read(m));
  CHECK(m.text() == "first");
  REQUIRE(sub.try_read(m));
  CHECK(m.text() == "second");
  CHECK(m.sequence() == 2);
}

// ---- keyed topics (issue 12) ------------------------------------------------

namespace {

// A broker with a keyed topic `md` (8 keys), a keyed topic `full` of 2 keys
// and a plain topic.
struct keyed_broker : running_broker {
  explicit keyed_broker(const std::string& bus)
      : running_broker(bus, {"--topic", "md:64:16:8", "--topic", "full:32:4:2", "--topic", "plain:64:4"}) {}
};

}  // namespace

TEST_CASE("shmbus --help lists get and keys, and each keyed option is described") {
  auto r = run({SHMBUS_CLI_PATH, "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("pub  TOPIC [--key KEY] [MESSAGE]") != std::string::npos);
  CHECK(r.out.find("[--key KEY]... [--snapshot]") != std::string::npos);
  CHECK(r.out.find("get  TOPIC KEY") != std::string::npos);
  CHECK(r.out.find("keys TOPIC [--json]") != std::string::npos);
  CHECK(r.out.find("4 no such key (get)") != std::string::npos);
  r = run({SHMBUS_CLI_PATH, "pub", "--help"});
  CHECK(r.out.find("-k, --key KEY") != std::string::npos);
  r = run({SHMBUS_CLI_PATH, "sub", "--help"});
  CHECK(r.out.find("-k, --key KEY") != std::string::npos);
  CHECK(r.out.find("--snapshot") != std::string::npos);
  r = run({SHMBUS_CLI_PATH, "get", "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("Usage: shmbus get [--bus NAME] TOPIC KEY") == 0);
  CHECK(r.out.find("Exit 4 when") != std::string::npos);
  r = run({SHMBUS_CLI_PATH, "keys", "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("Usage: shmbus keys [--bus NAME] TOPIC [--json]") == 0);
}

TEST_CASE("shmbus pub --key, then get prints the key's latest value, and a missing key exits 4") {
  const std::string bus = unique_bus();
  keyed_broker broker(bus);
  CHECK(run(cli(bus, {"pub", "md", "--key", "rb2605", "3500"})).code == 0);
  CHECK(run(cli(bus, {"pub", "md", "-k", "cu2606", "70000"})).code == 0);
  // Each line of standard input under the key.
  auto r = run(cli(bus, {"pub", "md", "--key", "rb2605"}), "3501\n3502\n");
  CHECK(r.code == 0);
  CHECK(r.out.empty());

  r = run(cli(bus, {"get", "md", "rb2605"}));
  CHECK(r.code == 0);
  CHECK(r.out == "3502\n");
  r = run(cli(bus, {"get", "md", "cu2606", "-v"}));
  CHECK(r.code == 0);
  CHECK(r.out == "#2 5B latest 70000\n");
  r = run(cli(bus, {"get", "md", "rb2605", "--format", "hex", "-v"}));
  CHECK(r.out == "#4 4B latest 33353032\n");

  r = run(cli(bus, {"get", "md", "ag2612"}));
  CHECK(r.code == 4);
  CHECK(r.out == "shmbus: topic 'md' has no key 'ag2612'\n");
  r = run(cli(bus, {"get", "plain", "rb2605"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'plain' is not keyed: it has no values by key\n");
  r = run(cli(bus, {"get", "md"}));
  CHECK(r.code == 2);
  CHECK(r.out.find("shmbus: get needs TOPIC KEY") == 0);
  r = run(cli(bus, {"get", "md", "rb2605", "--format", "ctp"}));
  CHECK(r.code == 2);
  CHECK(r.out.find("unknown --format 'ctp'") != std::string::npos);
}

TEST_CASE("shmbus pub --key: a plain topic, a keyed one without a key, bad keys and a full key table are errors") {
  const std::string bus = unique_bus();
  keyed_broker broker(bus);
  auto r = run(cli(bus, {"pub", "plain", "--key", "k", "x"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'plain' is not keyed: publish without --key\n");
  r = run(cli(bus, {"pub", "plain", "--key", "k"}), "x\n");
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'plain' is not keyed: publish without --key\n");
  r = run(cli(bus, {"pub", "md", "x"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'md' is keyed: every message needs a key (give it with --key KEY)\n");
  // Told before reading standard input, not as a failure of its first line.
  r = run(cli(bus, {"pub", "md"}), "x\n");
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'md' is keyed: every message needs a key (give it with --key KEY)\n");
  r = run(cli(bus, {"pub", "md", "--key", std::string(64, 'k'), "x"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'md': key of 64 bytes: keys are 1-63 bytes; nothing was published\n");
  CHECK(run(cli(bus, {"pub", "md", "--key", std::string(63, 'k'), "x"})).code == 0);
  r = run(cli(bus, {"pub", "md", "--key", "a", "--key", "b", "x"}));
  CHECK(r.code == 2);
  CHECK(r.out.find("shmbus: pub takes one --key") == 0);

  CHECK(run(cli(bus, {"pub", "full", "--key", "a", "x"})).code == 0);
  CHECK(run(cli(bus, {"pub", "full", "--key", "b", "x"})).code == 0);
  const std::string full =
      "topic 'full': its key table is full (2 keys): key 'c' was not added and nothing was published";
  r = run(cli(bus, {"pub", "full", "--key", "c", "x"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: " + full + "\n");
  r = run(cli(bus, {"pub", "full", "--key", "c"}), "x\ny\n");
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: standard input line 1: " + full + "\n");
  CHECK(run(cli(bus, {"pub", "full", "--key", "b", "y"})).code == 0);  // known keys go on
  CHECK(run(cli(bus, {"get", "full", "c"})).code == 4);

  // Nothing refused reached a topic: md has the 63-byte key's one message,
  // full its three.
  r = run(cli(bus, {"ls", "--json"}));
  CHECK(r.out.find("{\"name\":\"md\",\"max_message_size\":64,\"depth\":16,\"type_size\":0,\"published\":1,") !=
        std::string::npos);
  CHECK(r.out.find("{\"name\":\"full\",\"max_message_size\":32,\"depth\":4,\"type_size\":0,\"published\":3,") !=
        std::string::npos);
  CHECK(r.out.find("{\"name\":\"plain\",\"max_message_size\":64,\"depth\":4,\"type_size\":0,\"published\":0,") !=
        std::string::npos);

  // sub: keys and snapshots are for keyed topics, keys are 1-63 bytes.
  r = run(cli(bus, {"sub", "plain", "--key", "k"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'plain' is not keyed: it takes no keys and has no snapshot\n");
  r = run(cli(bus, {"sub", "plain", "--snapshot"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'plain' is not keyed: it takes no keys and has no snapshot\n");
  r = run(cli(bus, {"sub", "md", "--key", std::string(64, 'k')}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'md': keys are 1-63 bytes\n");
  r = run(cli(bus, {"get", "md", "--key", "k"}));
  CHECK(r.code == 2);
}

TEST_CASE("shmbus keys lists every key with its sequence, age, size and updates, as text and as JSON") {
  const std::string bus = unique_bus();
  keyed_broker broker(bus);
  shmbus::bus b(bus);
  auto pub = b.make_publisher("md");
  pub.publish("rb2605", "3500");
  pub.publish("cu2606", "70000");
  pub.publish("rb2605", "3501");
  // Keys are bytes: a quote, a control byte and a byte that is not UTF-8
  // must come out escaped (published here, not through a command line).
  const std::string odd = "q\"u\x01\xff";
  pub.publish(odd, "v");
  pub.publish("\xc3\xa9", "v");  // valid UTF-8 ("é"): written as it is
  pub.publish("\\\x7f", "v");    // a backslash and DEL

  auto r = run(cli(bus, {"keys", "md"}));
  CHECK(r.code == 0);
  CHECK(row_of(r.out, "KEY") == std::vector<std::string>{"KEY", "SEQUENCE", "AGE", "SIZE", "UPDATES"});
  auto row = row_of(r.out, "rb2605");
  REQUIRE(row.size() == 5);
  CHECK(row[1] == "3");
  CHECK(row[2].find_first_of("0123456789") == 0);  // an age: "12ms", "1.5s"
  CHECK(row[3] == "4");
  CHECK(row[4] == "2");
  row = row_of(r.out, "cu2606");
  REQUIRE(row.size() == 5);
  CHECK(row[1] == "2");
  CHECK(row[3] == "5");
  CHECK(row[4] == "1");
  row = row_of(r.out, "q\"u\\x01\xff");  // as sub prints text
  CHECK(row[1] == "4");
  // The order the keys were added.
  CHECK(r.out.find("rb2605") < r.out.find("cu2606"));
  CHECK(r.out.find("cu2606") < r.out.find("q\"u"));

  r = run(cli(bus, {"keys", "md", "--json"}));
  CHECK(r.code == 0);
  const std::string& j = r.out;
  CHECK(j.find("{\"bus\":\"" + bus +
               "\",\"topic\":\"md\",\"key_capacity\":8,\"keys\":[{\"key\":\"rb2605\","
               "\"sequence\":3,\"timestamp_ns\":") == 0);
  CHECK(json_number(j, "age_s") >= 0);
  CHECK(j.find(",\"size\":4,\"updates\":2},{\"key\":\"cu2606\",\"sequence\":2,") != std::string::npos);
  CHECK(j.find(",{\"key\":\"q\\\"u\\u0001\\u00ff\",\"sequence\":4,") != std::string::npos);
  CHECK(j.find(",{\"key\":\"\xc3\xa9\",\"sequence\":5,") != std::string::npos);
  CHECK(j.find(",{\"key\":\"\\\\\\u007f\",\"sequence\":6,") != std::string::npos);
  CHECK(j.ends_with(",\"size\":1,\"updates\":1}]}\n"));
  CHECK(std::count(j.begin(), j.end(), '\n') == 1);

  // A keyed topic without keys yet; a plain topic has none at all.
  r = run(cli(bus, {"keys", "full", "--json"}));
  CHECK(r.out == "{\"bus\":\"" + bus + "\",\"topic\":\"full\",\"key_capacity\":2,\"keys\":[]}\n");
  r = run(cli(bus, {"keys", "plain"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'plain' is not keyed: it has no keys\n");
}

TEST_CASE("shmbus sub on a keyed topic: KEY: payload lines, --key filters, --snapshot prints the values first") {
  const std::string bus = unique_bus();
  keyed_broker broker(bus);
  shmbus::bus b(bus);
  auto pub = b.make_publisher("md");
  pub.publish("a", "a1");
  pub.publish("b", "b1");
  pub.publish("c", "c1");
  pub.publish("a", "a2");

  // Every key, no snapshot: the stream from now on.
  child_process all(cli(bus, {"sub", "md", "--count", "3", "--timeout", "20"}), true);
  wait_for_subscribers(bus,
                       "{\"name\":\"md\",\"max_message_size\":64,\"depth\":16,\"type_size\":0,"
                       "\"published\":4,\"subscribers\":1");
  // a and c, snapshot first: their latest values at once, in the order the
  // keys were added; then their later updates.
  child_process some(
      cli(bus, {"sub", "md", "--key", "c", "-k", "a", "--snapshot", "--count", "4", "-v", "--timeout", "20"}), true);
  CHECK(some.read_line() == "#4 2B snapshot a: a2");
  CHECK(some.read_line() == "#3 2B snapshot c: c1");
  // And a value-only look, as a script would: snapshot then stream, no -v.
  child_process only_b(cli(bus, {"sub", "md", "--key", "b", "--snapshot", "--count", "2", "--timeout", "20"}), true);
  CHECK(only_b.read_line() == "b: b1");

  pub.publish("b", "b2");
  pub.publish("c", "c2");
  pub.publish("a", "a3");
  CHECK(all.read_line() == "b: b2");
  CHECK(all.read_line() == "c: c2");
  CHECK(all.read_line() == "a: a3");
  CHECK(all.wait() == 0);
  std::string line = some.read_line().value();
  CHECK(line.rfind("#6 2B ", 0) == 0);
  CHECK(line.ends_with("us c: c2"));  // after the latency
  line = some.read_line().value();
  CHECK(line.rfind("#7 2B ", 0) == 0);
  CHECK(line.ends_with("us a: a3"));
  CHECK(some.wait() == 0);
  CHECK(only_b.read_line() == "b: b2");
  CHECK(only_b.wait() == 0);
}

TEST_CASE("shmbus ls and stat show a keyed topic's keys in use of its capacity") {
  const std::string bus = unique_bus();
  keyed_broker broker(bus);
  shmbus::bus b(bus);
  auto pub = b.make_publisher("md");
  pub.publish("a", "1");
  pub.publish("b", "2");
  pub.publish("a", "3");

  auto r = run(cli(bus, {"ls"}));
  CHECK(row_of(r.out, "TOPIC") ==
        std::vector<std::string>{"TOPIC", "MAX_SIZE", "DEPTH", "PUBLISHED", "SUBSCRIBERS", "KEYS"});
  CHECK(row_of(r.out, "md") == std::vector<std::string>{"md", "64", "16", "3", "0", "2/8"});
  CHECK(row_of(r.out, "full") == std::vector<std::string>{"full", "32", "4", "0", "0", "0/2"});
  CHECK(row_of(r.out, "plain") == std::vector<std::string>{"plain", "64", "4", "0", "0", "-"});
  // Within 80 columns.
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) CHECK(line.size() <= 80);
  r = run(cli(bus, {"ls", "--json"}));
  CHECK(r.out.find("{\"name\":\"md\",\"max_message_size\":64,\"depth\":16,\"type_size\":0,\"published\":3,"
                   "\"subscribers\":0,\"mutex_recoveries\":0,\"key_capacity\":8,\"keys\":2}") != std::string::npos);
  CHECK(r.out.find("\"name\":\"plain\",\"max_message_size\":64,\"depth\":4,\"type_size\":0,\"published\":0,"
                   "\"subscribers\":0,\"mutex_recoveries\":0,\"key_capacity\":0,\"keys\":0}") != std::string::npos);

  r = run(cli(bus, {"stat", "--interval", "0.01"}));
  CHECK(r.code == 0);
  CHECK(row_of(r.out, "TOPIC").back() == "KEYS");
  CHECK(row_of(r.out, "md").back() == "2/8");
  CHECK(row_of(r.out, "plain").back() == "-");
  r = run(cli(bus, {"stat", "--interval", "0.01", "--json"}));
  const auto md = r.out.find("{\"name\":\"md\"");
  REQUIRE(md != std::string::npos);
  CHECK(json_number(r.out, "key_capacity", md) == 8);
  CHECK(json_number(r.out, "keys", md) == 2);
  const auto plain = r.out.find("{\"name\":\"plain\"");
  REQUIRE(plain != std::string::npos);
  CHECK(json_number(r.out, "key_capacity", plain) == 0);
  CHECK(json_number(r.out, "keys", plain) == 0);
}
