#pragma once
// Helpers shared by the POSIX wrappers: native errno codes with the call and
// object named, and EINTR retry.

#include <sys/types.h>

#include <cerrno>
#include <new>
#include <string>
#include <string_view>
#include <system_error>

namespace shmbus::platform::posix {

inline std::error_code errno_code(int e = errno) noexcept { return {e, std::system_category()}; }

inline std::string context(std::string_view call, std::string_view name) {
  return std::string(call) + "('" + std::string(name) + "')";
}

/// Keeps `name` (for error messages) in a noexcept constructor: running out
/// of memory is reported, as every other failure there is, not thrown.
inline std::error_code copy_name(std::string& to, std::string_view name) noexcept {
  try {
    to = std::string(name);
    return {};
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  }
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
