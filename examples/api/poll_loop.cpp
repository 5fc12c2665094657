// api-poll-loop: the README's subscriber loop as a program. Reads the quotes
// of the topic "quotes" of the bus $SHMBUS_BUS (else "default") until the
// broker stops.
#include <shmbus/client.hpp>

#include <chrono>
#include <cstdio>

#include "quote.hpp"

int main() {
  try {
    shmbus::bus bus;                                  // $SHMBUS_BUS or "default"
    auto sub = bus.make_subscriber<quote>("quotes");  // sizeof(quote) checked against the topic
    quote q;
    shmbus::message_info info;  // sequence, timestamp, size, missed
    for (;;) {
      // False only on timeout; throws topic_closed once the broker stops.
      if (sub.wait_available(std::chrono::milliseconds(100)))
        while (sub.try_read(q, &info)) {
          std::printf("#%llu %s %.1f/%.1f\n", static_cast<unsigned long long>(info.sequence), q.symbol, q.bid, q.ask);
          std::fflush(stdout);  // a line at a time, also into a pipe
        }
    }
  } catch (const shmbus::error& e) {
    std::fprintf(stderr, "api-poll-loop: %s\n", e.what());
    return e.code() == shmbus::errc::topic_closed ? 0 : 1;
  }
}
