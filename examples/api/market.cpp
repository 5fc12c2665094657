// api-market: one keyed topic holds a whole market. `api-market publish N`
// publishes N quotes across three instruments, each under its instrument
// ID; `api-market watch [ID...]` joins with a snapshot (every followed
// instrument's latest quote at once), then prints the stream, until no
// quote comes for 10 seconds.
#include <shmbus/client.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "quote.hpp"

namespace {

int publish(long count) {
  shmbus::bus bus;
  shmbus::publisher feed = bus.make_publisher("market");
  const char* ids[] = {"cu2603", "rb2605", "IF2612"};
  for (long i = 1; i <= count; ++i) {
    quote q{};
    std::strncpy(q.symbol, ids[i % 3], sizeof q.symbol - 1);
    q.bid = 1000.0 + static_cast<double>(i);
    q.ask = q.bid + 1.0;
    q.sequence = i;
    feed.publish_value(q.symbol, q);  // the key: its instrument ID
  }
  return 0;
}

int watch(std::vector<std::string> ids) {
  shmbus::bus bus;
  shmbus::subscriber_options opts;
  opts.type_size = sizeof(quote);
  opts.keys = std::move(ids);  // empty: every instrument
  opts.snapshot = true;        // every followed key's latest value first
  shmbus::subscriber sub = bus.make_subscriber("market", opts);
  quote q;
  shmbus::message_info info;
  while (sub.wait(q, std::chrono::seconds(10), &info)) {
    if (info.missed != 0) {
      // Fell behind the ring: get every followed instrument's latest again.
      std::printf("lost %llu, resync skipped %llu\n", static_cast<unsigned long long>(info.missed),
                  static_cast<unsigned long long>(sub.resync()));
    }
    std::printf("%s %.*s #%lld %.1f/%.1f\n", info.snapshot ? "snapshot" : "update", static_cast<int>(info.key.size()),
                info.key.data(), static_cast<long long>(q.sequence), q.bid, q.ask);
    std::fflush(stdout);  // a line as it happens, also into a pipe
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "publish") return publish(argc > 2 ? std::atol(argv[2]) : 30);
    if (mode == "watch") return watch(std::vector<std::string>(argv + 2, argv + argc));
  } catch (const shmbus::error& e) {
    std::fprintf(stderr, "api-market: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: api-market publish [N] | api-market watch [ID...]\n");
  return 2;
}
