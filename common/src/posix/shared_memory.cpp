#include "shmbus/platform/shared_memory.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "os_error.hpp"
#include "shmbus/error.hpp"

namespace shmbus::platform {
namespace {

using posix::context;
using posix::errno_code;
using posix::retry_eintr;

std::string os_name(std::string_view name) { return "/" + std::string(name); }

// Owns a descriptor only for the duration of a constructor.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);  // never retried: the descriptor is gone either way
  }
};

void* map(int fd, std::size_t size, access mode, std::error_code& ec, std::string_view name,
          std::string* what) {
  const int prot = mode == access::read_write ? PROT_READ | PROT_WRITE : PROT_READ;
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    ec = errno_code();
    *what = context("mmap", name);
    return nullptr;
  }
  return p;
}

}  // namespace

shared_memory_region::shared_memory_region(create_only_t, std::string_view name, std::size_t size,
                                           permissions perms) {
  std::error_code ec;
  const std::string what = create_impl(name, size, perms, ec);
  if (ec) throw_error(ec, what);
}

shared_memory_region::shared_memory_region(create_only_t, std::string_view name, std::size_t size,
                                           permissions perms, std::error_code& ec) noexcept {
  try {
    create_impl(name, size, perms, ec);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

std::string shared_memory_region::create_impl(std::string_view name, std::size_t size,
                                              permissions perms, std::error_code& ec) {
  ec.clear();
  const std::string path = os_name(name);
  fd_guard fd{retry_eintr([&] {
    return ::shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, static_cast<mode_t>(perms.mode));
  })};
  if (fd.fd < 0) {
    ec = errno_code();
    return context("shm_open", path);
  }
  // shm_open applies the umask; the caller's mode is what they asked for.
  if (::fchmod(fd.fd, static_cast<mode_t>(perms.mode)) != 0) {
    ec = errno_code();
    ::shm_unlink(path.c_str());
    return context("fchmod", path);
  }
  if (retry_eintr([&] { return ::ftruncate(fd.fd, static_cast<off_t>(size)); }) != 0) {
    ec = errno_code();
    ::shm_unlink(path.c_str());
    return context("ftruncate", path);
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

shared_memory_region::shared_memory_region(open_only_t, std::string_view name, access mode) {
  std::error_code ec;
  const std::string what = open_impl(name, mode, ec);
  if (ec) throw_error(ec, what);
}

shared_memory_region::shared_memory_region(open_only_t, std::string_view name, access mode,
                                           std::error_code& ec) noexcept {
  try {
    open_impl(name, mode, ec);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

std::string shared_memory_region::open_impl(std::string_view name, access mode,
                                            std::error_code& ec) {
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

shared_memory_region::shared_memory_region(shared_memory_region&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mode_(other.mode_),
      name_(std::move(other.name_)),
      native_handle_(std::exchange(other.native_handle_, nullptr)) {}

shared_memory_region& shared_memory_region::operator=(shared_memory_region&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mode_ = other.mode_;
    name_ = std::move(other.name_);
    native_handle_ = std::exchange(other.native_handle_, nullptr);
  }
  return *this;
}

shared_memory_region::~shared_memory_region() { reset(); }

void shared_memory_region::reset() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
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
