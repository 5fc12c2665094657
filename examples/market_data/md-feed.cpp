// md-feed: a futures feed handler simulator. Publishes CTP-layout depth
// market data snapshots (shmbus/market_data.hpp) for a set of instruments, at
// a steady total rate, with prices following a random walk in ticks inside
// the daily limits, trades adding volume, turnover and open interest, and a
// five-level book around the last price.
//
//   md-feed [--bus NAME] [--topic md] [--layout keyed|per-instrument|both]
//           [--instruments rb2605,cu2603,...] [--rate N] [--seconds S] [--seed N] [--shared]
//
// A feed handler is the one writer of its topics: md-feed holds their
// exclusive publish right (shmbus::publisher_options::exclusive), so a
// publish takes no lock and a second feed started by mistake is refused.
// --shared publishes under the topic mutex instead, beside other publishers.
//
// keyed: every snapshot goes to TOPIC (a ring, so a subscriber that keeps up
// sees every instrument's every update); per-instrument: to TOPIC.INSTRUMENT
// (latest-value topics: a subscriber gets each instrument's newest
// snapshot); both: to each. The broker must declare the topics
// (examples/market_data/broker.ini does, for the default instruments).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "command_line.hpp"
#include "shmbus/client.hpp"
#include "shmbus/clock.hpp"
#include "shmbus/market_data.hpp"
#include "shmbus/platform/process.hpp"

namespace {

using shmbus::market_data::depth_market_data;
namespace md = shmbus::market_data;

// What an exchange says about a contract, and where today's simulation starts.
struct contract {
  std::string_view id, exchange;
  double tick;            // minimum price move
  double pre_settlement;  // yesterday's settlement: the walk starts here
  double multiplier;      // contract size: turnover = price * volume * multiplier
  double limit;           // daily limit, as a fraction of pre_settlement
};

// A few real-looking contracts (SHFE rebar, copper and gold, INE crude,
// CFFEX CSI 300 index future, DCE soybean meal and iron ore, CZCE sugar).
constexpr contract known_contracts[] = {
    {"rb2605", "SHFE", 1, 3120, 10, 0.07},       {"cu2603", "SHFE", 10, 78650, 5, 0.08},
    {"au2606", "SHFE", 0.02, 785.4, 1000, 0.09}, {"sc2604", "INE", 0.1, 478.3, 1000, 0.08},
    {"IF2603", "CFFEX", 0.2, 3925.4, 300, 0.10}, {"m2605", "DCE", 1, 2915, 10, 0.06},
    {"i2605", "DCE", 0.5, 781.5, 100, 0.08},     {"SR605", "CZCE", 1, 5546, 10, 0.06},
};

contract contract_of(std::string_view id) {
  for (const auto& c : known_contracts)
    if (c.id == id) return c;
  return {id, "SIM", 1, 1000, 10, 0.07};  // any other name: a generic contract
}

// One instrument's state through the day; prices are kept in whole ticks so
// that a long walk never drifts off the tick grid.
class instrument {
 public:
  instrument(const contract& c, std::mt19937_64& rng) : c_(c), id_(c.id), exchange_(c.exchange) {
    pre_settlement_ = ticks_of(c.pre_settlement);
    const auto band = static_cast<std::int64_t>(std::floor(c.pre_settlement * c.limit / c.tick));
    upper_ = pre_settlement_ + band;
    lower_ = pre_settlement_ - band;
    std::normal_distribution<double> open_gap(0, 0.004 * static_cast<double>(pre_settlement_));
    pre_close_ = pre_settlement_ + static_cast<std::int64_t>(std::lround(open_gap(rng) / 2));
    last_ = clamp(pre_settlement_ + static_cast<std::int64_t>(std::lround(open_gap(rng))));
    open_ = high_ = low_ = last_;
    pre_open_interest_ = 50'000 + static_cast<double>(rng() % 400'000);
    open_interest_ = pre_open_interest_;
  }

  const std::string& id() const noexcept { return id_; }

  // Advances the simulation by one update and fills `out` with the snapshot.
  void next(std::mt19937_64& rng, depth_market_data& out) {
    std::bernoulli_distribution trades(0.6);
    if (trades(rng)) {
      // A small random step: mostly 0 or 1 tick, occasionally a jump.
      std::normal_distribution<double> step(0, 0.9);
      last_ = clamp(last_ + static_cast<std::int64_t>(std::lround(step(rng))));
      high_ = std::max(high_, last_);
      low_ = std::min(low_, last_);
      std::geometric_distribution<std::int32_t> size(0.3);
      const std::int32_t qty = 1 + size(rng);
      volume_ += qty;
      turnover_ += price_of(last_) * qty * c_.multiplier;
      std::uniform_int_distribution<std::int32_t> oi_change(-qty, qty);
      open_interest_ = std::max(0.0, open_interest_ + oi_change(rng));
    }
    // The book: best bid at or one tick below the last trade, spread mostly
    // one tick, then a tick apart per level; sizes thin out away from the top.
    std::bernoulli_distribution bid_at_last(0.5), wide(0.1);
    const std::int64_t bid = bid_at_last(rng) ? last_ : last_ - 1;
    const std::int64_t ask = bid + (wide(rng) ? 2 : 1);
    std::uniform_int_distribution<std::int32_t> depth(1, 300);
    out = depth_market_data{};
    for (std::size_t i = 0; i < md::book_depth; ++i) {
      const auto k = static_cast<std::int64_t>(i);
      out.*md::bid_price[i] = price_of(bid - k);
      out.*md::ask_price[i] = price_of(ask + k);
      out.*md::bid_volume[i] = depth(rng) / static_cast<std::int32_t>(i + 1) + 1;
      out.*md::ask_volume[i] = depth(rng) / static_cast<std::int32_t>(i + 1) + 1;
    }
    md::set_text(out.instrument_id, id_);
    md::set_text(out.exchange_inst_id, id_);
    md::set_text(out.exchange_id, exchange_);
    out.last_price = price_of(last_);
    out.pre_settlement_price = price_of(pre_settlement_);
    out.pre_close_price = price_of(pre_close_);
    out.pre_open_interest = pre_open_interest_;
    out.open_price = price_of(open_);
    out.highest_price = price_of(high_);
    out.lowest_price = price_of(low_);
    out.volume = volume_;
    out.turnover = turnover_;
    out.open_interest = open_interest_;
    // Unknown until the close and the settlement, as CTP sends them.
    out.close_price = md::no_price;
    out.settlement_price = md::no_price;
    out.upper_limit_price = price_of(upper_);
    out.lower_limit_price = price_of(lower_);
    out.average_price = volume_ > 0 ? turnover_ / (volume_ * c_.multiplier) : 0;
  }

 private:
  std::int64_t ticks_of(double price) const { return std::llround(price / c_.tick); }
  // Rounded to the micro-unit, so 0.02-tick prices print as 785.4, not
  // 785.4000000000001.
  double price_of(std::int64_t ticks) const { return std::round(static_cast<double>(ticks) * c_.tick * 1e6) / 1e6; }
  // Keeps the walk a few ticks inside the limits: a market at its limit
  // has a one-sided book, which this simulator does not model.
  std::int64_t clamp(std::int64_t t) const { return std::clamp(t, lower_ + 5, upper_ - 5); }

  contract c_;
  std::string id_, exchange_;
  std::int64_t pre_settlement_ = 0, pre_close_ = 0, upper_ = 0, lower_ = 0;
  std::int64_t open_ = 0, high_ = 0, low_ = 0, last_ = 0;
  std::int32_t volume_ = 0;
  double turnover_ = 0, pre_open_interest_ = 0, open_interest_ = 0;
};

// Exchange time: China Standard Time (UTC+8, no daylight saving), computed
// from the UTC clock so that no time-zone database is needed.
void stamp(depth_market_data& out) {
  using namespace std::chrono;
  const auto now = system_clock::now() + hours(8);
  const auto day = floor<days>(now);
  const year_month_day ymd{day};
  const hh_mm_ss hms{floor<milliseconds>(now - day)};
  char date[16], time[16];
  std::snprintf(date, sizeof date, "%04d%02u%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  std::snprintf(time, sizeof time, "%02d:%02d:%02d", static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  md::set_text(out.trading_day, date);  // (the night session's trading day is the next one; not modelled)
  md::set_text(out.action_day, date);
  md::set_text(out.update_time, time);
  out.update_millisec = static_cast<std::int32_t>(hms.subseconds().count());
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto comma = std::min(list.find(',', start), list.size());
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

constexpr const char* usage =
    "usage: md-feed [--bus NAME] [--topic md] [--layout keyed|per-instrument|both]\n"
    "               [--instruments ID,ID,...] [--rate N] [--seconds S] [--seed N] [--shared]\n"
    "  --rate N      snapshots per second, all instruments together (default 2000)\n"
    "  --seconds S   stop after S seconds (default: run until Ctrl-C / SIGTERM)\n"
    "  --shared      publish under the topic mutex, beside other publishers, instead of\n"
    "                holding the topics' exclusive publish right (the default)\n";

}  // namespace

int main(int argc, char** argv) {
  std::string bus_name, topic = "md", layout = "keyed", instrument_list;
  double rate = 2000, seconds = 0;
  bool shared = false;
  std::uint64_t seed = std::random_device{}();
  try {
    for (md_demo::command_line args(argc, argv); args.next();) {
      const std::string& a = args.flag();
      if (a == "--bus")
        bus_name = args.value();
      else if (a == "--topic")
        topic = args.value();
      else if (a == "--layout")
        layout = args.value();
      else if (a == "--instruments")
        instrument_list = args.value();
      else if (a == "--rate")
        rate = std::stod(args.value());
      else if (a == "--seconds")
        seconds = std::stod(args.value());
      else if (a == "--seed")
        seed = std::stoull(args.value());
      else if (a == "--shared")
        shared = true;
      else if (a == "--help" || a == "-h")
        return std::fputs(usage, stdout), 0;
      else
        throw std::invalid_argument("unknown option " + a);
    }
    if (layout != "keyed" && layout != "per-instrument" && layout != "both")
      throw std::invalid_argument("--layout must be keyed, per-instrument or both");
    if (!(rate > 0 && rate <= 10'000'000)) throw std::invalid_argument("--rate must be in (0, 10000000]");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "md-feed: %s\n%s", e.what(), usage);
    return 2;
  }

  // Termination requests are taken synchronously from here on: the pacing
  // wait below is also the wait for Ctrl-C.
  shmbus::platform::wait_for_termination_request(std::chrono::milliseconds(0));
  std::uint64_t sent = 0;
  try {
    std::mt19937_64 rng(seed);
    std::vector<instrument> instruments;
    std::vector<std::string> ids = split(instrument_list);
    if (ids.empty())
      for (const auto& c : known_contracts) ids.emplace_back(c.id);
    for (const auto& id : ids) instruments.emplace_back(contract_of(id), rng);

    shmbus::bus bus(bus_name);
    std::vector<shmbus::publisher> keyed, own;  // own[i]: instrument i's topic
    shmbus::publisher_options opts;
    opts.type_size = sizeof(depth_market_data);
    opts.exclusive = !shared;
    if (layout != "per-instrument") keyed.push_back(bus.make_publisher(topic, opts));
    if (layout != "keyed")
      for (const auto& in : instruments) own.push_back(bus.make_publisher(topic + "." + in.id(), opts));
    const std::string where = layout == "keyed"  ? "topic '" + topic + "'"
                              : layout == "both" ? "topics '" + topic + "' and '" + topic + ".ID'"
                                                 : "topics '" + topic + ".ID'";
    std::printf("md-feed: %zu instruments, %.0f snapshots/s, to %s on bus '%s'%s\n", instruments.size(), rate,
                where.c_str(), bus.name().c_str(), shared ? "" : ", exclusive publisher");
    std::fflush(stdout);

    std::uniform_int_distribution<std::size_t> pick(0, instruments.size() - 1);
    depth_market_data snapshot{};
    const std::int64_t start = shmbus::monotonic_ns();
    const auto burst = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(rate / 10));
    std::uint64_t scheduled = 0;  // snapshots the schedule has handed out so far
    for (;;) {
      const double elapsed = static_cast<double>(shmbus::monotonic_ns() - start) / 1e9;
      if (seconds > 0 && elapsed >= seconds) break;
      // Catch up with the schedule, but after a long stall (a stopped
      // process) drop the backlog beyond a tenth of a second rather than
      // flood it out.
      const auto due = static_cast<std::uint64_t>(rate * elapsed);
      if (due > scheduled + burst) scheduled = due - burst;
      for (; scheduled < due; ++scheduled, ++sent) {
        const std::size_t k = pick(rng);
        instruments[k].next(rng, snapshot);
        stamp(snapshot);
        for (auto& p : keyed) p.publish_value(snapshot);
        if (!own.empty()) own[k].publish_value(snapshot);
      }
      if (shmbus::platform::wait_for_termination_request(std::chrono::milliseconds(1))) break;
    }
  } catch (const shmbus::error& e) {
    if (e.code() == shmbus::errc::topic_closed) {
      std::printf("md-feed: the broker stopped; %llu snapshots published\n", static_cast<unsigned long long>(sent));
      return 0;
    }
    std::fprintf(stderr, "md-feed: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "md-feed: %s\n", e.what());
    return 1;
  }
  std::printf("md-feed: %llu snapshots published\n", static_cast<unsigned long long>(sent));
  return 0;
}
