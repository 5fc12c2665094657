#pragma once
// Helpers shared by the POSIX wrappers: native errno codes with the call and
// object named, and EINTR retry.

#include <sys/types.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

namespace shmbus::platform::posix {

inline std::error_code errno_code(int e = errno) noexcept { return {e, std::system_category()}; }

inline std::string context(std::string_view call, std::string_view name) {
  return std::string(call) + "('" + std::string(name) + "')";
}

/// A group name (or a numeric id) to its gid; `errc::not_found` if unknown.
bool group_id(const std::string& group, gid_t& gid, std::error_code& ec);

/// Retries a call that failed with EINTR. Never use it for close().
template <class F>
auto retry_eintr(F&& f) {
  for (;;) {
    auto r = f();
    if (!(r == -1 && errno == EINTR)) return r;
  }
}

}  // namespace shmbus::platform::posix
