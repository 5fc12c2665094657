#pragma once
// The demo's message: one quote update for one instrument.
#include <cstdint>

namespace demo {

struct tick {
  char instrument[16];
  double bid;
  double ask;
  double last;
  std::int64_t volume;
  std::uint32_t bid_size;
  std::uint32_t ask_size;
};
static_assert(sizeof(tick) == 56);

}  // namespace demo
