#include "decoders.hpp"

#include <cstdio>
#include <cstring>

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

using md_struct = market_data::depth_market_data;

// The day's prices and figures after the book, in the order they are
// printed: a table, not a call per field, so a field is added in one line.
struct price_field {
  std::string_view name;
  double md_struct::*field;
};
constexpr price_field day_prices[] = {
    {"OpenPrice", &md_struct::open_price},
    {"HighestPrice", &md_struct::highest_price},
    {"LowestPrice", &md_struct::lowest_price},
    {"ClosePrice", &md_struct::close_price},
    {"SettlementPrice", &md_struct::settlement_price},
    {"PreSettlementPrice", &md_struct::pre_settlement_price},
    {"PreClosePrice", &md_struct::pre_close_price},
    {"PreOpenInterest", &md_struct::pre_open_interest},
    {"UpperLimitPrice", &md_struct::upper_limit_price},
    {"LowerLimitPrice", &md_struct::lower_limit_price},
    {"PreDelta", &md_struct::pre_delta},
    {"CurrDelta", &md_struct::curr_delta},
    {"AveragePrice", &md_struct::average_price},
};

void format_depth_market_data(std::span<const std::byte> payload, std::string& out) {
  md_struct md;
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
    append_number(out, "BidPrice" + n, md.*market_data::bid_price[i]);
    append_number(out, "BidVolume" + n, md.*market_data::bid_volume[i]);
    append_number(out, "AskPrice" + n, md.*market_data::ask_price[i]);
    append_number(out, "AskVolume" + n, md.*market_data::ask_volume[i]);
  }
  for (const auto& [name, field] : day_prices) append_number(out, name, md.*field);
  append_field(out, "ActionDay", text(md.action_day));
}

constexpr decoder registry[] = {
    {"depth_market_data", "CTP depth market data, 408 bytes (shmbus/market_data.hpp)", sizeof(md_struct),
     &format_depth_market_data},
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
