#include "os_error.hpp"

#include <atomic>

#include "shmbus/platform/process.hpp"

namespace shmbus::platform::win32 {
namespace {

class win32_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "win32"; }
  std::string message(int value) const override {
    char* text = nullptr;
    const DWORD n = ::FormatMessageA(
        FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
        static_cast<DWORD>(value), 0, reinterpret_cast<char*>(&text), 0, nullptr);
    std::string out = n != 0 && text != nullptr ? std::string(text, n) : "Windows error " + std::to_string(value);
    if (text != nullptr) ::LocalFree(text);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == '.')) out.pop_back();
    return out;
  }
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (value) {
      case ERROR_FILE_NOT_FOUND:
      case ERROR_PATH_NOT_FOUND: return std::errc::no_such_file_or_directory;
      case ERROR_ALREADY_EXISTS:
      case ERROR_FILE_EXISTS: return std::errc::file_exists;
      case ERROR_ACCESS_DENIED:
      case ERROR_PRIVILEGE_NOT_HELD: return std::errc::permission_denied;
      case ERROR_NOT_ENOUGH_MEMORY:
      case ERROR_OUTOFMEMORY:
      case ERROR_COMMITMENT_LIMIT: return std::errc::not_enough_memory;
      case ERROR_INVALID_PARAMETER:
      case ERROR_INVALID_NAME: return std::errc::invalid_argument;
      default: return {value, *this};
    }
  }
};

std::atomic<bool> g_global{false};

}  // namespace

const std::error_category& category() noexcept {
  static const win32_category c;
  return c;
}

std::wstring object_name(std::string_view name) {
  std::wstring w = g_global.load() ? L"Global\\" : L"Local\\";
  for (char c : name) w.push_back(static_cast<wchar_t>(static_cast<unsigned char>(c)));
  return w;
}

bool use_global_namespace() noexcept { return g_global.load(); }

}  // namespace shmbus::platform::win32

namespace shmbus::platform {
void set_global_namespace(bool global) noexcept { win32::g_global.store(global); }
}  // namespace shmbus::platform
