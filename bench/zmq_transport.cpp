// ZeroMQ PUB/SUB over ipc:// (built only when libzmq is found). High-water
// marks are unlimited, so nothing is dropped and throughput is lossless like
// the other transports'. Busy-poll is zmq_recv(ZMQ_DONTWAIT) in a loop.
#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "harness.hpp"
#include "shmbus/detail/cpu_relax.hpp"
#include "shmbus/platform/process.hpp"

namespace shmbus::bench {
namespace {

[[noreturn]] void fail_zmq(const std::string& what) { fail(what + ": " + zmq_strerror(zmq_errno())); }

void set_int(void* socket, int option, int value) {
  if (zmq_setsockopt(socket, option, &value, sizeof value) != 0) fail_zmq("zmq_setsockopt");
}

// A context and one socket, closed in order.
class zmq_end {
 public:
  explicit zmq_end(int type) : ctx_(zmq_ctx_new()) {
    if (ctx_ == nullptr) fail_zmq("zmq_ctx_new");
    socket_ = zmq_socket(ctx_, type);
    if (socket_ == nullptr) fail_zmq("zmq_socket");
    set_int(socket_, type == ZMQ_PUB ? ZMQ_SNDHWM : ZMQ_RCVHWM, 0);  // 0 = no limit: lossless
    // A dead peer cannot hang the end of a run for long; a subscriber has
    // only its subscription to send, and once its publisher is gone (the
    // ping-pong's answer channel, whose publisher exits first) that waits
    // for a reconnect that never comes: no linger at all.
    set_int(socket_, ZMQ_LINGER, type == ZMQ_PUB ? 1000 : 0);
  }
  zmq_end(const zmq_end&) = delete;
  zmq_end& operator=(const zmq_end&) = delete;
  ~zmq_end() {
    zmq_close(socket_);
    zmq_ctx_term(ctx_);
  }
  [[nodiscard]] void* socket() const noexcept { return socket_; }

 private:
  void* ctx_;
  void* socket_ = nullptr;
};

class zmq_sender final : public sender {
 public:
  explicit zmq_sender(std::shared_ptr<zmq_end> pub) : pub_(std::move(pub)) {}
  void send(std::span<const std::byte> msg) override {
    while (zmq_send(pub_->socket(), msg.data(), msg.size(), 0) < 0) {
      if (zmq_errno() != EINTR) fail_zmq("zmq_send");
    }
  }

 private:
  std::shared_ptr<zmq_end> pub_;
};

class zmq_receiver final : public receiver {
 public:
  zmq_receiver(const std::string& endpoint, const wait_strategy& how) : sub_(ZMQ_SUB), how_(how) {
    if (zmq_setsockopt(sub_.socket(), ZMQ_SUBSCRIBE, "", 0) != 0) fail_zmq("ZMQ_SUBSCRIBE");
    if (zmq_connect(sub_.socket(), endpoint.c_str()) != 0) fail_zmq("zmq_connect " + endpoint);
  }
  std::optional<delivery> receive(std::span<std::byte> dst, std::optional<nanoseconds> timeout) override {
    const std::int64_t start = platform::monotonic_ns();
    if (how_.mode != wait_mode::block) {
      const std::int64_t spin_end = how_.mode == wait_mode::busy_poll ? INT64_MAX : start + how_.spin.count();
      const std::int64_t until = timeout ? start + timeout->count() : INT64_MAX;
      for (unsigned polls = 0;; ++polls) {
        const int r = zmq_recv(sub_.socket(), dst.data(), dst.size(), ZMQ_DONTWAIT);
        if (r >= 0) return got(r, dst);
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) fail_zmq("zmq_recv");
        detail::cpu_relax();
        if (polls % 32 == 31) {
          const std::int64_t now = platform::monotonic_ns();
          if (now >= until) return std::nullopt;
          if (now >= spin_end) break;
        }
      }
    }
    int ms = -1;
    if (timeout)
      ms = static_cast<int>(std::max<std::int64_t>(0, start + timeout->count() - platform::monotonic_ns()) / 1'000'000);
    if (ms != timeout_ms_) set_int(sub_.socket(), ZMQ_RCVTIMEO, timeout_ms_ = ms);
    for (;;) {
      const int r = zmq_recv(sub_.socket(), dst.data(), dst.size(), 0);
      if (r >= 0) return got(r, dst);
      if (zmq_errno() == EAGAIN) return std::nullopt;
      if (zmq_errno() != EINTR) fail_zmq("zmq_recv");
    }
  }

 private:
  static delivery got(int r, std::span<std::byte> dst) {
    if (static_cast<std::size_t>(r) > dst.size()) fail("zmq message larger than the buffer");
    return delivery{static_cast<std::size_t>(r)};
  }
  zmq_end sub_;
  wait_strategy how_;
  int timeout_ms_ = -1;
};

class zmq_session final : public session {
 public:
  explicit zmq_session(const run_spec& spec)
      : path_((std::filesystem::temp_directory_path() / (spec.name + ".zmq")).string()),
        endpoint_("ipc://" + path_),
        pub_(std::make_shared<zmq_end>(ZMQ_PUB)) {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
    if (zmq_bind(pub_->socket(), endpoint_.c_str()) != 0) fail_zmq("zmq_bind " + endpoint_);
  }
  ~zmq_session() override {
    pub_.reset();
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  [[nodiscard]] std::string child_arg() const override { return endpoint_; }
  // Subscriptions reach the publisher asynchronously; the harness's probe
  // messages, sent until every subscriber has one, cover that.
  std::unique_ptr<sender> open_sender() override { return std::make_unique<zmq_sender>(pub_); }

 private:
  std::string path_;
  std::string endpoint_;
  std::shared_ptr<zmq_end> pub_;
};

class zmq_transport final : public lossless_transport<zmq_session> {
 public:
  zmq_transport() : lossless_transport("zeromq") {}
  std::unique_ptr<receiver> open_receiver(const run_spec& spec, unsigned, const std::string& endpoint) override {
    return std::make_unique<zmq_receiver>(endpoint, spec.wait);
  }
};

const transport_registrar reg(std::make_unique<zmq_transport>());

}  // namespace
}  // namespace shmbus::bench
