#include "shmbus/platform/named_mutex.hpp"

#include <linux/futex.h>
#include <pthread.h>

#include <utility>

#include "os_error.hpp"
#include "shmbus/error.hpp"

namespace shmbus::platform {
namespace {

static_assert(sizeof(pthread_mutex_t) <= named_mutex::storage_size,
              "pthread_mutex_t must fit the storage reserved in the segment");

pthread_mutex_t* native(void* storage) noexcept { return static_cast<pthread_mutex_t*>(storage); }

std::error_code init_robust(void* storage) noexcept {
  pthread_mutexattr_t attr;
  if (int e = pthread_mutexattr_init(&attr); e != 0) return posix::errno_code(e);
  int e = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (e == 0) e = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (e == 0) e = pthread_mutex_init(native(storage), &attr);
  pthread_mutexattr_destroy(&attr);
  return e == 0 ? std::error_code{} : posix::errno_code(e);
}

}  // namespace

named_mutex::named_mutex(create_only_t, std::string_view name, void* storage, const permissions& perms) {
  std::error_code ec;
  *this = named_mutex(create_only, name, storage, perms, ec);
  if (ec) throw_error(ec, posix::context("pthread_mutex_init", name));
}

// The state lives in the segment, whose permissions already apply.
named_mutex::named_mutex(create_only_t, std::string_view name, void* storage, const permissions& /*perms*/,
                         std::error_code& ec) noexcept {
  if ((ec = posix::copy_name(name_, name)) || (ec = init_robust(storage))) return;
  storage_ = storage;
}

named_mutex::named_mutex(open_only_t, std::string_view name, void* storage) : storage_(storage), name_(name) {}

named_mutex::named_mutex(open_only_t, std::string_view name, void* storage, std::error_code& ec) noexcept {
  if (!(ec = posix::copy_name(name_, name))) storage_ = storage;
}

named_mutex::named_mutex(named_mutex&& other) noexcept
    : storage_(std::exchange(other.storage_, nullptr)),
      native_handle_(std::exchange(other.native_handle_, nullptr)),
      name_(std::move(other.name_)) {}

named_mutex& named_mutex::operator=(named_mutex&& other) noexcept {
  storage_ = std::exchange(other.storage_, nullptr);
  native_handle_ = std::exchange(other.native_handle_, nullptr);
  name_ = std::move(other.name_);
  return *this;
}

// The mutex state belongs to the segment, not to this handle.
named_mutex::~named_mutex() = default;

named_mutex::lock_result named_mutex::lock() {
  std::error_code ec;
  const lock_result r = lock(ec);
  if (ec) throw_error(ec, posix::context("pthread_mutex_lock", name_));
  return r;
}

named_mutex::lock_result named_mutex::lock(std::error_code& ec) noexcept {
  ec.clear();
  for (;;) {
    const int e = pthread_mutex_lock(native(storage_));
    if (e == 0) return lock_result::acquired;
    if (e == EOWNERDEAD) return lock_result::owner_died;
    if (e == EINTR) continue;
    // ENOTRECOVERABLE: an earlier owner_died was unlocked without consistent().
    ec = posix::errno_code(e);
    return lock_result::acquired;
  }
}

std::optional<bool> named_mutex::owner_died() const noexcept {
#if defined(__GLIBC__) && defined(FUTEX_OWNER_DIED)
  // glibc keeps the robust futex word in __data.__lock; when an owner dies
  // the kernel (robust list) marks it FUTEX_OWNER_DIED and clears the TID.
  const int word = __atomic_load_n(&native(storage_)->__data.__lock, __ATOMIC_SEQ_CST);
  return (static_cast<unsigned>(word) & FUTEX_OWNER_DIED) != 0;
#else
  return std::nullopt;
#endif
}

void named_mutex::consistent() noexcept { pthread_mutex_consistent(native(storage_)); }

void named_mutex::unlock() noexcept { pthread_mutex_unlock(native(storage_)); }

}  // namespace shmbus::platform
