#include "shmbus/platform/shared_memory.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "os_error.hpp"
#include "shmbus/error.hpp"

namespace shmbus::platform {
namespace {

using posix::context;
using posix::errno_code;
using posix::group_id;
using posix::retry_eintr;

std::string os_name(std::string_view name) { return "/" + std::string(name); }

// Owns a descriptor only for the duration of a constructor.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);  // never retried: the descriptor is gone either way
  }
};

void* map(int fd, std::size_t size, access mode, std::error_code& ec, std::string_view name, std::string* what) {
  const int prot = mode == access::read_write ? PROT_READ | PROT_WRITE : PROT_READ;
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    ec = errno_code();
    *what = context("mmap", name);
    return nullptr;
  }
  return p;
}

// Reserves the pages now: a tmpfs (or memory cgroup) that is too small then
// fails here, with ENOSPC, instead of with SIGBUS in some client the first
// time it touches a page that cannot be backed. Returns 0 or the error.
int reserve(int fd, std::size_t size) noexcept {
  int e = 0;
  do {
    e = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  } while (e == EINTR);
  return e == EOPNOTSUPP || e == EINVAL ? 0 : e;
}

}  // namespace

// A group name (or a numeric id) to its gid.
bool posix::group_id(const std::string& group, gid_t& gid, std::error_code& ec) {
  for (std::size_t size = 16384; size <= (1u << 22); size *= 4) {
    std::vector<char> buf(size);
    struct group g {};
    struct group* found = nullptr;
    const int e = ::getgrnam_r(group.c_str(), &g, buf.data(), buf.size(), &found);
    if (e == ERANGE) continue;
    if (found != nullptr) {
      gid = found->gr_gid;
      return true;
    }
    if (e != 0 && e != ENOENT) {
      ec = errno_code(e);
      return false;
    }
    break;
  }
  if (!group.empty() && group.size() < 10 && group.find_first_not_of("0123456789") == std::string::npos) {
    gid = static_cast<gid_t>(std::stoul(group));
    return true;
  }
  ec = make_error_code(errc::not_found);
  return false;
}

std::error_code check_permissions(const permissions& perms, std::string& why) {
  if (!perms.sddl.empty()) {
    why = "an SDDL security descriptor is a Windows setting; on POSIX use mode and group";
    return make_error_code(errc::invalid_argument);
  }
  if (perms.mode > 0777) {
    why = "mode " + std::to_string(perms.mode) + " is not a set of permission bits (0 to 0777)";
    return make_error_code(errc::invalid_argument);
  }
  gid_t gid = 0;
  std::error_code ec;
  if (!perms.group.empty() && !group_id(perms.group, gid, ec)) {
    why = ec == errc::not_found ? "unknown group '" + perms.group + "'"
                                : "cannot look up group '" + perms.group + "': " + ec.message();
    return ec;
  }
  return {};
}

std::string shared_memory_region::create_impl(std::string_view name, std::size_t size, permissions perms,
                                              std::error_code& ec) {
  ec.clear();
  const std::string path = os_name(name);
  if (!perms.sddl.empty()) {
    ec = make_error_code(errc::invalid_argument);
    return "an SDDL security descriptor is a Windows setting; on POSIX use mode and group (for '" + path + "')";
  }
  gid_t gid = static_cast<gid_t>(-1);
  if (!perms.group.empty() && !group_id(perms.group, gid, ec)) return "getgrnam_r('" + perms.group + "')";
  const auto mode =
      static_cast<mode_t>(perms.read_only_for_group && !perms.group_publishes ? perms.mode & ~0022u : perms.mode);
  fd_guard fd{retry_eintr([&] { return ::shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, mode); })};
  if (fd.fd < 0) {
    ec = errno_code();
    return context("shm_open", path);
  }
  if (gid != static_cast<gid_t>(-1) && ::fchown(fd.fd, static_cast<uid_t>(-1), gid) != 0) {
    ec = errno_code();
    ::shm_unlink(path.c_str());
    return context("fchown", path) + " to group '" + perms.group + "'";
  }
  // shm_open applies the umask; the caller's mode is what they asked for.
  if (::fchmod(fd.fd, mode) != 0) {
    ec = errno_code();
    ::shm_unlink(path.c_str());
    return context("fchmod", path);
  }
  if (retry_eintr([&] { return ::ftruncate(fd.fd, static_cast<off_t>(size)); }) != 0) {
    ec = errno_code();
    ::shm_unlink(path.c_str());
    return context("ftruncate", path);
  }
  if (const int e = reserve(fd.fd, size); e != 0) {
    ec = errno_code(e);
    ::shm_unlink(path.c_str());
    return context("posix_fallocate", path) + " of " + std::to_string(size) + " bytes" +
           (e == ENOSPC ? " (is /dev/shm too small? see docs/troubleshooting.md)" : "");
  }
  std::string what;
  data_ = map(fd.fd, size, access::read_write, ec, path, &what);
  if (data_ == nullptr) {
    ::shm_unlink(path.c_str());
    return what;
  }
  size_ = size;
  mode_ = access::read_write;
  name_ = std::string(name);
  return {};
}

std::string shared_memory_region::open_impl(std::string_view name, access mode, std::error_code& ec) {
  ec.clear();
  const std::string path = os_name(name);
  const int flags = mode == access::read_write ? O_RDWR : O_RDONLY;
  fd_guard fd{retry_eintr([&] { return ::shm_open(path.c_str(), flags, 0); })};
  if (fd.fd < 0) {
    ec = errno_code();
    return context("shm_open", path);
  }
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) {
    ec = errno_code();
    return context("fstat", path);
  }
  if (st.st_size <= 0) {
    // An empty object cannot hold a header; mmap of 0 bytes would fail with a
    // less helpful EINVAL.
    ec = make_error_code(errc::corrupt_segment);
    return "'" + path + "' is empty";
  }
  std::string what;
  data_ = map(fd.fd, static_cast<std::size_t>(st.st_size), mode, ec, path, &what);
  if (data_ == nullptr) return what;
  size_ = static_cast<std::size_t>(st.st_size);
  mode_ = mode;
  name_ = std::string(name);
  return {};
}

shared_memory_region shared_memory_region::create_sealed(std::string_view name, std::size_t size,
                                                         const permissions& perms, std::error_code& ec,
                                                         std::string& what) noexcept {
  ec.clear();
  shared_memory_region r;
  try {
    const std::string label = "memfd '" + std::string(name) + "'";
    if (!perms.sddl.empty()) {
      ec = make_error_code(errc::invalid_argument);
      what = "an SDDL security descriptor is a Windows setting; on POSIX use mode and group";
      return {};
    }
    // The name only labels the memfd in /proc/PID/fd: nothing can open it.
    fd_guard fd{::memfd_create(std::string(name).substr(0, 240).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING)};
    auto failed = [&](const char* call) {
      ec = errno_code();
      what = std::string(call) + " of " + label;
      return shared_memory_region{};
    };
    if (fd.fd < 0) return failed("memfd_create");
    // Nobody but its owner may reopen it through /proc/PID/fd: a peer
    // handed a read-only descriptor cannot turn it into a writable one.
    if (::fchmod(fd.fd, 0600) != 0) return failed("fchmod");
    if (retry_eintr([&] { return ::ftruncate(fd.fd, static_cast<off_t>(size)); }) != 0) return failed("ftruncate");
    if (const int e = reserve(fd.fd, size); e != 0) {
      ec = errno_code(e);
      what = "posix_fallocate of " + std::to_string(size) + " bytes for " + label;
      return {};
    }
    if (::fcntl(fd.fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) return failed("F_ADD_SEALS");
    r.data_ = map(fd.fd, size, access::read_write, ec, label, &what);
    if (r.data_ == nullptr) return {};
    r.size_ = size;
    r.mode_ = access::read_write;
    r.name_ = std::string(name);
    r.fd_ = std::exchange(fd.fd, -1);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return {};
  }
  return r;
}

void shared_memory_region::reset() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  size_ = 0;
  fd_ = -1;
}

bool shared_memory_region::remove(std::string_view name, std::error_code& ec) noexcept {
  ec.clear();
  try {
    if (::shm_unlink(os_name(name).c_str()) == 0) return true;
    if (errno != ENOENT) ec = errno_code();
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  return false;
}

bool shared_memory_region::remove(std::string_view name) {
  std::error_code ec;
  const bool removed = remove(name, ec);
  if (ec) throw_error(ec, context("shm_unlink", "/" + std::string(name)));
  return removed;
}

bool shared_memory_region::names_outlive_handles() noexcept { return true; }

std::vector<std::string> shared_memory_region::list(std::string_view prefix) {
  std::vector<std::string> names;
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return names;
  while (const dirent* entry = ::readdir(dir)) {
    std::string_view n(entry->d_name);
    if (n.substr(0, prefix.size()) == prefix) names.emplace_back(n);
  }
  ::closedir(dir);
  return names;
}

}  // namespace shmbus::platform
