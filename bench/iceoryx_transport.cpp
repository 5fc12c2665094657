// iceoryx 2.0 publish/subscribe (built only when iceoryx_posh is found):
// an iox::popo::UntypedPublisher in the publishing process, an
// UntypedSubscriber per subscriber process, all brokered by a RouDi daemon
// the bench starts for its first iceoryx run and stops when it exits (under
// a guard process, see "RouDi" below).
//
// Through the harness, iceoryx pays the same copies as every transport: the
// publisher loans a chunk, copies the message in and publishes it; the
// subscriber takes the chunk, copies it out and releases it (its zero-copy
// API saves those two copies only to a program that builds the message in
// the loaned chunk and reads it in place).
//
// Latency, idle and fan-out use a subscriber queue of a few chunks that
// discards the oldest; lossless throughput uses iceoryx's own back-pressure
// (a queue of the run's ring depth, at most 256, with BLOCK_PRODUCER and
// WAIT_FOR_CONSUMER), so the harness's credit is not needed. Blocking waits
// are a WaitSet on the subscriber's HAS_DATA state; busy-poll is take() in
// a loop. Conflated throughput (a latest-value topic) is not run: iceoryx
// has no such topic (a queue of one that discards the oldest comes closest).
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.hpp"
// GCC 12 warns (-Warray-bounds, -Wstringop-overread) in iceoryx's
// cxx::string on its truncating branch, one that a string shorter than the
// capacity never takes.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#pragma GCC diagnostic pop
#include "shmbus/detail/cpu_relax.hpp"
#include "shmbus/platform/process.hpp"
#include "support/child_process.hpp"

#ifndef SHMBUS_IOX_ROUDI
#define SHMBUS_IOX_ROUDI "iox-roudi"
#endif

namespace shmbus::bench {
namespace {

constexpr std::int64_t second = 1'000'000'000;

// RouDi's memory pools: chunk sizes (payload + iceoryx's chunk header, with
// room to spare) and counts. The counts cover the deepest queue the bench
// asks for (256 chunks) per subscriber plus the publisher's loans, and keep
// every pool to about 64 MiB at most. Payloads above the largest pool cannot
// be sent (supports() says so).
struct mempool {
  std::size_t payload, count;
};
constexpr mempool mempools[] = {
    {128, 1024}, {1024, 1024}, {4096, 1024}, {16384, 1024}, {65536, 512}, {262144, 192}, {1048576, 64},
};
constexpr std::size_t chunk_overhead = 256;
constexpr std::size_t max_payload = 1048576;

std::string roudi_config() {
  std::ostringstream o;
  o << "# written by shmbus-bench for its own RouDi\n[general]\nversion = 1\n\n[[segment]]\n";
  for (const auto& m : mempools)
    o << "\n[[segment.mempool]]\nsize = " << m.payload + chunk_overhead << "\ncount = " << m.count << "\n";
  return o.str();
}

// ---- RouDi ---------------------------------------------------------------
//
// The bench's RouDi runs under a guard process (this binary again, as child
// role "roudi-guard"), which starts iox-roudi, stops it with SIGTERM when
// its stdin closes (the bench stopping it, or the bench dying: the kernel
// closes the pipe either way), and then removes whatever RouDi left behind
// (iceoryx 2.0's RouDi aborts on SIGTERM when a registered process died
// unannounced, leaving its shared memory and sockets). So no bench run,
// failed or killed, leaves a RouDi or its files.

// iceoryx 2.0's fixed names: RouDi's two shared memory segments (the second
// is named after the user) and sockets; each runtime's socket is named
// after the runtime (this bench names them shmbus-bench-PID).
std::vector<std::string> roudi_files() {
  std::vector<std::string> f{"/dev/shm/iceoryx_mgmt", "/tmp/roudi", "/tmp/roudi.lock", "/tmp/iox-unique-roudi.lock"};
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr) f.push_back(std::string("/dev/shm/") + pw->pw_name);
  return f;
}

// Gone, or a zombie (a subscriber killed with the bench, not yet reaped).
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  stat >> pid_field >> comm >> state;
  return state == "Z" || state == "X";
}

// The runtime sockets of bench processes that are gone.
void remove_dead_runtime_sockets() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/tmp", ec)) {
    const std::string n = e.path().filename().string();
    const std::string prefix = "shmbus-bench-";
    if (n.rfind(prefix, 0) != 0) continue;
    const std::string rest = n.substr(prefix.size());
    const std::string digits = rest.substr(0, rest.find('.'));
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    if (rest != digits && rest != digits + ".lock") continue;
    if (process_gone(static_cast<pid_t>(std::stol(digits)))) std::filesystem::remove(e.path(), ec);
  }
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The end of RouDi's log on one line, without its colour codes.
std::string tail_of(const std::string& log) {
  std::string t;
  for (std::size_t i = 0; i < log.size(); ++i) {
    if (log[i] == '\x1b') {
      while (i < log.size() && log[i] != 'm') ++i;
    } else {
      t += log[i] == '\n' ? ' ' : log[i];
    }
  }
  if (t.size() > 600) t = "..." + t.substr(t.size() - 600);
  return t.empty() ? "(no output)" : t;
}

// The guard's RouDi: the process, and whether it ever became ready (only
// then are the fixed-name files RouDi's, to remove when it is gone).
class roudi_process {
 public:
  roudi_process(const std::string& config, std::string log) : log_(std::move(log)) {
    const std::string configured = SHMBUS_IOX_ROUDI;
    // The configured path if it is still there, else whatever PATH finds.
    const std::string exe = std::filesystem::exists(configured) ? configured : "iox-roudi";
    pid_ = ::fork();
    if (pid_ < 0) fail(std::string("fork for iox-roudi: ") + std::strerror(errno));
    if (pid_ == 0) exec(exe, config);
  }
  roudi_process(const roudi_process&) = delete;
  roudi_process& operator=(const roudi_process&) = delete;
  ~roudi_process() { stop(); }

  // RouDi says so on its output once clients may register.
  void await_ready() {
    const std::int64_t deadline = platform::monotonic_ns() + 10 * second;
    while (file_text(log_).find("RouDi is ready for clients") == std::string::npos) {
      if (exited())
        fail("iox-roudi exited at start (is another RouDi running? is iox-roudi installed?): " +
             tail_of(file_text(log_)));
      if (platform::monotonic_ns() > deadline) fail("iox-roudi not ready after 10 s: " + tail_of(file_text(log_)));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ready_ = true;
  }

  bool exited() {
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) pid_ = -1;
    return pid_ <= 0;
  }

  // SIGTERM, up to 10 s for RouDi to clean up and exit, else SIGKILL; then
  // whatever it left.
  void stop() noexcept {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      if (!reaped_within(10 * second)) {
        ::kill(pid_, SIGKILL);
        reaped_within(5 * second);
      }
      pid_ = -1;
    }
    if (ready_) {
      std::error_code ignored;
      for (const auto& f : roudi_files()) std::filesystem::remove(f, ignored);
      // Subscribers killed with the bench may still be on their way out.
      remove_dead_runtime_sockets();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      remove_dead_runtime_sockets();
      ready_ = false;
    }
  }

 private:
  // In the forked child: RouDi's output to the log, the default signal
  // dispositions back (the guard ignores some), and gone with the guard.
  [[noreturn]] void exec(const std::string& exe, const std::string& config) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(sig, SIG_DFL);
    const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execlp(exe.c_str(), exe.c_str(), "-c", config.c_str(), "-l", "warning", static_cast<char*>(nullptr));
    std::fprintf(stderr, "cannot run %s: %s\n", exe.c_str(), std::strerror(errno));
    ::_exit(127);
  }

  bool reaped_within(std::int64_t ns) noexcept {
    const std::int64_t deadline = platform::monotonic_ns() + ns;
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) return true;
      if (platform::monotonic_ns() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  std::string log_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

// True once stdin has closed (or errs); waits at most `ms`.
bool stdin_closed(int ms) {
  pollfd p{0, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return false;
  char b[64];
  return ::read(0, b, sizeof b) <= 0;
}

// `shmbus-bench --child roudi-guard CONFIG LOG`: "ready" or "error WHY" on
// stdout, then RouDi runs until stdin closes.
int roudi_guard_main(const std::vector<std::string>& args) {
  if (args.size() < 2) fail("roudi-guard: CONFIG LOG expected");
  // Ctrl-C reaches the whole process group: the guard outlives the bench
  // by design, and stops once the bench is gone.
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, SIG_IGN);
  const std::string &config = args[0], &log = args[1];
  int rc = 0;
  try {
    roudi_process roudi(config, log);
    roudi.await_ready();
    test::signal_parent("ready");
    while (!stdin_closed(100)) {
      if (roudi.exited()) {
        rc = 1;  // died under the bench: its files go all the same
        break;
      }
    }
  } catch (const std::exception& e) {
    test::signal_parent(std::string("error ") + e.what());
    rc = 1;
  }
  std::error_code ignored;
  std::filesystem::remove(config, ignored);
  std::filesystem::remove(log, ignored);
  return rc;
}

const test::child_registrar guard_role("roudi-guard", roudi_guard_main);

// The bench's side: writes the config, starts the guard and waits for its
// "ready"; closing the guard's stdin stops RouDi.
class roudi_daemon {
 public:
  roudi_daemon() {
    const auto dir = std::filesystem::temp_directory_path();
    const std::string tag = "shmbus-bench-roudi-" + std::to_string(::getpid());
    const std::string config = (dir / (tag + ".toml")).string(), log = (dir / (tag + ".log")).string();
    std::ofstream(config) << roudi_config();
    guard_.emplace(test::child_process::self("roudi-guard", {config, log}));
    try {
      const std::string line = guard_->expect_line("", std::chrono::seconds(20));
      if (line != "ready") fail(line.rfind("error ", 0) == 0 ? line.substr(6) : "roudi-guard: " + line);
    } catch (...) {
      stop();
      throw;
    }
  }
  roudi_daemon(const roudi_daemon&) = delete;
  roudi_daemon& operator=(const roudi_daemon&) = delete;
  ~roudi_daemon() { stop(); }

 private:
  void stop() noexcept {
    if (!guard_) return;
    try {
      guard_->close_stdin();
      guard_->wait(std::chrono::seconds(30));
    } catch (...) {  // the child_process destructor kills it
    }
    guard_.reset();
  }
  std::optional<test::child_process> guard_;
};

// The parent's RouDi, started by the first iceoryx run. It must be
// constructed before this process's iceoryx runtime (a static inside
// iceoryx), so that it is destroyed after it: the runtime then unregisters
// before RouDi stops, and RouDi has nobody to send SIGTERM to.
void ensure_roudi() { static roudi_daemon daemon; }

// Each process registers with RouDi once, under a name of its own.
void ensure_runtime() {
  static const bool done = [] {
    // Warnings and errors only: the runtime's progress lines would land in
    // the report.
    iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kWarn,
                                                             iox::log::LogLevelOutput::kHideLogLevel);
    const std::string name = "shmbus-bench-" + std::to_string(::getpid());
    iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
    return true;
  }();
  (void)done;
}

iox::capro::IdString_t id(const std::string& s) { return {iox::cxx::TruncateToCapacity, s.c_str()}; }

iox::capro::ServiceDescription service_of(const run_spec& spec) {
  return {id("shmbus-bench"), id(spec.name), id("data")};
}

bool lossless(const run_spec& spec) { return spec.kind == run_kind::throughput && !spec.conflate; }

class iox_sender final : public sender {
 public:
  explicit iox_sender(const run_spec& spec) : pub_(service_of(spec), options(spec)) {}
  void send(std::span<const std::byte> msg) override {
    if (msg.size() > max_payload)
      fail("iceoryx: " + std::to_string(msg.size()) + " B is above the bench's largest RouDi pool (" +
           std::to_string(max_payload) + " B)");
    auto loaned = pub_.loan(static_cast<std::uint32_t>(msg.size()));
    if (loaned.has_error())
      fail("iceoryx loan of " + std::to_string(msg.size()) + " B failed (error " +
           std::to_string(static_cast<int>(loaned.get_error())) + ")");
    void* chunk = loaned.value();
    std::memcpy(chunk, msg.data(), msg.size());
    pub_.publish(chunk);
  }

 private:
  static iox::popo::PublisherOptions options(const run_spec& spec) {
    iox::popo::PublisherOptions o;
    o.historyCapacity = 0;
    if (lossless(spec)) o.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
    return o;
  }
  iox::popo::UntypedPublisher pub_;
};

class iox_receiver final : public receiver {
 public:
  iox_receiver(const run_spec& spec, const wait_strategy& how) : sub_(service_of(spec), options(spec)), how_(how) {
    if (how_.mode != wait_mode::busy_poll) {
      waitset_ = std::make_unique<iox::popo::WaitSet<>>();
      if (waitset_->attachState(sub_, iox::popo::SubscriberState::HAS_DATA).has_error())
        fail("iceoryx: cannot attach the subscriber to a WaitSet");
    }
  }
  ~iox_receiver() override {
    if (waitset_) waitset_->detachState(sub_, iox::popo::SubscriberState::HAS_DATA);
  }
  iox_receiver(const iox_receiver&) = delete;
  iox_receiver& operator=(const iox_receiver&) = delete;

  std::optional<delivery> receive(std::span<std::byte> dst, std::optional<nanoseconds> timeout) override {
    const std::int64_t start = platform::monotonic_ns();
    const std::int64_t until = timeout ? start + timeout->count() : INT64_MAX;
    const std::int64_t spin_end = how_.mode == wait_mode::busy_poll         ? INT64_MAX
                                  : how_.mode == wait_mode::spin_then_block ? start + how_.spin.count()
                                                                            : start;
    for (unsigned polls = 0;; ++polls) {
      if (auto got = take(dst)) return got;
      const bool check = polls % 32 == 31 || how_.mode == wait_mode::block;
      const std::int64_t now = check ? platform::monotonic_ns() : 0;
      if (check && now >= until) return std::nullopt;
      if (check && now >= spin_end) {
        block(until - now, timeout.has_value());
      } else {
        detail::cpu_relax();
      }
    }
  }

 private:
  static iox::popo::SubscriberOptions options(const run_spec& spec) {
    iox::popo::SubscriberOptions o;
    o.historyRequest = 0;
    if (lossless(spec)) {
      o.queueCapacity = std::min<std::uint64_t>(spec.depth, iox::MAX_SUBSCRIBER_QUEUE_CAPACITY);
      o.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
    } else {
      o.queueCapacity = 16;  // one message at a time; a few probes may queue up
    }
    return o;
  }

  // One chunk, copied out and released; nullopt when the queue is empty.
  std::optional<delivery> take(std::span<std::byte> dst) {
    auto taken = sub_.take();
    if (taken.has_error()) {
      if (taken.get_error() == iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) return std::nullopt;
      fail("iceoryx take failed (error " + std::to_string(static_cast<int>(taken.get_error())) + ")");
    }
    const void* chunk = taken.value();
    const std::size_t n = iox::mepoo::ChunkHeader::fromUserPayload(chunk)->userPayloadSize();
    if (n > dst.size()) fail("iceoryx message larger than the buffer");
    std::memcpy(dst.data(), chunk, n);
    sub_.release(chunk);
    return delivery{n};
  }

  // Sleeps in the WaitSet until the subscriber has data (or the timeout).
  void block(std::int64_t left_ns, bool timed) {
    if (!timed) {
      (void)waitset_->wait();
    } else if (left_ns > 0) {
      (void)waitset_->timedWait(iox::units::Duration::fromNanoseconds(static_cast<unsigned long long>(left_ns)));
    }
  }

  iox::popo::UntypedSubscriber sub_;
  wait_strategy how_;
  std::unique_ptr<iox::popo::WaitSet<>> waitset_;
};

class iox_session final : public session {
 public:
  // The publisher is made once the subscribers exist; iceoryx connects
  // them asynchronously (through RouDi), which the harness's probes cover.
  explicit iox_session(const run_spec& spec, bool start_roudi) : spec_(spec) {
    if (start_roudi) ensure_roudi();
    ensure_runtime();
  }
  std::unique_ptr<sender> open_sender() override { return std::make_unique<iox_sender>(spec_); }

 private:
  run_spec spec_;
};

class iox_transport final : public transport {
 public:
  [[nodiscard]] std::string name() const override { return "iceoryx"; }
  [[nodiscard]] bool supports(const run_spec& spec) const override {
    return !spec.conflate && std::max(spec.size, min_payload) <= max_payload;
  }
  std::unique_ptr<session> prepare(const run_spec& spec) override { return std::make_unique<iox_session>(spec, true); }
  // Ping-pong's answer channel, in the subscriber process: the parent's
  // RouDi serves it too.
  std::unique_ptr<session> prepare_reply(const run_spec& reply) override {
    return std::make_unique<iox_session>(reply, false);
  }
  [[nodiscard]] std::string unsupported_reason(const run_spec& spec) const override {
    if (spec.conflate) return "iceoryx has no latest-value topic";
    return "payloads above " + std::to_string(max_payload) + " B: the bench's RouDi pools stop there";
  }
  std::unique_ptr<receiver> open_receiver(const run_spec& spec, unsigned, const std::string&) override {
    ensure_runtime();
    return std::make_unique<iox_receiver>(spec, spec.wait);
  }
};

const transport_registrar reg(std::make_unique<iox_transport>());

}  // namespace
}  // namespace shmbus::bench
