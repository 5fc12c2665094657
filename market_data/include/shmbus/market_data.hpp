#pragma once
/// \file
/// Depth-market-data snapshots with the public field layouts of CTP's
/// `CThostFtdcDepthMarketDataField` (the fields in CTP's order, each with
/// CTP's type), so a CTP feed handler can publish what its
/// `OnRtnDepthMarketData` receives with one `memcpy`, and strategies read it
/// without a CTP header. Member names are CTP's in snake_case (`LastPrice` ->
/// `last_price`, `BidVolume1` -> `bid_volume1`). CTP changed the struct
/// twice, so there are three layouts; pick the one of the SDK the feed
/// handler is built with (a `static_assert` on `sizeof` of both catches a
/// wrong pick):
///
/// | struct                   | CTP SDK          | bytes | instrument ID |
/// |--------------------------|------------------|-------|---------------|
/// | `depth_market_data_v6_3` | v6.3.x, earlier  | 408   | <= 30 chars   |
/// | `depth_market_data_v6_5` | v6.5.1           | 568   | <= 80 chars   |
/// | `depth_market_data_v6_7` | v6.6.7 - v6.7.11 | 584   | <= 80 chars   |
///
/// `depth_market_data` is the v6.3 struct, as before the newer layouts
/// existed. The sizes differ, so a topic's declared type size says which
/// layout it carries. The demo feed (`examples/market_data/`) publishes any
/// of them (`md-feed --ctp v6.3|v6.5|v6.7`), and `shmbus sub TOPIC --format
/// depth_market_data_v6_3` (or `_v6_5`, `_v6_7`) decodes them.
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

// The layouts below follow CTP's published ThostFtdcUserApiStruct.h and
// ThostFtdcUserApiDataType.h as vn.py ships them (github.com/vnpy/vnpy_ctp,
// vnpy_ctp/api/include/ctp/): v6.3.15 at commit c677b7d, v6.5.1 at aac5d45,
// v6.6.7 at e367971 and v6.7.11 at f3d5da9. The header types used here:
// TThostFtdcDateType, TimeType and ExchangeIDType are char[9];
// InstrumentIDType and ExchangeInstIDType char[31] in v6.3, char[81] from
// v6.5.1; OldInstrumentIDType and OldExchangeInstIDType (v6.5.1+) char[31];
// PriceType, MoneyType, RatioType and LargeVolumeType double; VolumeType and
// MillisecType int. CTP's headers set no packing, so every offset is the
// x86-64 System V (and Win64) natural alignment: a double at a multiple of
// 8, an int of 4, a char anywhere, the size a multiple of 8. The
// static_asserts below are those offsets, worked out by hand and then
// compared (once, outside this repository) with offsetof and sizeof of
// CThostFtdcDepthMarketDataField from each of the four headers, built with
// g++ 12 for x86-64: they agree.

/// One snapshot of one instrument in CTP's v6.3 layout (v6.3.x and earlier:
/// 408 bytes, instrument IDs of at most 30 characters). Text fields are
/// NUL-terminated (CTP's `char[N]` types); `volume` and the book volumes are
/// CTP's `int`.
struct depth_market_data_v6_3 {
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

/// The v6.3 layout under its original name: code written before the newer
/// layouts were added keeps meaning the same 408 bytes.
using depth_market_data = depth_market_data_v6_3;

/// One snapshot in CTP's v6.5.1 layout (568 bytes). v6.5.1 widened the
/// instrument IDs to 80 characters and moved them after ActionDay; their old
/// 31-byte places stay as `reserve1` and `reserve2` so that every other
/// field keeps its v6.3 offset. The header calls the reserves "reserved,
/// invalid fields": read `instrument_id` and `exchange_inst_id`.
struct depth_market_data_v6_5 {
  char trading_day[9];           ///< TradingDay, "YYYYMMDD"
  char reserve1[31];             ///< reserve1 (v6.3's InstrumentID place; not valid)
  char exchange_id[9];           ///< ExchangeID, e.g. "SHFE"
  char reserve2[31];             ///< reserve2 (v6.3's ExchangeInstID place; not valid)
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
  char instrument_id[81];        ///< InstrumentID, up to 80 characters
  char exchange_inst_id[81];     ///< ExchangeInstID, up to 80 characters
};

/// One snapshot in the current CTP layout (584 bytes): v6.5.1's with
/// BandingUpperPrice and BandingLowerPrice appended. The same in the v6.6.7
/// and v6.7.11 headers; v6.5.1's has no banding prices, and no header
/// between those two was checked.
struct depth_market_data_v6_7 {
  char trading_day[9];           ///< TradingDay, "YYYYMMDD"
  char reserve1[31];             ///< reserve1 (v6.3's InstrumentID place; not valid)
  char exchange_id[9];           ///< ExchangeID, e.g. "SHFE"
  char reserve2[31];             ///< reserve2 (v6.3's ExchangeInstID place; not valid)
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
  char instrument_id[81];        ///< InstrumentID, up to 80 characters
  char exchange_inst_id[81];     ///< ExchangeInstID, up to 80 characters
  double banding_upper_price;    ///< BandingUpperPrice, upper price band
  double banding_lower_price;    ///< BandingLowerPrice, lower price band
};

// The layouts are the contract with CTP and with every process on the bus:
// a change here must be a new type, not an edit.
namespace layout_check {

// The fields every layout has, at the same offsets in all three (v6.5.1
// kept them in place). One template for all three, so that the lists
// cannot drift apart; a failing assertion names the layout it was
// instantiated for.
template <class T>
constexpr bool common_offsets() {
  static_assert(std::is_trivially_copyable_v<T>);
  static_assert(std::is_standard_layout_v<T>);
  static_assert(offsetof(T, trading_day) == 0);
  static_assert(offsetof(T, exchange_id) == 40);
  static_assert(offsetof(T, last_price) == 80);
  static_assert(offsetof(T, pre_settlement_price) == 88);
  static_assert(offsetof(T, pre_close_price) == 96);
  static_assert(offsetof(T, pre_open_interest) == 104);
  static_assert(offsetof(T, open_price) == 112);
  static_assert(offsetof(T, highest_price) == 120);
  static_assert(offsetof(T, lowest_price) == 128);
  static_assert(offsetof(T, volume) == 136);
  static_assert(offsetof(T, turnover) == 144);
  static_assert(offsetof(T, open_interest) == 152);
  static_assert(offsetof(T, close_price) == 160);
  static_assert(offsetof(T, settlement_price) == 168);
  static_assert(offsetof(T, upper_limit_price) == 176);
  static_assert(offsetof(T, lower_limit_price) == 184);
  static_assert(offsetof(T, pre_delta) == 192);
  static_assert(offsetof(T, curr_delta) == 200);
  static_assert(offsetof(T, update_time) == 208);
  static_assert(offsetof(T, update_millisec) == 220);
  static_assert(offsetof(T, bid_price1) == 224);
  static_assert(offsetof(T, bid_volume1) == 232);
  static_assert(offsetof(T, ask_price1) == 240);
  static_assert(offsetof(T, ask_volume1) == 248);
  static_assert(offsetof(T, bid_price2) == 256);
  static_assert(offsetof(T, bid_volume2) == 264);
  static_assert(offsetof(T, ask_price2) == 272);
  static_assert(offsetof(T, ask_volume2) == 280);
  static_assert(offsetof(T, bid_price3) == 288);
  static_assert(offsetof(T, bid_volume3) == 296);
  static_assert(offsetof(T, ask_price3) == 304);
  static_assert(offsetof(T, ask_volume3) == 312);
  static_assert(offsetof(T, bid_price4) == 320);
  static_assert(offsetof(T, bid_volume4) == 328);
  static_assert(offsetof(T, ask_price4) == 336);
  static_assert(offsetof(T, ask_volume4) == 344);
  static_assert(offsetof(T, bid_price5) == 352);
  static_assert(offsetof(T, bid_volume5) == 360);
  static_assert(offsetof(T, ask_price5) == 368);
  static_assert(offsetof(T, ask_volume5) == 376);
  static_assert(offsetof(T, average_price) == 384);
  static_assert(offsetof(T, action_day) == 392);
  // CTP's int fields: an 8-byte one would fit in the padding after each and
  // leave every offset as it is, so their type is checked too.
  static_assert(std::is_same_v<decltype(T::volume), std::int32_t>);
  static_assert(std::is_same_v<decltype(T::update_millisec), std::int32_t>);
  static_assert(std::is_same_v<decltype(T::bid_volume1), std::int32_t>);
  static_assert(std::is_same_v<decltype(T::ask_volume1), std::int32_t>);
  static_assert(std::is_same_v<decltype(T::bid_volume2), std::int32_t>);
  static_assert(std::is_same_v<decltype(T::ask_volume2), std::int32_t>);
  static_assert(std::is_same_v<decltype(T::bid_volume3), std::int32_t>);
  static_assert(std::is_same_v<decltype(T::ask_volume3), std::int32_t>);
  static_assert(std::is_same_v<decltype(T::bid_volume4), std::int32_t>);
  static_assert(std::is_same_v<decltype(T::ask_volume4), std::int32_t>);
  static_assert(std::is_same_v<decltype(T::bid_volume5), std::int32_t>);
  static_assert(std::is_same_v<decltype(T::ask_volume5), std::int32_t>);
  return true;
}

}  // namespace layout_check

// v6.3: the IDs in their original places; ActionDay ends at 401, padded to 408.
static_assert(layout_check::common_offsets<depth_market_data_v6_3>());
static_assert(offsetof(depth_market_data_v6_3, instrument_id) == 9);
static_assert(offsetof(depth_market_data_v6_3, exchange_inst_id) == 49);
static_assert(sizeof(depth_market_data_v6_3) == 408);

// v6.5.1: the reserves where the IDs were; the 81-byte IDs at 401 and 482,
// ending at 563, padded to 568.
static_assert(layout_check::common_offsets<depth_market_data_v6_5>());
static_assert(offsetof(depth_market_data_v6_5, reserve1) == 9);
static_assert(offsetof(depth_market_data_v6_5, reserve2) == 49);
static_assert(offsetof(depth_market_data_v6_5, instrument_id) == 401);
static_assert(offsetof(depth_market_data_v6_5, exchange_inst_id) == 482);
static_assert(sizeof(depth_market_data_v6_5) == 568);

// v6.6.7 / v6.7.11: v6.5.1's, then the banding prices at 568 and 576.
static_assert(layout_check::common_offsets<depth_market_data_v6_7>());
static_assert(offsetof(depth_market_data_v6_7, reserve1) == 9);
static_assert(offsetof(depth_market_data_v6_7, reserve2) == 49);
static_assert(offsetof(depth_market_data_v6_7, instrument_id) == 401);
static_assert(offsetof(depth_market_data_v6_7, exchange_inst_id) == 482);
static_assert(offsetof(depth_market_data_v6_7, banding_upper_price) == 568);
static_assert(offsetof(depth_market_data_v6_7, banding_lower_price) == 576);
static_assert(sizeof(depth_market_data_v6_7) == 584);

/// True for the three layout structs: generic code (a feed that can publish
/// any of them, a decoder) takes `template <depth_market_data_layout T>`.
template <class T>
concept depth_market_data_layout = std::is_same_v<T, depth_market_data_v6_3> ||
    std::is_same_v<T, depth_market_data_v6_5> || std::is_same_v<T, depth_market_data_v6_7>;

/// Levels of the book: `md.*bid_price_of<T>[0]` is `md.bid_price1`, and so
/// on to level 5, for code that loops over the book of any layout.
inline constexpr std::size_t book_depth = 5;
template <depth_market_data_layout T>
inline constexpr double T::*bid_price_of[book_depth] = {&T::bid_price1, &T::bid_price2, &T::bid_price3, &T::bid_price4,
                                                        &T::bid_price5};
template <depth_market_data_layout T>
inline constexpr std::int32_t T::*bid_volume_of[book_depth] = {&T::bid_volume1, &T::bid_volume2, &T::bid_volume3,
                                                               &T::bid_volume4, &T::bid_volume5};
template <depth_market_data_layout T>
inline constexpr double T::*ask_price_of[book_depth] = {&T::ask_price1, &T::ask_price2, &T::ask_price3, &T::ask_price4,
                                                        &T::ask_price5};
template <depth_market_data_layout T>
inline constexpr std::int32_t T::*ask_volume_of[book_depth] = {&T::ask_volume1, &T::ask_volume2, &T::ask_volume3,
                                                               &T::ask_volume4, &T::ask_volume5};

/// The same for `depth_market_data` (v6.3), under the names code written
/// for it uses: `md.*bid_price[0]` is `md.bid_price1`.
inline constexpr const auto& bid_price = bid_price_of<depth_market_data>;
inline constexpr const auto& bid_volume = bid_volume_of<depth_market_data>;
inline constexpr const auto& ask_price = ask_price_of<depth_market_data>;
inline constexpr const auto& ask_volume = ask_volume_of<depth_market_data>;

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
