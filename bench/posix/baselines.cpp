// POSIX baselines: a Unix domain stream socket and a pipe (a FIFO, so that a
// separately started process can open it), one per subscriber, each message
// framed as an 8-byte length and the payload.
//
// Both are used the way a careful user would: the writer sends frame header
// and payload in one writev; the reader reads as much as is there into a
// buffer (so small messages cost one read each), and reads the rest of a
// large payload straight into the destination (one copy, as shmbus makes).
// Busy-poll is a non-blocking read in a loop; spin-then-block switches to
// poll() when the spin runs out.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <vector>

#include "../harness.hpp"
#include "shmbus/detail/cpu_relax.hpp"
#include "shmbus/platform/process.hpp"

namespace shmbus::bench {
namespace {

constexpr std::int64_t no_deadline = INT64_MAX;

[[noreturn]] void fail_errno(const std::string& what) { fail(what + ": " + std::strerror(errno)); }

std::string temp_path(const std::string& name) { return (std::filesystem::temp_directory_path() / name).string(); }

// ---- writing -----------------------------------------------------------

// Writes one frame to each descriptor, resuming partial writes (a large
// frame does not fit a socket or pipe buffer).
class fd_sender final : public sender {
 public:
  explicit fd_sender(std::vector<int> fds, bool socket) : fds_(std::move(fds)), socket_(socket) {}
  ~fd_sender() override {
    for (int fd : fds_) ::close(fd);
  }
  void send(std::span<const std::byte> msg) override {
    const std::uint64_t len = msg.size();
    for (int fd : fds_) {
      iovec iov[2] = {{const_cast<std::uint64_t*>(&len), sizeof len}, {const_cast<std::byte*>(msg.data()), msg.size()}};
      std::size_t left = sizeof len + msg.size();
      iovec* v = iov;
      int n = 2;
      while (left > 0) {
        ssize_t w;
        if (socket_) {
          msghdr mh{};
          mh.msg_iov = v;
          mh.msg_iovlen = static_cast<std::size_t>(n);
          w = ::sendmsg(fd, &mh, MSG_NOSIGNAL);
        } else {
          w = ::writev(fd, v, n);
        }
        if (w < 0) {
          if (errno == EINTR) continue;
          fail_errno("write to subscriber");
        }
        left -= static_cast<std::size_t>(w);
        auto done = static_cast<std::size_t>(w);
        while (n > 0 && done >= v->iov_len) {
          done -= v->iov_len;
          ++v;
          --n;
        }
        if (n > 0) {
          v->iov_base = static_cast<char*>(v->iov_base) + done;
          v->iov_len -= done;
        }
      }
    }
  }

 private:
  std::vector<int> fds_;
  bool socket_;
};

// ---- reading -----------------------------------------------------------

class fd_receiver final : public receiver {
 public:
  // A pipe is made O_NONBLOCK for busy-poll and spin modes; sockets use
  // MSG_DONTWAIT per call instead.
  fd_receiver(int fd, bool socket, std::size_t max_size, const wait_strategy& how)
      : fd_(fd), socket_(socket), how_(how), buf_(std::max<std::size_t>(256 * 1024, 2 * (max_size + 8))) {
    if (!socket_) {
      const int flags = ::fcntl(fd_, F_GETFL);
      const int want = how_.mode == wait_mode::block ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
      if (::fcntl(fd_, F_SETFL, want) != 0) fail_errno("fcntl(O_NONBLOCK)");
    }
  }
  ~fd_receiver() override { ::close(fd_); }

  std::optional<delivery> receive(std::span<std::byte> dst, std::optional<nanoseconds> timeout) override {
    const std::int64_t until = timeout ? platform::monotonic_ns() + timeout->count() : no_deadline;
    while (end_ - begin_ < sizeof(std::uint64_t)) {
      if (!fill(until)) return std::nullopt;
    }
    std::uint64_t len;
    std::memcpy(&len, buf_.data() + begin_, sizeof len);
    if (len > dst.size()) fail("frame larger than the buffer");
    begin_ += sizeof len;
    // What is buffered, then the rest straight into dst.
    std::size_t have = std::min<std::size_t>(end_ - begin_, len);
    std::memcpy(dst.data(), buf_.data() + begin_, have);
    begin_ += have;
    while (have < len) {
      const ssize_t r = read_some(dst.data() + have, len - have, no_deadline);
      if (r < 0) fail("timed out inside a frame");
      have += static_cast<std::size_t>(r);
    }
    if (begin_ == end_) begin_ = end_ = 0;
    return delivery{static_cast<std::size_t>(len)};
  }

 private:
  bool fill(std::int64_t until) {
    if (begin_ > 0) {  // keep the partial frame at the front
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    const ssize_t r = read_some(buf_.data() + end_, buf_.size() - end_, until);
    if (r < 0) return false;
    end_ += static_cast<std::size_t>(r);
    return true;
  }

  // Reads at least one byte the strategy's way; -1 when `until` passed.
  // The rest of a frame already begun is read without a deadline: the
  // timeout is for waiting for a new message.
  ssize_t read_some(std::byte* p, std::size_t n, std::int64_t until) {
    const bool timed = until != no_deadline;
    bool spinning = how_.mode != wait_mode::block;
    const std::int64_t spin_end =
        how_.mode == wait_mode::spin_then_block ? platform::monotonic_ns() + how_.spin.count() : 0;
    for (unsigned polls = 0;; ++polls) {
      if (!spinning && (timed || (!socket_ && how_.mode != wait_mode::block))) {
        // Sleep in poll(): for a timeout, or on a non-blocking pipe whose
        // spin ran out. Otherwise the blocking read below sleeps by itself.
        pollfd pfd{fd_, POLLIN, 0};
        int ms = -1;
        if (timed) {
          const std::int64_t left = until - platform::monotonic_ns();
          if (left <= 0) return -1;
          ms = static_cast<int>(left / 1'000'000 + 1);
        }
        const int pr = ::poll(&pfd, 1, ms);
        if (pr < 0 && errno != EINTR) fail_errno("poll");
        if (pr == 0) return -1;
      }
      const ssize_t r = socket_ ? ::recv(fd_, p, n, spinning ? MSG_DONTWAIT : 0) : ::read(fd_, p, n);
      if (r > 0) return r;
      if (r == 0) fail("publisher closed the connection");
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) fail_errno("read");
      if (spinning) {
        detail::cpu_relax();
        if (polls % 32 == 31) {
          const std::int64_t now = platform::monotonic_ns();
          if (now >= until) return -1;
          if (how_.mode == wait_mode::spin_then_block && now >= spin_end) spinning = false;
        }
      }
    }
  }

  int fd_;
  bool socket_;
  wait_strategy how_;
  std::vector<std::byte> buf_;
  std::size_t begin_ = 0, end_ = 0;
};

// Opens one descriptor per subscriber with `open(i)`; fails naming `what`.
template <class Open>
std::vector<int> open_each(unsigned subscribers, const std::string& what, Open open) {
  std::vector<int> fds;
  for (unsigned i = 0; i < subscribers; ++i) {
    const int fd = open(i);
    if (fd < 0) fail_errno(what);
    fds.push_back(fd);
  }
  return fds;
}

// ---- Unix domain socket -------------------------------------------------

class unix_session final : public session {
 public:
  explicit unix_session(const run_spec& spec) : path_(temp_path(spec.name + ".sock")), subscribers_(spec.subscribers) {
    ::unlink(path_.c_str());
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0) fail_errno("socket");
    const sockaddr_un addr = address(path_);
    if (::bind(listener_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) fail_errno("bind " + path_);
    if (::listen(listener_, static_cast<int>(max_subscribers)) != 0) fail_errno("listen");
  }
  ~unix_session() override {
    ::close(listener_);
    ::unlink(path_.c_str());
  }
  static sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) fail("socket path too long: " + path);
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
  }
  [[nodiscard]] std::string child_arg() const override { return path_; }
  // Every subscriber has connected by now: accept() returns at once.
  std::unique_ptr<sender> open_sender() override {
    return std::make_unique<fd_sender>(
        open_each(subscribers_, "accept",
                  [&](unsigned) { return ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC); }),
        true);
  }

 private:
  std::string path_;
  unsigned subscribers_;
  int listener_ = -1;
};

class unix_transport final : public lossless_transport<unix_session> {
 public:
  unix_transport() : lossless_transport("unix-socket") {}
  std::unique_ptr<receiver> open_receiver(const run_spec& spec, unsigned, const std::string& path) override {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail_errno("socket");
    const sockaddr_un addr = unix_session::address(path);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) fail_errno("connect " + path);
    return std::make_unique<fd_receiver>(fd, true, spec.size, spec.wait);
  }
};

// ---- pipe (FIFO) -------------------------------------------------------

class pipe_session final : public session {
 public:
  explicit pipe_session(const run_spec& spec) : base_(temp_path(spec.name + ".fifo")), subscribers_(spec.subscribers) {
    for (unsigned i = 0; i < subscribers_; ++i) {
      const std::string p = path(base_, i);
      ::unlink(p.c_str());
      if (::mkfifo(p.c_str(), 0600) != 0) fail_errno("mkfifo " + p);
    }
  }
  ~pipe_session() override {
    for (unsigned i = 0; i < subscribers_; ++i) ::unlink(path(base_, i).c_str());
  }
  static std::string path(const std::string& base, unsigned i) { return base + "." + std::to_string(i); }
  [[nodiscard]] std::string child_arg() const override { return base_; }
  // Every subscriber holds its FIFO open by now, so opening for writing
  // does not block.
  std::unique_ptr<sender> open_sender() override {
    return std::make_unique<fd_sender>(
        open_each(subscribers_, "open FIFO for writing",
                  [&](unsigned i) { return ::open(path(base_, i).c_str(), O_WRONLY | O_CLOEXEC); }),
        false);
  }

 private:
  std::string base_;
  unsigned subscribers_;
};

class pipe_transport final : public lossless_transport<pipe_session> {
 public:
  pipe_transport() : lossless_transport("pipe") {}
  std::unique_ptr<receiver> open_receiver(const run_spec& spec, unsigned index, const std::string& base) override {
    // Read-write, so the open does not wait for the writer and a read never
    // sees end-of-file before the publisher opens its end (Linux FIFOs
    // allow this). The subscriber dies with its parent, so it cannot hang.
    const int fd = ::open(pipe_session::path(base, index).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) fail_errno("open FIFO for reading");
    return std::make_unique<fd_receiver>(fd, false, spec.size, spec.wait);
  }
};

const transport_registrar unix_reg(std::make_unique<unix_transport>());
const transport_registrar pipe_reg(std::make_unique<pipe_transport>());

}  // namespace
}  // namespace shmbus::bench
