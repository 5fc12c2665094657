#include "os_error.hpp"

#include "shmbus/platform/shared_memory.hpp"

namespace shmbus::platform::win32 {
namespace {

class win32_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "win32"; }
  std::string message(int value) const override {
    char* text = nullptr;
    const DWORD n =
        ::FormatMessageA(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                         nullptr, static_cast<DWORD>(value), 0, reinterpret_cast<char*>(&text), 0, nullptr);
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

}  // namespace

const std::error_category& category() noexcept {
  static const win32_category c;
  return c;
}

std::string native_name(std::string_view name) {
  return (current_object_namespace() == object_namespace::global ? "Global\\" : "Local\\") + std::string(name);
}

std::wstring wide(std::string_view s) {
  // Object names are validated ASCII; anything else is an account name or
  // SDDL given by the user, so convert properly.
  if (s.empty()) return {};
  const int n = ::MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
  std::wstring w(static_cast<std::size_t>(n), L'\0');
  ::MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), w.data(), n);
  return w;
}

}  // namespace shmbus::platform::win32

// Security attributes ------------------------------------------------------

#include <sddl.h>

#include <vector>

namespace shmbus::platform::win32 {
namespace {

std::string sid_string(PSID sid) {
  LPSTR text = nullptr;
  if (!::ConvertSidToStringSidA(sid, &text)) return {};
  std::string s(text);
  ::LocalFree(text);
  return s;
}

std::string current_user_sid(std::error_code& ec) {
  HANDLE token = nullptr;
  if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token)) {
    ec = last_error();
    return {};
  }
  handle_guard guard(token);
  DWORD len = 0;
  ::GetTokenInformation(token, TokenUser, nullptr, 0, &len);
  std::vector<unsigned char> buf(len);
  if (len == 0 || !::GetTokenInformation(token, TokenUser, buf.data(), len, &len)) {
    ec = last_error();
    return {};
  }
  return sid_string(reinterpret_cast<TOKEN_USER*>(buf.data())->User.Sid);
}

std::string account_sid(const std::string& account, std::error_code& ec) {
  DWORD sid_len = 0, domain_len = 0;
  SID_NAME_USE use{};
  const std::wstring name = wide(account);
  ::LookupAccountNameW(nullptr, name.c_str(), nullptr, &sid_len, nullptr, &domain_len, &use);
  if (sid_len == 0) {
    ec = last_error();
    return {};
  }
  std::vector<unsigned char> sid(sid_len);
  std::wstring domain(domain_len, L'\0');
  if (!::LookupAccountNameW(nullptr, name.c_str(), sid.data(), &sid_len, domain.data(), &domain_len, &use)) {
    ec = last_error();
    return {};
  }
  return sid_string(sid.data());
}

}  // namespace

security::security(const permissions& perms, std::error_code& ec, std::string& what, group_use use) {
  ec.clear();
  std::string sddl = perms.sddl;
  if (sddl.empty() && !perms.group.empty()) {
    // The creator, SYSTEM and administrators keep full access; the group
    // gets it too. Nobody else.
    const std::string me = current_user_sid(ec);
    if (ec) {
      what = "GetTokenInformation(TokenUser)";
      return;
    }
    const std::string group = account_sid(perms.group, ec);
    if (ec) {
      what = "LookupAccountNameW('" + perms.group + "')";
      return;
    }
    sddl = "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;" + me + ")";
    // A group that may only subscribe gets no handle that could block a
    // publisher: nothing on the mutex, only SYNCHRONIZE on wake events.
    if (use == group_use::shared && perms.read_only_for_group && !perms.group_publishes)
      sddl += "(A;;GR;;;" + group + ")";  // messages, registry: read, never map writable
    else if (perms.group_publishes || use == group_use::shared)
      sddl += "(A;;GA;;;" + group + ")";
    else if (use == group_use::wait)
      sddl += "(A;;0x00100000;;;" + group + ")";
  }
  if (sddl.empty()) return;
  const std::wstring w = wide(sddl);
  if (!::ConvertStringSecurityDescriptorToSecurityDescriptorW(w.c_str(), SDDL_REVISION_1, &descriptor_, nullptr)) {
    ec = last_error();
    what = "ConvertStringSecurityDescriptorToSecurityDescriptorW('" + sddl + "')";
    descriptor_ = nullptr;
    return;
  }
  sa_.nLength = sizeof sa_;
  sa_.lpSecurityDescriptor = descriptor_;
  sa_.bInheritHandle = FALSE;
}

}  // namespace shmbus::platform::win32

namespace shmbus::platform {
std::error_code check_permissions(const permissions& perms, std::string& why) {
  std::error_code ec;
  std::string what;
  win32::security sec(perms, ec, what);
  if (ec) {
    why = (perms.sddl.empty() ? "cannot grant group '" + perms.group + "' access: "
                              : "invalid security descriptor '" + perms.sddl + "': ") +
          ec.message() + " (" + what + ")";
  }
  return ec;
}
}  // namespace shmbus::platform

namespace shmbus::platform::win32 {

security::~security() {
  if (descriptor_ != nullptr) ::LocalFree(descriptor_);
}

}  // namespace shmbus::platform::win32
