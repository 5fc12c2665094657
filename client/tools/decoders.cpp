#include "decoders.hpp"

#include <cstdio>
#include <cstring>
#include <type_traits>

#include "shmbus/market_data.hpp"

namespace shmbus::cli {
namespace {

void append_field(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty() && out.back() != ' ') out += ' ';
  out += name;
  out += '=';
  append_escaped(out, value);
}

void append_number(std::string& out, std::string_view name, double v) {
  char buf[32];
  // %.15g: every price a double holds exactly enough to round-trip what
  // a feed wrote (3512, 780.02), without binary noise (780.0199999...).
  if (v == market_data::no_price)
    std::snprintf(buf, sizeof buf, "-");
  else
    std::snprintf(buf, sizeof buf, "%.15g", v);
  append_field(out, name, buf);
}

void append_number(std::string& out, std::string_view name, std::int32_t v) {
  append_field(out, name, std::to_string(v));
}

// The day's prices and figures after the book, in the order they are
// printed: a table, not a call per field, so a field is added in one line.
template <market_data::depth_market_data_layout T>
struct price_field {
  std::string_view name;
  double T::*field;
};
template <market_data::depth_market_data_layout T>
constexpr price_field<T> day_prices[] = {
    {"OpenPrice", &T::open_price},
    {"HighestPrice", &T::highest_price},
    {"LowestPrice", &T::lowest_price},
    {"ClosePrice", &T::close_price},
    {"SettlementPrice", &T::settlement_price},
    {"PreSettlementPrice", &T::pre_settlement_price},
    {"PreClosePrice", &T::pre_close_price},
    {"PreOpenInterest", &T::pre_open_interest},
    {"UpperLimitPrice", &T::upper_limit_price},
    {"LowerLimitPrice", &T::lower_limit_price},
    {"PreDelta", &T::pre_delta},
    {"CurrDelta", &T::curr_delta},
    {"AveragePrice", &T::average_price},
};

// One decoder for the three CTP layouts: the same fields in the same printed
// order, so that a script reading one layout's lines reads the others'. The
// v6.5.1+ reserve fields are CTP's "invalid" ones and are not printed.
template <market_data::depth_market_data_layout T>
void format_depth_market_data(std::span<const std::byte> payload, std::string& out) {
  T md;
  std::memcpy(&md, payload.data(), sizeof md);
  using market_data::text;
  append_field(out, "TradingDay", text(md.trading_day));
  append_field(out, "InstrumentID", text(md.instrument_id));
  append_field(out, "ExchangeID", text(md.exchange_id));
  append_field(out, "ExchangeInstID", text(md.exchange_inst_id));
  append_field(out, "UpdateTime", text(md.update_time));
  append_number(out, "UpdateMillisec", md.update_millisec);
  append_number(out, "LastPrice", md.last_price);
  append_number(out, "Volume", md.volume);
  append_number(out, "Turnover", md.turnover);
  append_number(out, "OpenInterest", md.open_interest);
  for (std::size_t i = 0; i < market_data::book_depth; ++i) {
    const std::string n = std::to_string(i + 1);
    append_number(out, "BidPrice" + n, md.*market_data::bid_price_of<T>[i]);
    append_number(out, "BidVolume" + n, md.*market_data::bid_volume_of<T>[i]);
    append_number(out, "AskPrice" + n, md.*market_data::ask_price_of<T>[i]);
    append_number(out, "AskVolume" + n, md.*market_data::ask_volume_of<T>[i]);
  }
  for (const auto& [name, field] : day_prices<T>) append_number(out, name, md.*field);
  append_field(out, "ActionDay", text(md.action_day));
  if constexpr (std::is_same_v<T, market_data::depth_market_data_v6_7>) {
    append_number(out, "BandingUpperPrice", md.banding_upper_price);
    append_number(out, "BandingLowerPrice", md.banding_lower_price);
  }
}

using market_data::depth_market_data_v6_3;
using market_data::depth_market_data_v6_5;
using market_data::depth_market_data_v6_7;

// depth_market_data first and unchanged: it was the only name before the
// newer layouts, and scripts use it.
constexpr decoder registry[] = {
    {"depth_market_data", "CTP depth market data, v6.3 layout, 408 bytes (shmbus/market_data.hpp)",
     sizeof(depth_market_data_v6_3), &format_depth_market_data<depth_market_data_v6_3>},
    {"depth_market_data_v6_3", "the same as depth_market_data", sizeof(depth_market_data_v6_3),
     &format_depth_market_data<depth_market_data_v6_3>},
    {"depth_market_data_v6_5", "CTP depth market data, v6.5.1 layout, 568 bytes", sizeof(depth_market_data_v6_5),
     &format_depth_market_data<depth_market_data_v6_5>},
    {"depth_market_data_v6_7", "CTP depth market data, v6.6.7-v6.7.11 layout, 584 bytes",
     sizeof(depth_market_data_v6_7), &format_depth_market_data<depth_market_data_v6_7>},
};

}  // namespace

std::span<const decoder> decoders() noexcept { return registry; }

const decoder* find_decoder(std::string_view name) noexcept {
  for (const auto& d : registry)
    if (d.name == name) return &d;
  return nullptr;
}

void append_escaped(std::string& out, std::string_view bytes) {
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else
      out += ch;
  }
}

}  // namespace shmbus::cli
