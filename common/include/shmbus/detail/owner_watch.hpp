#pragma once
/// \file
/// Tells the clients of one broker instance that another instance has
/// claimed their bus, without a system call on their publish and read paths.
///
/// Where names outlive their handles (POSIX) a new broker finds its
/// predecessor's registry and closes its topics itself, which every client
/// sees as one load of the topic's state; no watch is needed. Where names die
/// with their last handle (Windows) the new broker cannot find them, so one
/// thread per process and broker instance looks at the bus's registry a few
/// times a second and raises a flag that clients read with a relaxed load.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace shmbus::detail {

class owner_watch {
 public:
  /// How often the thread looks: the bound on how late a client notices.
  static constexpr std::chrono::milliseconds interval{250};

  /// The process-wide watch of `instance` on `bus`, started on first use;
  /// null where the platform needs none.
  static std::shared_ptr<const owner_watch> of(std::string_view bus, std::uint64_t instance);

  owner_watch(std::string bus, std::uint64_t instance);
  owner_watch(const owner_watch&) = delete;
  owner_watch& operator=(const owner_watch&) = delete;
  ~owner_watch();

  /// Another broker instance owns the bus now.
  [[nodiscard]] bool superseded() const noexcept { return superseded_.load(std::memory_order_relaxed); }

 private:
  void run() noexcept;

  std::string bus_;
  std::uint64_t instance_;
  std::atomic<bool> superseded_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace shmbus::detail
