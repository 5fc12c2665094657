// api-publisher: publishes COUNT quotes (default 50), 20 per second, to the
// topic "quotes" of the bus $SHMBUS_BUS (else "default").
#include <shmbus/client.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "quote.hpp"

int main(int argc, char** argv) {
  const long count = argc > 1 ? std::atol(argv[1]) : 50;
  try {
    shmbus::bus bus;  // fails with errc::no_broker if no broker runs
    // Checks sizeof(quote) against the topic's declared type_size.
    shmbus::publisher pub = bus.make_publisher<quote>("quotes");
    for (long i = 1; i <= count; ++i) {
      quote q{};
      std::strncpy(q.symbol, "rb2605", sizeof q.symbol - 1);
      q.bid = 3100.0 + static_cast<double>(i % 7);
      q.ask = q.bid + 1.0;
      q.sequence = i;
      const std::uint64_t seq = pub.publish_value(q);  // a memcpy, and a wake-up if anyone sleeps
      std::printf("published #%llu %s %.1f/%.1f\n", static_cast<unsigned long long>(seq), q.symbol, q.bid, q.ask);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const shmbus::error& e) {  // one readable line: what, where, why
    std::fprintf(stderr, "api-publisher: %s\n", e.what());
    return 1;
  }
  return 0;
}
