#include "shmbus/detail/broker_port.hpp"

#include "shmbus/detail/observer_port.hpp"

namespace shmbus::detail {

broker_port broker_port::create(std::string_view bus, std::uint64_t instance, const topic_params& params,
                                platform::permissions perms, std::error_code& ec, std::string& what) {
  return broker_port(topic_segment::create(bus, instance, params, perms, ec, what));
}

topic_stats broker_port::snapshot() const { return detail::snapshot(seg_); }

}  // namespace shmbus::detail
