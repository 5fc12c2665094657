#pragma once
/// \file
/// The broker as a library: `shmbus-broker` is a thin main() around it, and
/// tests drive it in-process.
///
/// A broker owns one bus: it claims the bus's registry, creates each topic's
/// mapping, mutex and event, keeps a heartbeat, reaps dead subscribers, and
/// removes everything when destroyed.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/topic_params.hpp"

namespace shmbus {

/// One topic to create.
/// A topic the broker is asked to create.
using topic_config = topic_params;

struct broker_options {
  std::string bus;  ///< empty: $SHMBUS_BUS, else "default"
  std::vector<topic_config> topics;
  unsigned mode = 0600;  ///< permission bits of created objects (POSIX)
  /// Share the bus with this group. POSIX: the objects' group (add group
  /// bits to `mode`). Windows: the account is granted access.
  std::string group;
  /// Whether the group may publish too. By default it may only subscribe:
  /// topic messages get no group/other write bit (POSIX).
  bool group_publishes = false;
  /// Windows: security descriptor of created objects, in SDDL (wins over
  /// `group`). Rejected on POSIX.
  std::string sddl;
  /// Windows: "local" (Local\, default) or "global" (Global\, for services
  /// in session 0). Empty: $SHMBUS_NAMESPACE, else local. Process-wide.
  std::string object_namespace;
};

/// Parses "NAME[:MAX_SIZE[:DEPTH]]"; sizes take K/M suffixes (KiB/MiB).
/// Throws `shmbus::error` (errc::config_error) naming the spec.
topic_config parse_topic_spec(std::string_view spec);

/// Reads an INI-style file (see docs/configuration.md) into `opts`, adding
/// its topics. Throws `shmbus::error` (errc::config_error) "FILE:LINE: why".
void load_config_file(const std::filesystem::path& file, broker_options& opts);
/// Same, from text; `source` names it in error messages.
void load_config_text(std::string_view text, std::string_view source, broker_options& opts);

/// Snapshot of one topic, for logs and tests.
struct topic_status {
  std::string name;
  std::uint64_t published = 0;
  std::uint64_t mutex_recoveries = 0;
  unsigned live_subscribers = 0;
};

class broker {
 public:
  /// Claims the bus and creates every topic. A dead broker's leftovers are
  /// removed first. Throws errc::broker_running when a live broker owns the
  /// bus, errc::invalid_name / invalid_argument for bad options.
  explicit broker(broker_options opts);
  broker(broker&&) noexcept;
  broker& operator=(broker&&) noexcept;
  /// Closes every topic (waking blocked subscribers) and removes the objects.
  ~broker();

  [[nodiscard]] const std::string& bus() const noexcept;
  /// Objects of a dead broker that start-up removed.
  [[nodiscard]] unsigned stale_objects_removed() const noexcept;

  /// Heartbeat and dead-subscriber reaping; call every ~100 ms.
  void maintain();
  [[nodiscard]] std::vector<topic_status> status() const;

  /// Removes a bus's objects if its broker is dead. Returns how many were
  /// removed; throws errc::broker_running if the broker is alive.
  static unsigned remove_stale(std::string_view bus);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace shmbus
