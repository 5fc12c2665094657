// Issue 9 item 8: a subscriber whose registered process is gone while the
// subscriber itself lives on (it daemonised: fork, the parent exits). POSIX
// only: that needs fork().
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "shmbus/client.hpp"
#include "shmbus/detail/topic_segment.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;

// Subscribes, then daemonises: forks, and the parent exits at once (without
// running destructors, as daemon() does), so the pid in the entry dies while
// the subscriber lives on in the grandchild. The grandchild shares the
// parent's pipes: it reads commands on stdin ("read", "quit").
SHMBUS_CHILD("daemonising-subscriber")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  auto sub = b.make_subscriber(a.at(1));
  const pid_t pid = ::fork();
  if (pid < 0) return 2;
  if (pid > 0) std::_Exit(0);  // says nothing: only the daemon's lines are ordered
  signal_parent("daemon ready");
  for (std::string line; std::getline(std::cin, line);) {
    if (line == "read") {
      message m;
      std::error_code ec;
      std::uint64_t n = 0;
      while (sub.try_read(m, ec)) ++n;
      signal_parent("read n=" + std::to_string(n) + " error=" + std::to_string(ec.value()));
    } else if (line == "quit") {
      sub = subscriber(std::move(sub));  // a move, then the destructor: both must leave the entry alone
      { auto gone = std::move(sub); }
      signal_parent("unsubscribed");
      break;
    }
  }
  return 0;
}

TEST_CASE(
    "issue 9.8: a subscriber that daemonised and was reaped neither frees nor scribbles the entry a later "
    "subscriber took") {
  test_bus tb({topic("d", 64, 8)});
  bus b(tb.name);
  auto pub = b.make_publisher("d");
  auto child = child_process::self("daemonising-subscriber", {tb.name, "d"});
  child.expect_line("daemon ready");
  REQUIRE(child.wait() == 0);  // the registered process is gone; its subscriber is not

  auto raw = open_raw_as(tb.name, "d", detail::topic_role::observe);
  detail::subscriber_entry& e = raw.subscribers()[0];
  REQUIRE(detail::sub_phase(e.state.load()) == detail::sub_live);
  REQUIRE(e.pid.load() == static_cast<std::uint64_t>(child.pid()));
  tb.brk.maintain();  // the broker reaps by pid liveness
  REQUIRE(detail::sub_phase(e.state.load()) == detail::sub_free);

  // A later subscriber takes the same entry.
  auto second = b.make_subscriber("d");
  REQUIRE(detail::sub_phase(e.state.load()) == detail::sub_live);
  const std::uint64_t me = static_cast<std::uint64_t>(::getpid());
  REQUIRE(e.pid.load() == me);
  const std::uint64_t taken = e.state.load();

  // The daemon still reads (its stats must not land in the entry it lost),
  // then destroys its subscriber (which must not free that entry).
  for (int i = 0; i < 3; ++i) pub.publish("x");
  child.write("read\n");
  CHECK(field(child.expect_line("read n="), "n") == 3);
  child.write("quit\n");
  child.expect_line("unsubscribed");

  CHECK(e.state.load() == taken);
  CHECK(detail::sub_phase(e.state.load()) == detail::sub_live);
  CHECK(e.pid.load() == me);
  CHECK(e.received.load() == 0);
  CHECK(e.read_seq.load() == 0);
  CHECK(b.stats().at(0).live_subscribers == 1);
  message m;
  CHECK(second.try_read(m));
  CHECK(m.sequence() == 1);
}

// Holds a topic's exclusive publish right, then daemonises as above: the
// record names the parent, which exits, while the publisher lives on in the
// grandchild ("publish", "quit" on stdin).
SHMBUS_CHILD("daemonising-exclusive-publisher")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  publisher_options o;
  o.exclusive = true;
  auto pub = b.make_publisher(a.at(1), o);
  pub.publish("from the parent");
  const pid_t pid = ::fork();
  if (pid < 0) return 2;
  if (pid > 0) std::_Exit(0);
  signal_parent("daemon ready");
  for (std::string line; std::getline(std::cin, line);) {
    if (line == "publish") {
      error_info err;
      const std::uint64_t seq = pub.publish("from the daemon", err);
      signal_parent("published seq=" + std::to_string(seq) + " error=" + std::to_string(err.code.value()) +
                    " exclusive=" + std::to_string(pub.exclusive()) + " what=" + err.what);
    } else if (line == "quit") {
      pub = publisher{};  // the destructor must not give back a right that is not the daemon's
      signal_parent("closed");
      break;
    }
  }
  return 0;
}

TEST_CASE("an exclusive publisher inherited by a forked child neither publishes nor releases the right") {
  test_bus tb({topic("x", 64, 8)});
  bus b(tb.name);
  auto sub = b.make_subscriber("x");
  auto child = child_process::self("daemonising-exclusive-publisher", {tb.name, "x"});
  child.expect_line("daemon ready");
  REQUIRE(child.wait() == 0);  // the recorded holder is gone; its publisher object is not

  // The next publisher takes the dead holder's right over, as from any dead holder.
  publisher_options o;
  o.exclusive = true;
  auto next = b.make_publisher("x", o);
  CHECK(next.mutex_recoveries() == 1);
  CHECK(next.publish("from the next holder") == 2);

  // The daemon's copy is refused, never written beside the new holder ...
  child.write("publish\n");
  const std::string line = child.expect_line("published");
  INFO(line);
  CHECK(field(line, "seq") == 0);
  CHECK(field(line, "error") == static_cast<std::uint64_t>(errc::exclusive_publisher));
  CHECK(field(line, "exclusive") == 0);
  CHECK(line.find("what=topic 'x': publisher pid " + std::to_string(::getpid()) +
                  " holds the exclusive publish right") != std::string::npos);
  // ... and its destructor leaves the new holder's right alone.
  child.write("quit\n");
  child.expect_line("closed");
  CHECK(b.stats().at(0).exclusive_pid == static_cast<std::uint64_t>(::getpid()));
  error_info err;
  CHECK(!b.make_publisher("x", o, err).is_open());
  CHECK(err.code == errc::exclusive_publisher);
  CHECK(next.publish("still ours") == 3);
  message m;
  std::vector<std::string> texts;
  while (sub.try_read(m)) texts.emplace_back(m.text());
  CHECK(texts == std::vector<std::string>{"from the parent", "from the next holder", "still ours"});
}
