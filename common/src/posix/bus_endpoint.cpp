#include "shmbus/platform/bus_endpoint.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "os_error.hpp"
#include "shmbus/error.hpp"

// The wire protocol, one SOCK_SEQPACKET exchange per connection:
//   request: one byte 'r' (read-only) or 'w' (read-write), then the object name
//   reply:   int32 status (0 or an errno value), then a sentence; on success
//            the region's descriptor rides along as SCM_RIGHTS.
// The server answers one request per connection and never blocks on a peer:
// sockets are non-blocking, a peer that sends nothing is dropped after
// `idle_limit`, and at most `max_connections` are held at once.

namespace shmbus::platform {
namespace {

using posix::context;
using posix::errno_code;

constexpr std::size_t max_request = 512;
constexpr std::size_t max_connections = 256;
constexpr auto idle_limit = std::chrono::seconds(2);
constexpr int client_timeout_ms = 5000;

struct fd_owner {
  int fd = -1;
  fd_owner() = default;
  explicit fd_owner(int f) : fd(f) {}
  fd_owner(fd_owner&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  fd_owner& operator=(fd_owner&& o) noexcept {
    if (this != &o) {
      reset();
      fd = std::exchange(o.fd, -1);
    }
    return *this;
  }
  ~fd_owner() { reset(); }
  void reset() noexcept {
    if (fd >= 0) ::close(fd);  // never retried: the descriptor is gone either way
    fd = -1;
  }
};

// The abstract address: no file, gone with the last socket bound to it.
sockaddr_un address_of(std::string_view name, socklen_t& len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const std::size_t n = std::min(name.size(), sizeof a.sun_path - 1);
  std::memcpy(a.sun_path + 1, name.data(), n);
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  return a;
}

struct offered {
  fd_owner read_write;
  fd_owner read_only;
  unsigned mode = 0600;
  gid_t gid = static_cast<gid_t>(-1);
};

struct connection {
  fd_owner fd;
  std::chrono::steady_clock::time_point since;
};

// Whether the peer on `fd` may map `o` with `mode`, by the rules the file
// system would apply to a file of the broker's with o.mode and o.gid.
bool allowed(int fd, const offered& o, access mode) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  unsigned bits = o.mode & 7;
  if (cred.uid == 0 || cred.uid == ::geteuid()) {
    bits = (o.mode >> 6) & 7;
  } else {
    bool member = cred.gid == o.gid;
    if (!member) {
      gid_t groups[256];
      socklen_t glen = sizeof groups;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
        member = std::find(groups, groups + glen / sizeof(gid_t), o.gid) != groups + glen / sizeof(gid_t);
    }
    if (member) bits = (o.mode >> 3) & 7;
  }
  const unsigned need = mode == access::read_write ? 6 : 4;
  return (bits & need) == need;
}

void reply(int fd, int status, const std::string& text, int region_fd) {
  std::vector<char> body(sizeof(std::int32_t) + text.size());
  const std::int32_t s = status;
  std::memcpy(body.data(), &s, sizeof s);
  std::memcpy(body.data() + sizeof s, text.data(), text.size());
  iovec iov{body.data(), body.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (region_fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &region_fd, sizeof(int));
  }
  // A peer that cannot take a small reply at once gets none.
  (void)::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

}  // namespace

struct bus_endpoint::impl {
  std::string name;
  fd_owner listener;
  fd_owner stop_read, stop_write;
  std::mutex mutex;  // guards `offers` against offer() racing the server
  std::map<std::string, offered, std::less<>> offers;
  std::thread server;

  ~impl() {
    if (server.joinable()) {
      const char b = 0;
      (void)!::write(stop_write.fd, &b, 1);
      server.join();
    }
  }

  void answer(int fd) {
    char buf[max_request];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 2 || (buf[0] != 'r' && buf[0] != 'w')) {
      reply(fd, EINVAL, "malformed request", -1);
      return;
    }
    const access mode = buf[0] == 'w' ? access::read_write : access::read_only;
    const std::string_view object(buf + 1, static_cast<std::size_t>(n - 1));
    std::lock_guard lock(mutex);
    const auto it = offers.find(object);
    if (it == offers.end()) {
      reply(fd, ENOENT, "no region '" + std::string(object) + "' at endpoint '" + name + "'", -1);
    } else if (!allowed(fd, it->second, mode)) {
      reply(fd, EACCES,
            std::string("the broker does not allow this user ") + (mode == access::read_write ? "write" : "read") +
                " access to '" + std::string(object) + "'",
            -1);
    } else {
      reply(fd, 0, {}, mode == access::read_write ? it->second.read_write.fd : it->second.read_only.fd);
    }
  }

  void run() noexcept {
    std::vector<connection> conns;
    try {
      for (;;) {
        std::vector<pollfd> fds{{listener.fd, POLLIN, 0}, {stop_read.fd, POLLIN, 0}};
        for (const auto& c : conns) fds.push_back({c.fd.fd, POLLIN, 0});
        if (::poll(fds.data(), fds.size(), 250) < 0 && errno != EINTR) return;
        if (fds[1].revents != 0) return;
        const auto now = std::chrono::steady_clock::now();
        std::vector<connection> kept;
        for (std::size_t i = 0; i < conns.size(); ++i) {
          if (fds[i + 2].revents & POLLIN)
            answer(conns[i].fd.fd);
          else if (fds[i + 2].revents == 0 && now - conns[i].since < idle_limit)
            kept.push_back(std::move(conns[i]));
        }
        conns = std::move(kept);
        if (fds[0].revents & POLLIN) {
          fd_owner c(::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
          if (c.fd >= 0) {
            if (conns.size() >= max_connections) conns.erase(conns.begin());  // the oldest waits longest
            conns.push_back({std::move(c), now});
          }
        }
      }
    } catch (...) {
      // Out of memory in the server thread: stop answering; clients see a
      // clear error (no answer) rather than a broker that dies.
    }
  }
};

void bus_endpoint::impl_deleter::operator()(impl* p) const noexcept { delete p; }

bus_endpoint::bus_endpoint(create_only_t, std::string_view name, std::error_code& ec, std::string& what) noexcept {
  ec.clear();
  try {
    std::unique_ptr<impl, impl_deleter> m(new impl);
    m->name = std::string(name);
    m->listener = fd_owner(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (m->listener.fd < 0) {
      ec = errno_code();
      what = context("socket(AF_UNIX)", name);
      return;
    }
    socklen_t len = 0;
    const sockaddr_un a = address_of(name, len);
    if (::bind(m->listener.fd, reinterpret_cast<const sockaddr*>(&a), len) != 0) {
      const int e = errno;
      ec = e == EADDRINUSE ? make_error_code(errc::broker_running) : errno_code(e);
      what = context("bind(abstract socket)", name) +
             (e == EADDRINUSE ? ": a live broker already owns this bus" : std::string());
      return;
    }
    if (::listen(m->listener.fd, 64) != 0) {
      ec = errno_code();
      what = context("listen", name);
      return;
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
      ec = errno_code();
      what = context("pipe2", name);
      return;
    }
    m->stop_read = fd_owner(p[0]);
    m->stop_write = fd_owner(p[1]);
    impl_ = std::move(m);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

void bus_endpoint::offer(std::string_view object, const shared_memory_region& region, const permissions& perms,
                         std::error_code& ec, std::string& what) noexcept {
  ec.clear();
  try {
    offered o;
    o.mode = perms.mode;
    if (!perms.group.empty() && !posix::group_id(perms.group, o.gid, ec)) {
      what = "getgrnam_r('" + perms.group + "')";
      return;
    }
    if (perms.group.empty()) o.gid = ::getegid();  // a file's group would be ours
    o.read_write = fd_owner(::fcntl(region.fd_, F_DUPFD_CLOEXEC, 0));
    // A read-only descriptor of the same memfd: its owner (we) may reopen it.
    o.read_only = fd_owner(::open(("/proc/self/fd/" + std::to_string(region.fd_)).c_str(), O_RDONLY | O_CLOEXEC));
    if (o.read_write.fd < 0 || o.read_only.fd < 0) {
      ec = errno_code();
      what = "descriptors of sealed region '" + std::string(object) + "'";
      return;
    }
    std::lock_guard lock(impl_->mutex);
    impl_->offers[std::string(object)] = std::move(o);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

void bus_endpoint::serve(std::error_code& ec, std::string& what) noexcept {
  ec.clear();
  try {
    impl_->server = std::thread([m = impl_.get()] { m->run(); });
  } catch (const std::system_error& e) {
    ec = e.code();
    what = "start the endpoint thread of '" + impl_->name + "'";
  }
}

shared_memory_region bus_endpoint::obtain(std::string_view name, std::string_view object, access mode,
                                          std::error_code& ec, std::string& what) noexcept {
  ec.clear();
  try {
    const std::string where = "'" + std::string(object) + "' from the broker at '" + std::string(name) + "'";
    fd_owner s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    socklen_t len = 0;
    const sockaddr_un a = address_of(name, len);
    if (s.fd < 0 || ::connect(s.fd, reinterpret_cast<const sockaddr*>(&a), len) != 0) {
      // Nobody holds the name: no broker (ECONNREFUSED on an abstract socket).
      const int e = errno;
      ec = e == ECONNREFUSED ? std::make_error_code(std::errc::no_such_file_or_directory) : errno_code(e);
      what = "connect to obtain " + where + ": no broker answers";
      return {};
    }
    const std::string request = (mode == access::read_write ? "w" : "r") + std::string(object);
    if (::send(s.fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
      ec = errno_code();
      what = "send a request for " + where;
      return {};
    }
    pollfd p{s.fd, POLLIN, 0};
    int ready = 0;
    do ready = ::poll(&p, 1, client_timeout_ms);
    while (ready < 0 && errno == EINTR);
    if (ready <= 0) {
      ec = ready == 0 ? std::make_error_code(std::errc::timed_out) : errno_code();
      what = "wait for the broker's answer about " + where;
      return {};
    }
    char body[max_request];
    iovec iov{body, sizeof body};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(s.fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    fd_owner region_fd;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        region_fd = fd_owner(fd);
      }
    }
    std::int32_t status = EPROTO;
    if (n >= static_cast<ssize_t>(sizeof status)) std::memcpy(&status, body, sizeof status);
    if (status != 0 || region_fd.fd < 0) {
      ec = errno_code(status != 0 ? status : EPROTO);
      what = n > static_cast<ssize_t>(sizeof status)
                 ? std::string(body + sizeof status, static_cast<std::size_t>(n) - sizeof status)
                 : "obtain " + where + ": malformed answer";
      return {};
    }
    // Only a region nobody can resize is safe to keep mapped.
    const int seals = ::fcntl(region_fd.fd, F_GET_SEALS);
    struct stat st {};
    if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW) ||
        ::fstat(region_fd.fd, &st) != 0 || st.st_size <= 0) {
      ec = make_error_code(errc::corrupt_segment);
      what = where + " is not a sealed region";
      return {};
    }
    shared_memory_region r;
    const int prot = mode == access::read_write ? PROT_READ | PROT_WRITE : PROT_READ;
    void* data = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), prot, MAP_SHARED, region_fd.fd, 0);
    if (data == MAP_FAILED) {
      ec = errno_code();
      what = "mmap of " + where;
      return {};
    }
    r.data_ = data;
    r.size_ = static_cast<std::size_t>(st.st_size);
    r.mode_ = mode;
    r.name_ = std::string(object);
    return r;
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return {};
  }
}

}  // namespace shmbus::platform
