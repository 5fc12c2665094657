#pragma once
/// \file
/// The broker's claim on a bus, and the door through which clients obtain
/// the segments that must not be opened by name.
///
/// The claim is held for the broker's whole life and released by the OS when
/// the process ends, however it ends, so exactly one live process owns a bus
/// and a crashed owner never blocks its successor.
///
/// POSIX: an abstract Unix socket (`\0` + name). Binding the name is the
/// claim: the kernel lets one socket hold it and frees it with the process.
/// A thread answers requests for *sealed* regions
/// (`shared_memory_region::create_sealed`): it checks the peer's credentials
/// (`SO_PEERCRED`, `SO_PEERGROUPS`) against the region's permission bits as
/// the file system would, and sends a read-only or read-write descriptor
/// (`SCM_RIGHTS`). A region that every subscriber must write is handed out
/// this way because a sealed memfd cannot be shrunk or grown by anyone,
/// whereas a file in /dev/shm that a process may map writable is one it may
/// truncate, making every other process that maps it fault.
///
/// Windows: a named mutex that the broker owns for its life is the claim (an
/// abandoned mutex is free again). A section's size is fixed when it is
/// created, so sealed regions are ordinary named sections that clients open
/// by name; `offer` and `serve` have nothing to do.

#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "shmbus/open_mode.hpp"
#include "shmbus/platform/permissions.hpp"
#include "shmbus/platform/shared_memory.hpp"

namespace shmbus::platform {

class bus_endpoint {
 public:
  bus_endpoint() noexcept = default;
  /// Claims `name` for this process. Fails with `errc::broker_running` when
  /// a live process holds it; `what` names the call.
  bus_endpoint(create_only_t, std::string_view name, std::error_code& ec, std::string& what) noexcept;
  bus_endpoint(bus_endpoint&&) noexcept = default;
  bus_endpoint& operator=(bus_endpoint&&) noexcept = default;
  bus_endpoint(const bus_endpoint&) = delete;
  bus_endpoint& operator=(const bus_endpoint&) = delete;
  /// Stops answering and releases the claim.
  ~bus_endpoint() = default;

  [[nodiscard]] bool is_open() const noexcept { return impl_ != nullptr; }

  /// Makes a sealed `region` obtainable as `object` by the peers `perms`
  /// allows (read for read-only, read and write for read-write). Call before
  /// `serve`.
  void offer(std::string_view object, const shared_memory_region& region, const permissions& perms, std::error_code& ec,
             std::string& what) noexcept;
  /// Starts answering requests (POSIX: on a thread of its own).
  void serve(std::error_code& ec, std::string& what) noexcept;

  /// Client side: obtains the region offered as `object` by the endpoint
  /// `name`, mapped with `mode`. Bounded: a broker that does not answer
  /// within a few seconds is an error. `ec` is
  /// `std::errc::no_such_file_or_directory` when nobody holds `name`,
  /// `std::errc::permission_denied` when the broker refuses the peer.
  static shared_memory_region obtain(std::string_view name, std::string_view object, access mode, std::error_code& ec,
                                     std::string& what) noexcept;

 private:
  // The OS's state, defined with its deleter in common/src/<os>/: only the
  // deleter needs `impl` complete, so the members above are defined here once.
  struct impl;
  struct impl_deleter {
    void operator()(impl* p) const noexcept;
  };
  std::unique_ptr<impl, impl_deleter> impl_;
};

}  // namespace shmbus::platform
