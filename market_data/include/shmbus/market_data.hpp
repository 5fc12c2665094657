#pragma once
/// \file
/// A depth-market-data snapshot with the public field layout of CTP's
/// `CThostFtdcDepthMarketDataField` (the classic v6.3 layout: 408 bytes, the
/// fields in CTP's order, each with CTP's type), so a CTP feed handler can
/// publish what its `OnRtnDepthMarketData` receives with one `memcpy`, and
/// strategies read it without a CTP header. Member names are CTP's in
/// snake_case (`LastPrice` -> `last_price`, `BidVolume1` -> `bid_volume1`).
///
/// The demo feed (`examples/market_data/`) publishes it, and
/// `shmbus sub TOPIC --format depth_market_data` decodes it.
///
/// \code
///   shmbus::bus bus;
///   auto sub = bus.make_subscriber<shmbus::market_data::depth_market_data>("md");
///   shmbus::market_data::depth_market_data md;
///   if (sub.try_read(md)) use(shmbus::market_data::text(md.instrument_id), md.last_price);
/// \endcode

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <type_traits>

namespace shmbus::market_data {

/// CTP marks a price it has no value for (a close price during the session,
/// often an empty book level) with DBL_MAX.
inline constexpr double no_price = std::numeric_limits<double>::max();

/// One snapshot of one instrument. Text fields are NUL-terminated (CTP's
/// `char[N]` types); `volume` and the book volumes are CTP's `int`.
struct depth_market_data {
  char trading_day[9];           ///< TradingDay, "YYYYMMDD"
  char instrument_id[31];        ///< InstrumentID, e.g. "rb2605"
  char exchange_id[9];           ///< ExchangeID, e.g. "SHFE"
  char exchange_inst_id[31];     ///< ExchangeInstID
  double last_price;             ///< LastPrice
  double pre_settlement_price;   ///< PreSettlementPrice
  double pre_close_price;        ///< PreClosePrice
  double pre_open_interest;      ///< PreOpenInterest
  double open_price;             ///< OpenPrice
  double highest_price;          ///< HighestPrice
  double lowest_price;           ///< LowestPrice
  std::int32_t volume;           ///< Volume, contracts traded today
  double turnover;               ///< Turnover
  double open_interest;          ///< OpenInterest
  double close_price;            ///< ClosePrice (no_price until the close)
  double settlement_price;       ///< SettlementPrice (no_price until settlement)
  double upper_limit_price;      ///< UpperLimitPrice
  double lower_limit_price;      ///< LowerLimitPrice
  double pre_delta;              ///< PreDelta
  double curr_delta;             ///< CurrDelta
  char update_time[9];           ///< UpdateTime, exchange time "HH:MM:SS"
  std::int32_t update_millisec;  ///< UpdateMillisec
  double bid_price1;             ///< BidPrice1
  std::int32_t bid_volume1;      ///< BidVolume1
  double ask_price1;             ///< AskPrice1
  std::int32_t ask_volume1;      ///< AskVolume1
  double bid_price2;             ///< BidPrice2
  std::int32_t bid_volume2;      ///< BidVolume2
  double ask_price2;             ///< AskPrice2
  std::int32_t ask_volume2;      ///< AskVolume2
  double bid_price3;             ///< BidPrice3
  std::int32_t bid_volume3;      ///< BidVolume3
  double ask_price3;             ///< AskPrice3
  std::int32_t ask_volume3;      ///< AskVolume3
  double bid_price4;             ///< BidPrice4
  std::int32_t bid_volume4;      ///< BidVolume4
  double ask_price4;             ///< AskPrice4
  std::int32_t ask_volume4;      ///< AskVolume4
  double bid_price5;             ///< BidPrice5
  std::int32_t bid_volume5;      ///< BidVolume5
  double ask_price5;             ///< AskPrice5
  std::int32_t ask_volume5;      ///< AskVolume5
  double average_price;          ///< AveragePrice
  char action_day[9];            ///< ActionDay, calendar day "YYYYMMDD"
};

// The layout is the contract with CTP and with every process on the bus: a
// change here must be a new type, not an edit.
static_assert(std::is_trivially_copyable_v<depth_market_data>);
static_assert(std::is_standard_layout_v<depth_market_data>);
static_assert(sizeof(depth_market_data) == 408);
static_assert(offsetof(depth_market_data, last_price) == 80);
static_assert(offsetof(depth_market_data, volume) == 136);
static_assert(offsetof(depth_market_data, update_time) == 208);
static_assert(offsetof(depth_market_data, bid_price1) == 224);
static_assert(offsetof(depth_market_data, ask_volume5) == 376);
static_assert(offsetof(depth_market_data, action_day) == 392);

/// Levels of the book: `md.*bid_price[0]` is `md.bid_price1`, and so on to
/// level 5, for code that loops over the book.
inline constexpr std::size_t book_depth = 5;
inline constexpr double depth_market_data::*bid_price[book_depth] = {
    &depth_market_data::bid_price1, &depth_market_data::bid_price2, &depth_market_data::bid_price3,
    &depth_market_data::bid_price4, &depth_market_data::bid_price5};
inline constexpr std::int32_t depth_market_data::*bid_volume[book_depth] = {
    &depth_market_data::bid_volume1, &depth_market_data::bid_volume2, &depth_market_data::bid_volume3,
    &depth_market_data::bid_volume4, &depth_market_data::bid_volume5};
inline constexpr double depth_market_data::*ask_price[book_depth] = {
    &depth_market_data::ask_price1, &depth_market_data::ask_price2, &depth_market_data::ask_price3,
    &depth_market_data::ask_price4, &depth_market_data::ask_price5};
inline constexpr std::int32_t depth_market_data::*ask_volume[book_depth] = {
    &depth_market_data::ask_volume1, &depth_market_data::ask_volume2, &depth_market_data::ask_volume3,
    &depth_market_data::ask_volume4, &depth_market_data::ask_volume5};

/// The text of a `char[N]` field, up to its NUL (or all N bytes: a peer's
/// unterminated field must not make a reader run past it).
template <std::size_t N>
[[nodiscard]] std::string_view text(const char (&field)[N]) noexcept {
  const void* nul = std::memchr(field, '\0', N);
  return {field, nul ? static_cast<std::size_t>(static_cast<const char*>(nul) - field) : N};
}

/// Copies `value` into a `char[N]` field, truncated to N-1 bytes and
/// NUL-padded.
template <std::size_t N>
void set_text(char (&field)[N], std::string_view value) noexcept {
  const std::size_t n = value.size() < N ? value.size() : N - 1;
  std::memcpy(field, value.data(), n);
  std::memset(field + n, 0, N - n);
}

}  // namespace shmbus::market_data
