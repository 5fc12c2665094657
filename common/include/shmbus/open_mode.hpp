#pragma once
/// \file
/// The caller's intent when naming a shared object, as a type (as in
/// Boost.Interprocess): create a new one or open an existing one.

namespace shmbus {

struct create_only_t {
  explicit create_only_t() = default;
};
struct open_only_t {
  explicit open_only_t() = default;
};

/// Fail if the object exists, with the OS's own code (EEXIST,
/// ERROR_ALREADY_EXISTS), which compares equal to `std::errc::file_exists`.
inline constexpr create_only_t create_only{};
/// Fail if the object does not exist, with the OS's own code (ENOENT,
/// ERROR_FILE_NOT_FOUND), which compares equal to
/// `std::errc::no_such_file_or_directory`.
inline constexpr open_only_t open_only{};

/// How a mapping may be accessed.
enum class access { read_only, read_write };

}  // namespace shmbus
