#pragma once
/// \file
/// An inter-process mutex that survives the death of its owner.
///
/// POSIX: a robust, process-shared pthread mutex living in caller-provided
/// storage inside a shared segment (`EOWNERDEAD` reports a dead owner).
/// Windows: a named kernel mutex (`WAIT_ABANDONED`); the storage is unused.
/// The object is move-only; its destructor releases only this process's
/// handle, never the mutex state in shared memory.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "shmbus/open_mode.hpp"
#include "shmbus/platform/permissions.hpp"

namespace shmbus::platform {

class named_mutex {
 public:
  /// Bytes of shared storage the mutex needs (64: one cache line).
  static constexpr std::size_t storage_size = 64;

  enum class lock_result {
    acquired,    ///< normal acquisition
    owner_died,  ///< the previous owner died holding it: repair, then `consistent()`
  };

  named_mutex() noexcept = default;
  /// Initialises the mutex in `storage` (which must stay mapped while in use).
  named_mutex(create_only_t, std::string_view name, void* storage, const permissions& perms = {});
  named_mutex(create_only_t, std::string_view name, void* storage, const permissions& perms,
              std::error_code& ec) noexcept;
  /// Attaches to a mutex that the creator initialised in `storage`.
  named_mutex(open_only_t, std::string_view name, void* storage);
  named_mutex(open_only_t, std::string_view name, void* storage, std::error_code& ec) noexcept;

  named_mutex(named_mutex&& other) noexcept;
  named_mutex& operator=(named_mutex&& other) noexcept;
  named_mutex(const named_mutex&) = delete;
  named_mutex& operator=(const named_mutex&) = delete;
  ~named_mutex();

  /// Blocks until acquired. Retries EINTR. Throws on any other failure
  /// (including a mutex left unrecoverable by an earlier failed recovery).
  lock_result lock();
  lock_result lock(std::error_code& ec) noexcept;

  /// Whether an owner died holding the mutex and nobody has acquired it
  /// since, observed without acquiring it; nullopt where the platform cannot
  /// tell (Windows, non-glibc). For fault-injection tests and diagnostics.
  [[nodiscard]] std::optional<bool> owner_died() const noexcept;

  /// After `owner_died`: the protected state has been repaired.
  void consistent() noexcept;
  void unlock() noexcept;

  /// Whether this object is attached to a mutex (false when default-constructed).
  [[nodiscard]] bool is_open() const noexcept { return storage_ != nullptr; }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  void* storage_ = nullptr;
  void* native_handle_ = nullptr;
  std::string name_;
};

}  // namespace shmbus::platform
