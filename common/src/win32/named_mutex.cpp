#include "shmbus/platform/named_mutex.hpp"

#include <utility>

#include "os_error.hpp"
#include "shmbus/error.hpp"

// A named kernel mutex. The storage in the segment is unused: the kernel
// keeps the state, and reports an owner that died holding it as
// WAIT_ABANDONED, which maps to lock_result::owner_died exactly like POSIX's
// EOWNERDEAD.

namespace shmbus::platform {

using win32::context;
using win32::last_error;

named_mutex::named_mutex(create_only_t, std::string_view name, void* storage, const permissions& perms) {
  std::error_code ec;
  *this = named_mutex(create_only, name, storage, perms, ec);
  if (ec) throw_error(ec, context("CreateMutexW", win32::native_name(name)));
}

named_mutex::named_mutex(create_only_t, std::string_view name, void* storage, const permissions& perms,
                         std::error_code& ec) noexcept
    : storage_(storage) {
  ec.clear();
  try {
    name_ = std::string(name);
    std::string what;
    win32::security sec(perms, ec, what, win32::group_use::publish);  // subscribers: no access
    if (ec) return;
    win32::handle_guard h(::CreateMutexW(sec.attributes(), FALSE, win32::wide(win32::native_name(name)).c_str()));
    if (h.h == nullptr) {
      ec = last_error();
      return;
    }
    if (::GetLastError() == ERROR_ALREADY_EXISTS) {
      ec = last_error(ERROR_ALREADY_EXISTS);
      return;
    }
    native_handle_ = h.release();
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

named_mutex::named_mutex(open_only_t, std::string_view name, void* storage) {
  std::error_code ec;
  *this = named_mutex(open_only, name, storage, ec);
  if (ec) throw_error(ec, context("OpenMutexW", win32::native_name(name)));
}

named_mutex::named_mutex(open_only_t, std::string_view name, void* storage, std::error_code& ec) noexcept
    : storage_(storage) {
  ec.clear();
  try {
    name_ = std::string(name);
    native_handle_ =
        ::OpenMutexW(SYNCHRONIZE | MUTEX_MODIFY_STATE, FALSE, win32::wide(win32::native_name(name)).c_str());
    if (native_handle_ == nullptr) ec = last_error();
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

named_mutex::named_mutex(named_mutex&& other) noexcept
    : storage_(std::exchange(other.storage_, nullptr)),
      native_handle_(std::exchange(other.native_handle_, nullptr)),
      name_(std::move(other.name_)) {}

named_mutex& named_mutex::operator=(named_mutex&& other) noexcept {
  if (this != &other) {
    if (native_handle_ != nullptr) ::CloseHandle(native_handle_);
    storage_ = std::exchange(other.storage_, nullptr);
    native_handle_ = std::exchange(other.native_handle_, nullptr);
    name_ = std::move(other.name_);
  }
  return *this;
}

named_mutex::~named_mutex() {
  if (native_handle_ != nullptr) ::CloseHandle(native_handle_);
}

named_mutex::lock_result named_mutex::lock() {
  std::error_code ec;
  const lock_result r = lock(ec);
  if (ec) throw_error(ec, context("WaitForSingleObject", win32::native_name(name_)));
  return r;
}

named_mutex::lock_result named_mutex::lock(std::error_code& ec) noexcept {
  ec.clear();
  switch (::WaitForSingleObject(native_handle_, INFINITE)) {
    case WAIT_OBJECT_0: return lock_result::acquired;
    case WAIT_ABANDONED: return lock_result::owner_died;
    default: ec = last_error(); return lock_result::acquired;
  }
}

// Windows reports an abandoned mutex only to the next thread that acquires it.
std::optional<bool> named_mutex::owner_died() const noexcept { return std::nullopt; }

// The kernel mutex is usable again as soon as WAIT_ABANDONED is returned.
void named_mutex::consistent() noexcept {}

void named_mutex::unlock() noexcept { ::ReleaseMutex(native_handle_); }

}  // namespace shmbus::platform
