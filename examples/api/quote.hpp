// The message of the API example: a plain struct, copied byte for byte.
#pragma once
#include <cstdint>

struct quote {
  char symbol[16];  // NUL-terminated
  double bid;
  double ask;
  std::int64_t sequence;  // the publisher's own count, for the example's output
};
static_assert(sizeof(quote) == 40);  // broker.ini declares type_size = 40
