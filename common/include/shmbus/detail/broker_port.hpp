#pragma once
/// \file
/// The broker's share of the topic protocol: creating a topic's objects,
/// declaring it ready, freeing dead subscribers' entries, and closing it
/// (waking every waiter). docs/design.md ("Broker lifecycle") argues why
/// it is correct.

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "shmbus/detail/topic_segment.hpp"
#include "shmbus/types.hpp"

namespace shmbus::detail {

class broker_port {
 public:
  broker_port() = default;
  /// Creates topic `params` of broker `instance` on `bus` (not ready yet).
  static broker_port create(std::string_view bus, std::uint64_t instance, const topic_params& params,
                            platform::permissions perms, std::error_code& ec, std::string& what);
  /// Checks `params` the way create() will (ranges, name, layout overflow),
  /// so a broker can refuse a bad configuration before it creates anything.
  /// Returns invalid_argument/invalid_name with `why` filled.
  static std::error_code check(const topic_params& params, std::string& why) {
    topic_geometry g{};
    return compute_geometry(params, g, &why);
  }
  /// Marks a dead broker's topic closed: see topic_segment::close_orphan.
  static void close_orphan(std::string_view bus, std::uint64_t instance, std::string_view topic) noexcept {
    topic_segment::close_orphan(bus, instance, topic);
  }

  [[nodiscard]] bool is_open() const noexcept { return seg_.is_open(); }
  [[nodiscard]] const topic_params& params() const noexcept { return seg_.params(); }
  /// The control segment, to offer at the broker's endpoint.
  [[nodiscard]] const platform::shared_memory_region& control_region() const noexcept { return seg_.control_region(); }
  /// Lets clients in: the last step of creation.
  void mark_ready() noexcept { seg_.mark_ready(); }
  /// Marks the topic closed and wakes every waiter so they notice.
  void close() noexcept { seg_.close(); }
  /// Frees the entries of subscribers whose process is gone; how many.
  unsigned reap() noexcept { return seg_.table().reap(); }
  [[nodiscard]] topic_stats snapshot() const;

 private:
  explicit broker_port(topic_segment seg) noexcept : seg_(std::move(seg)) {}
  topic_segment seg_;
};

}  // namespace shmbus::detail
