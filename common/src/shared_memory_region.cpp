// The platform-independent half of shared_memory_region: the throwing and
// error_code constructors, moves and destruction. The system calls are in
// posix/ and win32/ (create_impl, open_impl, reset, remove, list).
#include "shmbus/platform/shared_memory.hpp"

#include <new>
#include <utility>

#include "shmbus/error.hpp"

namespace shmbus::platform {

shared_memory_region::shared_memory_region(create_only_t, std::string_view name, std::size_t size, permissions perms) {
  std::error_code ec;
  const std::string what = create_impl(name, size, perms, ec);
  if (ec) throw_error(ec, what);
}

shared_memory_region::shared_memory_region(create_only_t, std::string_view name, std::size_t size, permissions perms,
                                           std::error_code& ec) noexcept {
  try {
    create_impl(name, size, perms, ec);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

shared_memory_region::shared_memory_region(open_only_t, std::string_view name, access mode) {
  std::error_code ec;
  const std::string what = open_impl(name, mode, ec);
  if (ec) throw_error(ec, what);
}

shared_memory_region::shared_memory_region(open_only_t, std::string_view name, access mode,
                                           std::error_code& ec) noexcept {
  try {
    open_impl(name, mode, ec);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

shared_memory_region::shared_memory_region(shared_memory_region&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mode_(other.mode_),
      name_(std::move(other.name_)),
      native_handle_(std::exchange(other.native_handle_, nullptr)),
      fd_(std::exchange(other.fd_, -1)) {}

shared_memory_region& shared_memory_region::operator=(shared_memory_region&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mode_ = other.mode_;
    name_ = std::move(other.name_);
    native_handle_ = std::exchange(other.native_handle_, nullptr);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

shared_memory_region::~shared_memory_region() { reset(); }

}  // namespace shmbus::platform
