#pragma once
/// \file
/// The caller's intent when naming a shared object, as a type (as in
/// Boost.Interprocess): create a new one, open an existing one, or either.

namespace shmbus {

struct create_only_t {
  explicit create_only_t() = default;
};
struct open_only_t {
  explicit open_only_t() = default;
};
struct open_or_create_t {
  explicit open_or_create_t() = default;
};

/// Fail with `errc::already_exists` (native EEXIST) if the object exists.
inline constexpr create_only_t create_only{};
/// Fail with `errc::not_found` (native ENOENT) if the object does not exist.
inline constexpr open_only_t open_only{};
/// Open the object, creating it first if needed.
inline constexpr open_or_create_t open_or_create{};

/// How a mapping may be accessed.
enum class access { read_only, read_write };

}  // namespace shmbus
