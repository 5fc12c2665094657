#include "shmbus/detail/owner_watch.hpp"

#include <map>
#include <utility>

#include "shmbus/detail/registry.hpp"
#include "shmbus/platform/shared_memory.hpp"

namespace shmbus::detail {

std::shared_ptr<const owner_watch> owner_watch::of(std::string_view bus, std::uint64_t instance) {
  if (platform::shared_memory_region::names_outlive_handles()) return nullptr;
  static std::mutex mutex;
  static std::map<std::pair<std::string, std::uint64_t>, std::weak_ptr<const owner_watch>> watches;
  std::lock_guard lock(mutex);
  auto& slot = watches[{std::string(bus), instance}];
  auto watch = slot.lock();
  if (!watch) {
    watch = std::make_shared<const owner_watch>(std::string(bus), instance);
    slot = watch;
  }
  return watch;
}

owner_watch::owner_watch(std::string bus, std::uint64_t instance)
    : bus_(std::move(bus)), instance_(instance), thread_([this] { run(); }) {}

owner_watch::~owner_watch() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void owner_watch::run() noexcept {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval, [this] { return stop_; })) {
    // No registry, or a broken one: no other broker has claimed the bus,
    // so clients of the dead one keep moving data among themselves.
    if (registry::owner(bus_, instance_) == ownership::other) {
      superseded_.store(true, std::memory_order_relaxed);
      return;
    }
  }
}

}  // namespace shmbus::detail
