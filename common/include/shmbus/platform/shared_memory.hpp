#pragma once
/// \file
/// A named shared memory region mapped into this process: POSIX `shm_open` +
/// `mmap`, Windows `CreateFileMapping` + `MapViewOfFile`. One object owns one
/// mapping; it is move-only and unmaps in its destructor. The name is removed
/// from the system only by `remove()` (POSIX) or when the last handle closes
/// (Windows).

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "shmbus/open_mode.hpp"
#include "shmbus/platform/permissions.hpp"

namespace shmbus::platform {

class shared_memory_region {
 public:
  shared_memory_region() noexcept = default;

  /// Creates a region of `size` bytes, zero-filled, mapped read-write.
  shared_memory_region(create_only_t, std::string_view name, std::size_t size, permissions perms = {});
  shared_memory_region(create_only_t, std::string_view name, std::size_t size, permissions perms,
                       std::error_code& ec) noexcept;

  /// Creates a region of `size` bytes, zero-filled, mapped read-write, whose
  /// size nobody can change afterwards. POSIX: a sealed memfd
  /// (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`), mode 0600, with no name
  /// in the file system: clients obtain it through the `bus_endpoint` that
  /// offers it. Windows: a named section (sections never change size), opened
  /// by name as usual. On failure returns an empty region, `ec` and `what` set.
  static shared_memory_region create_sealed(std::string_view name, std::size_t size, const permissions& perms,
                                            std::error_code& ec, std::string& what) noexcept;

  /// Opens an existing region and maps all of it; `size()` tells how large it is.
  shared_memory_region(open_only_t, std::string_view name, access mode);
  shared_memory_region(open_only_t, std::string_view name, access mode, std::error_code& ec) noexcept;

  shared_memory_region(shared_memory_region&& other) noexcept;
  shared_memory_region& operator=(shared_memory_region&& other) noexcept;
  shared_memory_region(const shared_memory_region&) = delete;
  shared_memory_region& operator=(const shared_memory_region&) = delete;
  ~shared_memory_region();

  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {static_cast<std::byte*>(data_), size_}; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] bool is_open() const noexcept { return data_ != nullptr; }
  [[nodiscard]] bool writable() const noexcept { return mode_ == access::read_write; }

  /// Removes the name from the system; existing mappings stay valid.
  /// Returns false (without error) when the name did not exist.
  static bool remove(std::string_view name, std::error_code& ec) noexcept;
  static bool remove(std::string_view name);

  /// True where a name stays until removed (POSIX); false where it vanishes
  /// with its last handle and cannot be removed or listed (Windows).
  static bool names_outlive_handles() noexcept;

  /// Names of existing regions that start with `prefix`. Empty where the OS
  /// cannot enumerate them (Windows, where names die with their last handle).
  static std::vector<std::string> list(std::string_view prefix);

 private:
  friend class bus_endpoint;
  // Each returns the failing call and object for the error message.
  std::string create_impl(std::string_view name, std::size_t size, permissions perms, std::error_code& ec);
  std::string open_impl(std::string_view name, access mode, std::error_code& ec);
  void reset() noexcept;

  void* data_ = nullptr;
  std::size_t size_ = 0;
  access mode_ = access::read_only;
  std::string name_;
  // Windows keeps the mapping handle open for the life of the view.
  void* native_handle_ = nullptr;
  // POSIX: a sealed region keeps its memfd, for the endpoint to hand out.
  int fd_ = -1;
};

}  // namespace shmbus::platform
