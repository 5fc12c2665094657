#include "shmbus/detail/observer_port.hpp"

namespace shmbus::detail {

topic_stats snapshot(const topic_segment& seg) {
  topic_stats st;
  st.info = seg.params();
  const topic_header& h = seg.header();
  st.published = seg.newest();
  st.bytes_published = h.bytes_published.load(std::memory_order_relaxed);
  st.mutex_recoveries = h.mutex_recoveries.load(std::memory_order_relaxed);
  st.torn_discarded = h.torn_discarded.load(std::memory_order_relaxed);
  st.last_publish_ns = h.last_publish_ns.load(std::memory_order_relaxed);
  if (h.exclusive_token.load(std::memory_order_relaxed) != 0)
    st.exclusive_pid = h.exclusive_pid.load(std::memory_order_relaxed);
  if (seg.keys().keyed()) st.keys = seg.keys().count();
  st.subscribers = seg.table().live();
  st.live_subscribers = static_cast<unsigned>(st.subscribers.size());
  return st;
}

observer_port observer_port::open(std::string_view bus, std::uint64_t instance, const topic_params& declared,
                                  std::error_code& ec, std::string& what) {
  return observer_port(topic_segment::open(bus, instance, declared.name, topic_role::observe, ec, what));
}

}  // namespace shmbus::detail
