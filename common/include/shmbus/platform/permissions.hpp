#pragma once
/// \file
/// Who may open the named objects a process creates, and which namespace
/// their names live in.

#include <string>
#include <system_error>

namespace shmbus::platform {

/// Who may open the objects this process creates.
struct permissions {
  /// POSIX: mode bits (owner-only by default). Ignored on Windows.
  unsigned mode = 0600;
  /// A group to share with. POSIX: the objects' group (give `mode` group
  /// bits too). Windows: an account name granted read/write access besides
  /// the creator. Empty: no change.
  std::string group;
  /// Whether the group may also publish. Subscribers need only read a
  /// topic's messages, so by default the group gets no write access to them
  /// (POSIX: no group/other write bit on the data segment).
  bool group_publishes = false;
  /// The object is written only by its creator, and by the group only if
  /// `group_publishes`: a topic's messages, the registry. POSIX: no group or
  /// other write bit; Windows: the group is granted read access only.
  bool read_only_for_group = false;
  /// Windows: a whole security descriptor in SDDL (wins over `group`).
  /// Empty: the process's default DACL. Rejected on POSIX.
  std::string sddl;
};

/// Checks that `perms` can be applied here (known group, valid SDDL, no
/// Windows-only setting on POSIX) before anything is created. On failure
/// returns the error and sets `why` to one clear sentence.
std::error_code check_permissions(const permissions& perms, std::string& why);

/// Where object names live. POSIX has one namespace per host and ignores
/// this. Windows: `local` is the session's `Local\` (the default);
/// `global` is `Global\`, visible across sessions (services in session 0),
/// which needs SeCreateGlobalPrivilege to create. Process-wide; set it before
/// opening anything. Default from $SHMBUS_NAMESPACE (`local`/`global`).
enum class object_namespace { local, global };
void set_object_namespace(object_namespace ns) noexcept;
[[nodiscard]] object_namespace current_object_namespace() noexcept;

}  // namespace shmbus::platform
