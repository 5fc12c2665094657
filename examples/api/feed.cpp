// api-feed: a feed handler, the one writer of "quotes": holds the topic's
// exclusive publish right (no lock per publish) and writes each quote in
// place, in the slot subscribers read (a loan), COUNT quotes (default 50).
#include <shmbus/client.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "quote.hpp"

int main(int argc, char** argv) {
  const long count = argc > 1 ? std::atol(argv[1]) : 50;
  try {
    shmbus::bus bus;
    shmbus::publisher_options opts;
    opts.type_size = sizeof(quote);
    opts.exclusive = true;  // a second feed is refused: errc::exclusive_publisher
    shmbus::publisher feed = bus.make_publisher("quotes", opts);
    for (long i = 1; i <= count; ++i) {
      quote& q = feed.loan<quote>();  // a value-initialised quote, in the topic's next slot
      std::strncpy(q.symbol, "cu2603", sizeof q.symbol - 1);
      q.bid = 71000.0 + static_cast<double>(i % 9) * 10;
      q.ask = q.bid + 10.0;
      q.sequence = i;
      const std::uint64_t seq = feed.commit();  // now subscribers see it, whole
      std::printf("published #%llu %s %.1f/%.1f\n", static_cast<unsigned long long>(seq), q.symbol, q.bid, q.ask);
    }
  } catch (const shmbus::error& e) {
    std::fprintf(stderr, "api-feed: %s\n", e.what());
    return 1;
  }
  return 0;
}
