// api-subscriber: prints the quotes published to the topic "quotes" of the
// bus $SHMBUS_BUS (else "default"), and any gaps; exits after 5 s without a
// quote, or when the broker stops.
#include <shmbus/client.hpp>
#include <shmbus/clock.hpp>

#include <chrono>
#include <cstdio>

#include "quote.hpp"

int main() {
  try {
    shmbus::bus bus;
    // Starts after the newest quote published so far.
    shmbus::subscriber sub = bus.make_subscriber<quote>("quotes");
    shmbus::message m;                              // reused: no allocation per message
    while (sub.wait(m, std::chrono::seconds(5))) {  // sleeps in the kernel until a publish
      if (m.missed() != 0)                          // fell more than the ring's depth behind
        std::printf("gap: %llu quote(s) missed\n", static_cast<unsigned long long>(m.missed()));
      const auto q = m.as<quote>();
      // The publish time is on the system-wide monotonic clock.
      const std::int64_t age_ns = shmbus::monotonic_ns() - m.timestamp_ns();
      std::printf("#%llu %s %.1f/%.1f (%.1f us after publish)\n", static_cast<unsigned long long>(m.sequence()),
                  q.symbol, q.bid, q.ask, static_cast<double>(age_ns) / 1e3);
      std::fflush(stdout);  // a line at a time, also into a pipe
    }
    std::printf("no quote for 5 s; received %llu, missed %llu\n", static_cast<unsigned long long>(sub.received_total()),
                static_cast<unsigned long long>(sub.missed_total()));
  } catch (const shmbus::error& e) {
    // errc::topic_closed when the broker stops; no_broker, unknown_topic,
    // type_size_mismatch, ... when opening.
    std::fprintf(stderr, "api-subscriber: %s\n", e.what());
    return e.code() == shmbus::errc::topic_closed ? 0 : 1;
  }
  return 0;
}
