// md-feed: a futures feed handler simulator. Publishes CTP-layout depth
// market data snapshots (shmbus/market_data.hpp) for a set of instruments, at
// a steady total rate, with prices following a random walk in ticks inside
// the daily limits, trades adding volume, turnover and open interest, and a
// five-level book around the last price.
//
//   md-feed [--bus NAME] [--topic md] [--layout keyed|ring]
//           [--instruments rb2605,cu2603,...] [--rate N] [--seconds S] [--seed N] [--shared]
//           [--ctp v6.3|v6.5|v6.7]
//
// A feed handler is the one writer of its topic: md-feed holds its
// exclusive publish right (shmbus::publisher_options::exclusive), so a
// publish takes no lock and a second feed started by mistake is refused.
// --shared publishes under the topic mutex instead, beside other publishers.
//
// keyed (the default): every snapshot goes to the keyed topic TOPIC under its
// instrument ID, so the topic holds both the ordered stream of every update
// and each instrument's latest snapshot: a subscriber that keeps up sees
// every update, one that joins late or falls behind gets the current book
// at once (md-strategy). ring: to TOPIC as plain messages, for a broker that
// declares TOPIC without keys. The broker must declare the topic
// (examples/market_data/broker.ini does: `keys = 4096`).
//
// --ctp picks the struct: v6.3 (depth_market_data, 408 bytes, the default:
// the demo's broker.ini declares a 408-byte topic, and every subscriber
// written before the newer layouts expects it), v6.5 (CTP v6.5.1, 568
// bytes) or v6.7 (CTP v6.6.7 to v6.7.11, 584 bytes), as a feed handler
// built with that CTP SDK would publish. The topic must declare that size
// (or none); md-strategy tells the layouts apart by size.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "command_line.hpp"
#include "shmbus/client.hpp"
#include "shmbus/clock.hpp"
#include "shmbus/market_data.hpp"
#include "shmbus/platform/process.hpp"

namespace {

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
  template <md::depth_market_data_layout T>
  void next(std::mt19937_64& rng, T& out) {
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
    // (v6.5.1+'s reserve1/reserve2 stay zero: CTP's header calls them
    // invalid, and a reader of those layouts reads the wide IDs.)
    out = T{};
    for (std::size_t i = 0; i < md::book_depth; ++i) {
      const auto k = static_cast<std::int64_t>(i);
      out.*md::bid_price_of<T>[i] = price_of(bid - k);
      out.*md::ask_price_of<T>[i] = price_of(ask + k);
      out.*md::bid_volume_of<T>[i] = depth(rng) / static_cast<std::int32_t>(i + 1) + 1;
      out.*md::ask_volume_of<T>[i] = depth(rng) / static_cast<std::int32_t>(i + 1) + 1;
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
    if constexpr (std::is_same_v<T, md::depth_market_data_v6_7>) {
      // The simulator has no price bands of its own: the daily limits are
      // the widest band an exchange would set.
      out.banding_upper_price = price_of(upper_);
      out.banding_lower_price = price_of(lower_);
    }
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
template <md::depth_market_data_layout T>
void stamp(T& out) {
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

constexpr const char* usage =
    "usage: md-feed [--bus NAME] [--topic md] [--layout keyed|ring]\n"
    "               [--instruments ID,ID,...] [--rate N] [--seconds S] [--seed N] [--shared]\n"
    "               [--ctp v6.3|v6.5|v6.7]\n"
    "  --layout L    keyed (the default): under each instrument's ID on a keyed topic;\n"
    "                ring: as plain messages, to a topic declared without keys\n"
    "  --rate N      snapshots per second, all instruments together (default 2000)\n"
    "  --seconds S   stop after S seconds (default: run until Ctrl-C / SIGTERM)\n"
    "  --shared      publish under the topic mutex, beside other publishers, instead of\n"
    "                holding the topic's exclusive publish right (the default)\n"
    "  --ctp V       the struct's CTP layout: v6.3 (408 bytes, the default), v6.5\n"
    "                (CTP v6.5.1, 568 bytes) or v6.7 (CTP v6.6.7-v6.7.11, 584 bytes)\n";

// The longest instrument ID a layout holds (its char[N] minus the NUL).
template <md::depth_market_data_layout T>
constexpr std::size_t max_id_length = sizeof(T::instrument_id) - 1;

// The longest key of a keyed topic (shmbus::publisher::publish(key, ...)).
constexpr std::size_t max_key_length = 63;

// What main() decided, for the publishing loop of one layout.
struct feed_options {
  std::string bus_name, topic, layout;
  double rate = 0, seconds = 0;
  bool shared = false;
  std::uint64_t seed = 0;
  std::vector<std::string> ids;
  std::string ctp;
};

// Publishes T snapshots until --seconds or a termination request; returns
// the number published through `sent` (also when it throws).
template <md::depth_market_data_layout T>
void run(const feed_options& o, std::uint64_t& sent) {
  std::mt19937_64 rng(o.seed);
  std::vector<instrument> instruments;
  for (const auto& id : o.ids) instruments.emplace_back(contract_of(id), rng);

  shmbus::bus bus(o.bus_name);
  shmbus::publisher_options opts;
  opts.type_size = sizeof(T);
  opts.exclusive = !o.shared;
  auto pub = bus.make_publisher(o.topic, opts);
  const bool keyed = o.layout == "keyed";
  const auto& t = pub.topic();
  // Told before the first publish, not as the first publish's error.
  if (keyed && !t.keyed())
    throw std::runtime_error("topic '" + o.topic + "' is not keyed (declare it with keys = N, or use --layout ring)");
  if (!keyed && t.keyed())
    throw std::runtime_error("topic '" + o.topic + "' is keyed (--layout keyed publishes to it)");
  if (keyed && instruments.size() > t.key_capacity)
    throw std::runtime_error("topic '" + o.topic + "' holds at most " + std::to_string(t.key_capacity) + " keys, not " +
                             std::to_string(instruments.size()) + " instruments");
  const std::string where = (keyed ? "keyed topic '" : "topic '") + o.topic + "'";
  // The default layout's line is as it was before there were others.
  const std::string ctp = o.ctp == "v6.3" ? "" : ", CTP " + o.ctp + " layout (" + std::to_string(sizeof(T)) + " bytes)";
  std::printf("md-feed: %zu instruments, %.0f snapshots/s, to %s on bus '%s'%s%s\n", instruments.size(), o.rate,
              where.c_str(), bus.name().c_str(), o.shared ? "" : ", exclusive publisher", ctp.c_str());
  std::fflush(stdout);

  std::uniform_int_distribution<std::size_t> pick(0, instruments.size() - 1);
  T snapshot{};
  const std::int64_t start = shmbus::monotonic_ns();
  const auto burst = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(o.rate / 10));
  std::uint64_t scheduled = 0;  // snapshots the schedule has handed out so far
  for (;;) {
    const double elapsed = static_cast<double>(shmbus::monotonic_ns() - start) / 1e9;
    if (o.seconds > 0 && elapsed >= o.seconds) break;
    // Catch up with the schedule, but after a long stall (a stopped
    // process) drop the backlog beyond a tenth of a second rather than
    // flood it out.
    const auto due = static_cast<std::uint64_t>(o.rate * elapsed);
    if (due > scheduled + burst) scheduled = due - burst;
    for (; scheduled < due; ++scheduled, ++sent) {
      const std::size_t k = pick(rng);
      instruments[k].next(rng, snapshot);
      stamp(snapshot);
      if (keyed)
        pub.publish_value(instruments[k].id(), snapshot);
      else
        pub.publish_value(snapshot);
    }
    if (shmbus::platform::wait_for_termination_request(std::chrono::milliseconds(1))) break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  feed_options o;
  o.topic = "md", o.layout = "keyed", o.ctp = "v6.3", o.rate = 2000;
  o.seed = std::random_device{}();
  std::string instrument_list;
  try {
    for (md_demo::command_line args(argc, argv); args.next();) {
      const std::string& a = args.flag();
      if (a == "--bus")
        o.bus_name = args.value();
      else if (a == "--topic")
        o.topic = args.value();
      else if (a == "--layout")
        o.layout = args.value();
      else if (a == "--instruments")
        instrument_list = args.value();
      else if (a == "--rate")
        o.rate = std::stod(args.value());
      else if (a == "--seconds")
        o.seconds = std::stod(args.value());
      else if (a == "--seed")
        o.seed = std::stoull(args.value());
      else if (a == "--shared")
        o.shared = true;
      else if (a == "--ctp")
        o.ctp = args.value();
      else if (a == "--help" || a == "-h")
        return std::fputs(usage, stdout), 0;
      else
        throw std::invalid_argument("unknown option " + a);
    }
    if (o.layout != "keyed" && o.layout != "ring") throw std::invalid_argument("--layout must be keyed or ring");
    if (o.ctp != "v6.3" && o.ctp != "v6.5" && o.ctp != "v6.7")
      throw std::invalid_argument("--ctp must be v6.3, v6.5 or v6.7");
    if (!(o.rate > 0 && o.rate <= 10'000'000)) throw std::invalid_argument("--rate must be in (0, 10000000]");
    o.ids = md_demo::split_list(instrument_list);
    if (o.ids.empty())
      for (const auto& c : known_contracts) o.ids.emplace_back(c.id);
    // A longer ID would be cut short in the struct, and two instruments
    // could publish under one name: refused, not truncated.
    const std::size_t max_id =
        o.ctp == "v6.3" ? max_id_length<md::depth_market_data_v6_3> : max_id_length<md::depth_market_data_v6_7>;
    for (const auto& id : o.ids)
      if (id.size() > max_id)
        throw std::invalid_argument("instrument ID '" + id + "' is " + std::to_string(id.size()) + " characters; the " +
                                    o.ctp + " layout holds at most " + std::to_string(max_id) +
                                    (o.ctp == "v6.3" ? " (--ctp v6.5 or v6.7: 80)" : ""));
      else if (o.layout == "keyed" && id.size() > max_key_length)
        throw std::invalid_argument("instrument ID '" + id + "' is " + std::to_string(id.size()) +
                                    " characters; a key holds at most " + std::to_string(max_key_length) +
                                    " (--layout ring: " + std::to_string(max_id) + ")");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "md-feed: %s\n%s", e.what(), usage);
    return 2;
  }

  // Termination requests are taken synchronously from here on: the pacing
  // wait below is also the wait for Ctrl-C.
  shmbus::platform::wait_for_termination_request(std::chrono::milliseconds(0));
  std::uint64_t sent = 0;
  try {
    if (o.ctp == "v6.3")
      run<md::depth_market_data_v6_3>(o, sent);
    else if (o.ctp == "v6.5")
      run<md::depth_market_data_v6_5>(o, sent);
    else
      run<md::depth_market_data_v6_7>(o, sent);
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
