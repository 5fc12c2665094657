#include "shmbus/broker.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "shmbus/detail/broker_port.hpp"
#include "shmbus/detail/registry.hpp"
#include "shmbus/error.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/bus_endpoint.hpp"

namespace shmbus {
namespace {

using detail::broker_port;
using detail::registry;

void check_topics(const std::vector<topic_config>& topics) {
  std::set<std::string> seen;
  for (const auto& t : topics) {
    if (!seen.insert(t.name).second)
      throw_error(make_error_code(errc::invalid_argument), "topic '" + t.name + "' is given twice");
    std::string why;
    if (auto ec = broker_port::check(t, why)) throw_error(ec, why);
  }
}

// Marks a dead broker's topics closed (waking their waiters), so that
// clients still mapping them learn that they are gone instead of waiting for
// ever.
void close_orphan_topics(const registry& dead, std::string_view bus) {
  for (const auto& t : dead.topics()) broker_port::close_orphan(bus, dead.instance(), t.name);
}

// The claim on the bus: held for the broker's life, released by the OS
// however the broker ends. Whoever holds it alone may remove stale objects
// and create new ones, so two brokers can never both come up.
platform::bus_endpoint claim_bus(std::string_view bus) {
  std::error_code ec;
  std::string what;
  platform::bus_endpoint endpoint(create_only, detail::endpoint_name(bus), ec, what);
  if (ec == errc::broker_running) {
    std::string who;
    std::string ignored;
    const registry r = registry::open(bus, ec, ignored);
    if (!ec) who = " (pid " + std::to_string(r.broker().pid) + ")";
    throw_error(make_error_code(errc::broker_running),
                "a live broker" + who + " already owns bus '" + std::string(bus) + "'");
  }
  if (ec) throw_error(ec, "claim bus '" + std::string(bus) + "': " + what);
  return endpoint;
}

// Removes what a dead broker left; the caller holds the claim.
unsigned remove_stale_claimed(std::string_view bus) {
  std::error_code ec;
  std::string what;
  const registry r = registry::open(bus, ec, what);
  if (ec == std::errc::permission_denied) throw_error(ec, what);
  if (!ec) close_orphan_topics(r, bus);
  unsigned removed = 0;
  for (const std::string& object : platform::shared_memory_region::list(detail::bus_object_prefix(bus))) {
    if (platform::shared_memory_region::remove(object, ec)) ++removed;
    if (ec) throw_error(ec, "shm_unlink('/" + object + "') of a stale object");
  }
  return removed;
}

std::uint64_t new_instance() {
  std::random_device rd;
  const auto me = platform::current_process();
  return (std::uint64_t{rd()} << 32 ^ rd()) ^ me.pid << 16 ^ static_cast<std::uint64_t>(platform::monotonic_ns());
}

}  // namespace

struct broker::impl {
  std::string bus;
  platform::bus_endpoint endpoint;  // the claim; destroyed last, after remove_objects()
  std::uint64_t instance = new_instance();
  std::vector<topic_params> params;
  registry reg;
  std::vector<broker_port> topics;
  unsigned stale_removed = 0;

  void remove_objects() noexcept {
    std::error_code ec;
    for (auto& t : topics) {
      t.close();
      const std::string object = detail::topic_object_name(bus, instance, t.params().name);
      platform::shared_memory_region::remove(object, ec);
    }
    // Unlink before marking closed: a new broker then finds either our ready
    // registry (and refuses) or none, never a closed one it would clean up
    // while we still remove names that may already be its own.
    platform::shared_memory_region::remove(detail::registry_object_name(bus), ec);
    reg.mark_closed();
  }
};

unsigned broker::remove_stale(std::string_view bus) {
  const platform::bus_endpoint claim = claim_bus(bus);
  return remove_stale_claimed(bus);
}

broker::broker(broker_options opts) : impl_(std::make_unique<impl>()) {
  impl& m = *impl_;
  m.bus = opts.bus.empty() ? default_bus_name() : opts.bus;
  std::string why;
  if (auto ec = validate_bus_name(m.bus, &why)) throw_error(ec, why);
  if (opts.topics.empty()) throw_error(make_error_code(errc::invalid_argument), "the broker needs at least one topic");
  check_topics(opts.topics);
  m.params = opts.topics;
  if (!opts.object_namespace.empty())
    platform::set_object_namespace(opts.object_namespace == "global" ? platform::object_namespace::global
                                                                     : platform::object_namespace::local);
  platform::permissions perms;
  perms.mode = opts.mode;
  perms.group = opts.group;
  perms.sddl = opts.sddl;
  perms.group_publishes = opts.group_publishes;
  if (auto ec = platform::check_permissions(perms, why)) throw_error(ec, why);

  m.endpoint = claim_bus(m.bus);
  // We own the bus: a registry already there is a dead broker's. Where
  // names die with their last handle (Windows), a client may hold it for a
  // moment: retry a bounded number of times.
  for (int attempt = 0;; ++attempt) {
    std::error_code ec;
    std::string what;
    m.reg = registry::create(m.bus, m.instance, m.params, perms, ec, what);
    if (!ec) break;
    if (ec != std::errc::file_exists || attempt == 50) throw_error(ec, what);
    if (attempt != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const unsigned removed = remove_stale_claimed(m.bus);
    m.stale_removed += removed;
    if (attempt == 0)
      spdlog::warn("bus '{}': removed {} object(s) left by a broker that is no longer running", m.bus, removed);
  }
  try {
    for (const auto& p : m.params) {
      std::error_code ec;
      std::string what;
      m.topics.push_back(broker_port::create(m.bus, m.instance, p, perms, ec, what));
      if (ec) throw_error(ec, what);
      const auto& t = m.topics.back();
      m.endpoint.offer(detail::control_object_name(detail::topic_object_name(m.bus, m.instance, p.name)),
                       t.control_region(), perms, ec, what);
      if (ec) throw_error(ec, "topic '" + p.name + "': " + what);
      spdlog::info("topic '{}': max_message_size {} B, depth {}{}", p.name, p.max_message_size, p.depth,
                   p.type_size ? ", type size " + std::to_string(p.type_size) + " B" : std::string());
    }
  } catch (...) {
    m.topics.erase(std::remove_if(m.topics.begin(), m.topics.end(), [](auto& t) { return !t.is_open(); }),
                   m.topics.end());
    m.remove_objects();
    throw;
  }
  {
    std::error_code ec;
    std::string what;
    m.endpoint.serve(ec, what);
    if (ec) {
      m.remove_objects();
      throw_error(ec, what);
    }
  }
  for (auto& t : m.topics) t.mark_ready();
  m.reg.mark_ready();
}

broker::broker(broker&&) noexcept = default;
broker& broker::operator=(broker&&) noexcept = default;

broker::~broker() {
  if (impl_) impl_->remove_objects();
}

const std::string& broker::bus() const noexcept { return impl_->bus; }

unsigned broker::stale_objects_removed() const noexcept { return impl_->stale_removed; }

void broker::maintain() {
  impl_->reg.beat();
  for (auto& t : impl_->topics) {
    if (const unsigned n = t.reap(); n != 0)
      spdlog::info("topic '{}': released {} subscriber slot(s) of exited processes", t.params().name, n);
  }
}

std::vector<topic_status> broker::status() const {
  std::vector<topic_status> out;
  for (const auto& t : impl_->topics) {
    const topic_stats st = t.snapshot();
    out.push_back({st.info.name, st.published, st.mutex_recoveries, st.live_subscribers});
  }
  return out;
}

}  // namespace shmbus
