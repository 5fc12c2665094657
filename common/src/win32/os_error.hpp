#pragma once
// Helpers shared by the Win32 wrappers: GetLastError() codes in a category
// that maps them to portable conditions (so `ec == std::errc::file_exists`
// works as on POSIX) while keeping the native value and Windows' own text.

#include <windows.h>

#include <string>
#include <string_view>
#include <system_error>

namespace shmbus::platform::win32 {

const std::error_category& category() noexcept;

inline std::error_code last_error(DWORD e = ::GetLastError()) noexcept {
  return {static_cast<int>(e), category()};
}

inline std::string context(std::string_view call, std::string_view name) {
  return std::string(call) + "('" + std::string(name) + "')";
}

/// "Local\\" + name, as UTF-16 (names are validated ASCII).
std::wstring object_name(std::string_view name);

/// Whether object names go to the Global\ namespace (see set_global_namespace).
bool use_global_namespace() noexcept;

}  // namespace shmbus::platform::win32
