#pragma once
// Helpers shared by the Win32 wrappers: GetLastError() codes in a category
// that maps them to portable conditions (so `ec == std::errc::file_exists`
// works as on POSIX) while keeping the native value and Windows' own text.

#include <windows.h>

#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "shmbus/platform/shared_memory.hpp"

namespace shmbus::platform::win32 {

const std::error_category& category() noexcept;

inline std::error_code last_error(DWORD e = ::GetLastError()) noexcept { return {static_cast<int>(e), category()}; }

inline std::string context(std::string_view call, std::string_view name) {
  return std::string(call) + "('" + std::string(name) + "')";
}

/// The kernel object name: "Local\\" or "Global\\" + name.
std::string native_name(std::string_view name);

/// UTF-8 to UTF-16.
std::wstring wide(std::string_view s);

/// Owns a HANDLE for the duration of a function.
struct handle_guard {
  HANDLE h = nullptr;
  handle_guard() = default;
  explicit handle_guard(HANDLE handle) : h(handle) {}
  handle_guard(const handle_guard&) = delete;
  handle_guard& operator=(const handle_guard&) = delete;
  ~handle_guard() {
    if (h != nullptr && h != INVALID_HANDLE_VALUE) ::CloseHandle(h);
  }
  HANDLE release() noexcept { return std::exchange(h, nullptr); }
};

/// What a subscribe-only `--group` (no `group_publishes`) is granted on an
/// object; with `group_publishes`, or an explicit SDDL, `use` changes nothing.
enum class group_use {
  shared,   ///< segments, registry: full access, or read access if `read_only_for_group`
  wait,     ///< wake events: SYNCHRONIZE only (wait; never set or reset)
  publish,  ///< the topic mutex: nothing, so a member cannot even open it
};

/// Security attributes built from `permissions` (default DACL when neither
/// group nor SDDL is given). Keeps the descriptor alive while in use.
class security {
 public:
  /// On failure sets `ec` and `what`.
  security(const permissions& perms, std::error_code& ec, std::string& what, group_use use = group_use::shared);
  security(const security&) = delete;
  security& operator=(const security&) = delete;
  ~security();
  /// Null for the default DACL.
  [[nodiscard]] SECURITY_ATTRIBUTES* attributes() noexcept { return descriptor_ ? &sa_ : nullptr; }

 private:
  PSECURITY_DESCRIPTOR descriptor_ = nullptr;
  SECURITY_ATTRIBUTES sa_{};
};

}  // namespace shmbus::platform::win32
