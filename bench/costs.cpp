// Costs of the pieces of a publish and a read, one thread, nothing else
// running on the topic: what each step of the hot path takes on this CPU,
// measured in thread CPU time so that other load on the machine distorts it
// little. They explain the gap between shmbus and the reference.
#include "costs.hpp"

#include <cstring>
#include <vector>

#include "reference.hpp"
#include "shmbus/broker.hpp"
#include "shmbus/client.hpp"
#include "shmbus/platform/named_mutex.hpp"
#include "shmbus/platform/process.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "sys.hpp"

// The CPU's time-stamp counter, where the architecture has one: the
// candidate replacement for the clock read that stamps every message.
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define SHMBUS_BENCH_TSC 1
#endif

namespace shmbus::bench {
namespace {

// ns per call of `f`, the best of three rounds of `n` calls.
template <class F>
double per_call(std::uint64_t n, F&& f) {
  double best = 1e300;
  for (int round = 0; round < 3; ++round) {
    const std::int64_t c0 = sys::thread_cpu_ns();
    for (std::uint64_t i = 0; i < n; ++i) f();
    const std::int64_t c1 = sys::thread_cpu_ns();
    best = std::min(best, static_cast<double>(c1 - c0) / static_cast<double>(n));
  }
  return best;
}

}  // namespace

std::vector<cost> measure_costs(const std::string& name, bool quick) {
  const std::uint64_t n = quick ? 20000 : 1000000;
  std::vector<cost> out;
  // Unsigned, so that summing counter values wraps instead of overflowing (UB).
  std::uint64_t sink = 0;
  out.push_back({std::string("clock read (platform::monotonic_ns, source: ") + platform::clock_source() + ")",
                 per_call(n, [&] { sink += static_cast<std::uint64_t>(platform::monotonic_ns()); })});
  out.push_back({"clock read (kernel: CLOCK_MONOTONIC / QueryPerformanceCounter)",
                 per_call(n, [&] { sink += static_cast<std::uint64_t>(platform::kernel_monotonic_ns()); })});
#ifdef SHMBUS_BENCH_TSC
  // Raw counter reads, without the scaling to ns a timestamp would also need.
  out.push_back({"TSC read (rdtsc)", per_call(n, [&] { sink += __rdtsc(); })});
  unsigned cpu = 0;
  out.push_back({"TSC read (rdtscp, waits for earlier instructions)", per_call(n, [&] { sink += __rdtscp(&cpu); })});
#endif
  {
    const std::string region_name = name + ".mutex";
    std::error_code ignored;
    platform::shared_memory_region::remove(region_name, ignored);
    platform::shared_memory_region region(create_only, region_name, 4096);
    platform::named_mutex m(create_only, region_name + "#mutex", region.data());
    out.push_back({"topic mutex lock + unlock (robust, process-shared)", per_call(n, [&] {
                     m.lock();
                     m.unlock();
                   })});
    platform::shared_memory_region::remove(region_name, ignored);
  }
  for (const std::size_t size : {std::size_t{64}, std::size_t{512}}) {
    broker_options o;
    o.bus = name + "-c" + std::to_string(size);
    topic_config t;
    t.name = "data";
    t.max_message_size = size;
    t.depth = 1024;
    o.topics = {t};
    broker brk(o);
    bus b(o.bus);
    auto pub = b.make_publisher("data");
    auto sub = b.make_subscriber("data");
    std::vector<std::byte> payload(size, std::byte{1}), dst(size);
    const std::string sz = " " + std::to_string(size) + " B";
    out.push_back({"shmbus publish" + sz + " (no subscriber waiting)", per_call(n, [&] { pub.publish(payload); })});
    out.push_back({"shmbus publish + try_read" + sz + ", same thread", per_call(n, [&] {
                     pub.publish(payload);
                     sink += static_cast<std::uint64_t>(sub.try_read(std::span<std::byte>(dst))->size);
                   })});
    {
      publisher_options opts;
      opts.exclusive = true;
      auto exclusive = b.make_publisher("data", opts);
      out.push_back({"shmbus exclusive publish" + sz, per_call(n, [&] { exclusive.publish(payload); })});
      out.push_back({"shmbus exclusive loan + commit" + sz + " (payload written in place)", per_call(n, [&] {
                       auto slot = exclusive.loan(size);
                       std::memcpy(slot.data(), payload.data(), size);
                       exclusive.commit();
                     })});
    }

    std::vector<std::byte> mem(reference::ring::bytes_for(size, 1024) + 64);
    // The ring wants a cache-line-aligned base, as a mapping gives.
    void* base = mem.data() + (64 - reinterpret_cast<std::uintptr_t>(mem.data()) % 64) % 64;
    reference::ring::init(base, size, 1024);
    reference::ring ring(base);
    std::uint64_t next = 1, missed = 0;
    out.push_back({"reference publish" + sz, per_call(n, [&] { ring.publish(payload); })});
    next = ring.newest() + 1;
    out.push_back({"reference publish + try_read" + sz + ", same thread", per_call(n, [&] {
                     ring.publish(payload);
                     sink += static_cast<std::uint64_t>(*ring.try_read(next, dst, missed));
                   })});
  }
  if (sink == 42) out.front().ns += 0;  // keep the work observable
  return out;
}

}  // namespace shmbus::bench
