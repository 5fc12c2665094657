// The shipped binaries, end to end: shmbus-broker and the shmbus CLI.
#include <doctest/doctest.h>

#include "support/child_process.hpp"

using namespace shmbus::test;

namespace {

struct run_result {
  int code;
  std::string out;  // stdout and stderr together
};

run_result run(std::vector<std::string> argv, const std::string& input = {}) {
  child_process p(std::move(argv), true);
  if (!input.empty()) p.write(input);
  p.close_stdin();
  std::string out;
  while (auto line = p.read_line()) out += *line + "\n";
  return {p.wait(), out};
}

std::vector<std::string> cli(const std::string& bus, std::vector<std::string> args) {
  std::vector<std::string> v{SHMBUS_CLI_PATH, "--bus", bus};
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

struct running_broker {
  child_process proc;
  explicit running_broker(const std::string& bus)
      : proc({SHMBUS_BROKER_PATH, "--bus", bus, "--topic", "prices:512:64", "--topic", "status:32",
              "--log-level", "warn"},
             true) {
    proc.expect_line("ready");
  }
  ~running_broker() {
    proc.terminate();
    proc.wait();
  }
};

}  // namespace

TEST_CASE("shmbus --help and shmbus-broker --help describe the commands") {
  auto r = run({SHMBUS_CLI_PATH, "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("ls") != std::string::npos);
  CHECK(r.out.find("pub  TOPIC") != std::string::npos);
  r = run({SHMBUS_CLI_PATH, "sub", "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("--count N") != std::string::npos);
  r = run({SHMBUS_BROKER_PATH, "--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("--topic NAME[:MAX_SIZE[:DEPTH]]") != std::string::npos);
}

TEST_CASE("CLI failures: non-zero exit and one clear line") {
  const std::string bus = unique_bus();
  auto r = run(cli(bus, {"ls"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: no broker is running on bus '" + bus + "'\n");
  r = run({SHMBUS_CLI_PATH, "frobnicate"});
  CHECK(r.code == 2);
  CHECK(r.out.find("unknown command 'frobnicate'") != std::string::npos);
  r = run({SHMBUS_BROKER_PATH, "--bus", bus});
  CHECK(r.code == 2);
  CHECK(r.out == "shmbus-broker: no topics: give --topic NAME or --config FILE (see --help)\n");
  r = run({SHMBUS_BROKER_PATH, "--bus", bus, "--topic", "x:12q"});
  CHECK(r.code == 1);
  CHECK(r.out.find("--topic 'x:12q': max message size '12q' is not a number") != std::string::npos);
}

TEST_CASE("shmbus ls, pub and sub against a running broker") {
  const std::string bus = unique_bus();
  running_broker broker(bus);

  auto r = run(cli(bus, {"ls"}));
  CHECK(r.code == 0);
  CHECK(r.out.find("TOPIC") == 0);
  CHECK(r.out.find("prices                          512      64            0           0") != std::string::npos);

  child_process sub(cli(bus, {"sub", "prices", "--count", "3", "--timeout", "20"}), true);
  // The subscriber is registered once ls counts it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (run(cli(bus, {"ls", "--json"})).out.find("\"subscribers\":1") == std::string::npos)
    REQUIRE(std::chrono::steady_clock::now() < deadline);

  r = run(cli(bus, {"pub", "prices", "first"}));
  CHECK(r.code == 0);
  r = run(cli(bus, {"pub", "prices"}), "second\nthird\twith tab\n");
  CHECK(r.code == 0);
  CHECK(sub.read_line() == "first");
  CHECK(sub.read_line() == "second");
  CHECK(sub.read_line() == "third\\twith tab");
  CHECK(sub.wait() == 0);

  r = run(cli(bus, {"ls", "--json"}));
  CHECK(r.out.find("{\"name\":\"prices\",\"max_message_size\":512,\"depth\":64,\"type_size\":0,"
                   "\"published\":3,\"subscribers\":0") != std::string::npos);

  r = run(cli(bus, {"sub", "status", "--timeout", "0.1"}));
  CHECK(r.code == 3);
  CHECK(r.out.find("timed out") != std::string::npos);

  r = run(cli(bus, {"pub", "status", std::string(40, 'x')}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: topic 'status': message of 40 bytes exceeds max_message_size 32\n");

  r = run(cli(bus, {"sub", "nosuch"}));
  CHECK(r.code == 1);
  CHECK(r.out == "shmbus: bus '" + bus + "' has no topic 'nosuch' (topics: prices, status)\n");
}

TEST_CASE("shmbus sub reports gaps and prints hex") {
  const std::string bus = unique_bus();
  running_broker broker(bus);
  child_process sub(cli(bus, {"sub", "status", "--count", "1", "--format", "hex", "--timeout", "20"}), true);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (run(cli(bus, {"ls", "--json"})).out.find("\"subscribers\":1") == std::string::npos)
    REQUIRE(std::chrono::steady_clock::now() < deadline);
  CHECK(run(cli(bus, {"pub", "status", "AB"})).code == 0);
  CHECK(sub.read_line() == "4142");
  CHECK(sub.wait() == 0);
}
