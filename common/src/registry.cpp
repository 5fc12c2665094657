#include "shmbus/detail/registry.hpp"

#include <cstring>
#include <new>

#include "shmbus/error.hpp"
#include "shmbus/names.hpp"

namespace shmbus::detail {

registry registry::create(std::string_view bus, std::uint64_t instance, std::span<const topic_params> topics,
                          platform::permissions perms, std::error_code& ec, std::string& what) {
  if (topics.size() > max_topics_limit) {
    ec = make_error_code(errc::invalid_argument);
    what = "a bus holds at most " + std::to_string(max_topics_limit) + " topics";
    return {};
  }
  const std::size_t size = sizeof(registry_header) + topics.size() * sizeof(topic_entry);
  const std::string object = registry_object_name(bus);
  registry r;
  // Only the broker writes the registry: nobody else gets a write bit, so
  // nobody else can open it writable (and, on POSIX, truncate it).
  perms.read_only_for_group = true;
  perms.group_publishes = false;
  r.region_ = platform::shared_memory_region(create_only, object, size, perms, ec);
  if (ec) {
    what = "create registry '" + object + "'";
    return {};
  }
  auto* h = new (r.region_.data()) registry_header{};
  h->preamble = preamble_of<registry_header>(0, size);
  h->entry_size = sizeof(topic_entry);
  h->topic_count = static_cast<std::uint32_t>(topics.size());
  set_fixed_string(h->bus, bus);
  const platform::process_identity me = platform::current_process();
  h->broker_pid = me.pid;
  h->broker_start_time = me.start_time;
  h->started_ns = platform::monotonic_ns();
  h->instance = instance;
  h->heartbeat_ns.store(h->started_ns, std::memory_order_relaxed);
  topic_entry* entries = topic_entries_of(r.region_.data());
  for (std::size_t i = 0; i < topics.size(); ++i) new (&entries[i]) topic_entry(encode(topics[i]));
  // The magic last: a reader racing the broker's start sees "not yet valid"
  // rather than half-filled fields.
  r.keep(*h);
  r.topics_.assign(topics.begin(), topics.end());
  std::atomic_ref<std::uint64_t>(h->preamble.magic).store(registry_magic, std::memory_order_release);
  return r;
}

registry registry::open(std::string_view bus, std::error_code& ec, std::string& what) {
  const std::string object = registry_object_name(bus);
  registry r;
  r.region_ = platform::shared_memory_region(open_only, object, access::read_only, ec);
  if (ec) {
    what = "open registry '" + object + "'";
    return {};
  }
  registry_header validated;
  if ((ec = validate_registry(r.region_.bytes(), validated, &what))) {
    what = "registry of bus '" + std::string(bus) + "': " + what;
    return {};
  }
  r.keep(validated);
  if (registry_open_hook != nullptr) registry_open_hook();
  // Sized by the validated count, which validation proved fits the mapping.
  std::vector<topic_entry> copy(validated.topic_count);
  std::memcpy(static_cast<void*>(copy.data()), topic_entries_of(r.region_.data()), copy.size() * sizeof(topic_entry));
  for (const topic_entry& e : copy) r.topics_.push_back(decode(e));
  return r;
}

const topic_params* registry::find(std::string_view topic) const noexcept {
  for (const topic_params& p : topics_)
    if (p.name == topic) return &p;
  return nullptr;
}

segment_state registry::state() const noexcept {
  return static_cast<segment_state>(live().state.load(std::memory_order_acquire));
}

platform::process_identity registry::broker() const noexcept { return broker_; }

void registry::keep(const registry_header& validated) noexcept {
  instance_ = validated.instance;
  broker_ = {validated.broker_pid, validated.broker_start_time};
}

bool registry::broker_alive() const noexcept { return state() == segment_state::ready && platform::is_alive(broker()); }

ownership registry::owner(std::string_view bus, std::uint64_t instance) noexcept {
  try {
    std::error_code ec;
    std::string what;
    const registry r = open(bus, ec, what);
    if (ec) return ownership::none;
    if (r.instance() == instance) return r.broker_alive() ? ownership::ours : ownership::none;
    return r.state() == segment_state::ready ? ownership::other : ownership::none;
  } catch (...) {
    return ownership::none;
  }
}

void registry::mark_ready() noexcept {
  live().state.store(static_cast<std::uint32_t>(segment_state::ready), std::memory_order_release);
}

void registry::mark_closed() noexcept {
  live().state.store(static_cast<std::uint32_t>(segment_state::closed), std::memory_order_release);
}

void registry::beat() noexcept { live().heartbeat_ns.store(platform::monotonic_ns(), std::memory_order_relaxed); }

}  // namespace shmbus::detail
