// api-no-exceptions: the subscriber above without exceptions. Every call
// reports through shmbus::error_info: the code, and the sentence the throwing
// form would have thrown. Reads quotes with the typed wait until the broker
// stops, or 5 s pass without one.
#include <shmbus/client.hpp>
#include <shmbus/clock.hpp>

#include <chrono>
#include <cstdio>

#include "quote.hpp"

namespace {
int report(const shmbus::error_info& err) {
  // err.what names the bus, topic or OS call, as e.what() would.
  std::fprintf(stderr, "api-no-exceptions: %s\n", err.what.c_str());
  return err.code == shmbus::errc::topic_closed ? 0 : 1;
}
}  // namespace

int main() {
  shmbus::error_info err;
  shmbus::bus bus({}, err);  // {}: $SHMBUS_BUS, else "default"
  if (err) return report(err);
  shmbus::subscriber sub;  // empty (is_open() is false) until assigned
  sub = bus.make_subscriber<quote>("quotes", err);
  if (err) return report(err);
  quote q;
  shmbus::message_info info;
  // The typed wait: the next message, exactly sizeof(quote) bytes, or false
  // after 5 s (err empty) or on an error (err set: topic_closed once the
  // broker stops).
  while (sub.wait(q, std::chrono::seconds(5), &info, err)) {
    const std::int64_t age_ns = shmbus::monotonic_ns() - info.timestamp_ns;
    std::printf("#%llu %s %.1f/%.1f (%.1f us after publish)\n", static_cast<unsigned long long>(info.sequence),
                q.symbol, q.bid, q.ask, static_cast<double>(age_ns) / 1e3);
    std::fflush(stdout);
  }
  if (err) return report(err);
  std::printf("no quote for 5 s\n");
  return 0;
}
