// A program outside the shmbus tree, built against shmbus the ways a user
// would: find_package(shmbus) on an installed (or .deb-extracted) shmbus, or
// add_subdirectory on its sources. It runs a broker in-process, publishes
// one market-data snapshot and reads it back, stamped on the public clock.
#include <shmbus/broker.hpp>
#include <shmbus/client.hpp>
#include <shmbus/clock.hpp>
#include <shmbus/market_data.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <string>

int main() {
  namespace md = shmbus::market_data;
  try {
    shmbus::broker_options opts;
    // Only the public headers are installed, so the bus name is made unique
    // without shmbus's platform layer.
    opts.bus = "consumer" + std::to_string(std::random_device{}());
    shmbus::topic_config topic;
    topic.name = "md";
    topic.max_message_size = sizeof(md::depth_market_data);
    topic.type_size = sizeof(md::depth_market_data);
    topic.depth = 8;
    opts.topics.push_back(topic);
    shmbus::broker broker(opts);

    shmbus::bus bus(opts.bus);
    auto sub = bus.make_subscriber<md::depth_market_data>("md");
    auto pub = bus.make_publisher<md::depth_market_data>("md");
    md::depth_market_data out{};
    md::set_text(out.instrument_id, "rb2605");
    out.last_price = 3512;
    const std::int64_t before = shmbus::monotonic_ns();
    pub.publish_value(out);

    md::depth_market_data in{};
    shmbus::message_info info;
    if (!sub.try_read(in, &info) || md::text(in.instrument_id) != "rb2605" || in.last_price != 3512 ||
        info.sequence != 1 || info.timestamp_ns < before || info.timestamp_ns > shmbus::monotonic_ns()) {
      std::fprintf(stderr, "shmbus consumer: the snapshot did not come back\n");
      return 1;
    }
    std::printf("shmbus consumer: ok\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmbus consumer: %s\n", e.what());
    return 1;
  }
}
