// shmbus: the command-line client. `shmbus ls`, `shmbus pub`, `shmbus sub`.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/client.hpp"

namespace {

constexpr int exit_ok = 0, exit_error = 1, exit_usage = 2, exit_timeout = 3;

constexpr std::string_view main_usage = R"(Usage: shmbus [--bus NAME] COMMAND [ARGS]

Commands:
  ls   [--json]                     list the bus's topics
  pub  TOPIC [MESSAGE]              publish MESSAGE, or each line of stdin
  sub  TOPIC [--count N] [--timeout SECONDS] [--format text|hex] [-v]
                                    print messages as they arrive

Options (every command):
  -b, --bus NAME   bus name (default: $SHMBUS_BUS, else "default")
  -h, --help       help; `shmbus COMMAND --help` for a command

Exit status: 0 success, 1 error, 2 bad usage, 3 timeout.
)";

constexpr std::string_view ls_usage = R"(Usage: shmbus ls [--bus NAME] [--json]

Lists the topics of a bus: name, max message size, depth, messages
published, live subscribers.
)";

constexpr std::string_view pub_usage = R"(Usage: shmbus pub [--bus NAME] TOPIC [MESSAGE]

Publishes MESSAGE to TOPIC. Without MESSAGE, publishes each line read from
standard input as one message (without its newline).
)";

constexpr std::string_view sub_usage = R"(Usage: shmbus sub [--bus NAME] TOPIC [OPTIONS]

Prints each message of TOPIC on one line as it arrives. Gaps (messages this
subscriber missed) are reported on standard error.

Options:
  -n, --count N          exit 0 after N messages
  -t, --timeout SECONDS  exit 3 when no message arrives for SECONDS
  -f, --format text|hex  text (default; control bytes escaped) or hex
  -v, --verbose          prefix each line with sequence and latency
)";

struct usage_error {
  std::string text;
};

struct args {
  std::string bus;
  std::string command;
  std::vector<std::string> positional;
  bool json = false, verbose = false, help = false;
  std::uint64_t count = 0;
  double timeout = -1;
  std::string format = "text";
};

double parse_seconds(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(v >= 0)) throw usage_error{"--timeout needs seconds >= 0, not '" + s + "'"};
  return v;
}

std::uint64_t parse_count(const std::string& s) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || s[0] == '-') throw usage_error{"--count needs a whole number, not '" + s + "'"};
  return v;
}

args parse(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw usage_error{arg + " needs a value"};
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") a.help = true;
    else if (arg == "-b" || arg == "--bus") a.bus = value();
    else if (arg == "--json") a.json = true;
    else if (arg == "-v" || arg == "--verbose") a.verbose = true;
    else if (arg == "-n" || arg == "--count") a.count = parse_count(value());
    else if (arg == "-t" || arg == "--timeout") a.timeout = parse_seconds(value());
    else if (arg == "-f" || arg == "--format") a.format = value();
    else if (arg.size() > 1 && arg[0] == '-' && arg != "-") throw usage_error{"unknown option '" + arg + "'"};
    else if (a.command.empty()) a.command = arg;
    else a.positional.push_back(arg);
  }
  return a;
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

int cmd_ls(const args& a) {
  if (!a.positional.empty()) throw usage_error{"ls takes no arguments"};
  shmbus::bus bus(a.bus);
  const auto stats = bus.stats();
  if (a.json) {
    std::printf("{\"bus\":\"%s\",\"broker_pid\":%llu,\"topics\":[", json_escape(bus.name()).c_str(),
                static_cast<unsigned long long>(bus.broker_pid()));
    for (std::size_t i = 0; i < stats.size(); ++i) {
      const auto& s = stats[i];
      std::printf("%s{\"name\":\"%s\",\"max_message_size\":%llu,\"depth\":%u,\"type_size\":%u,"
                  "\"published\":%llu,\"subscribers\":%u,\"mutex_recoveries\":%llu}",
                  i ? "," : "", json_escape(s.info.name).c_str(),
                  static_cast<unsigned long long>(s.info.max_message_size), s.info.depth, s.info.type_size,
                  static_cast<unsigned long long>(s.published), s.live_subscribers,
                  static_cast<unsigned long long>(s.mutex_recoveries));
    }
    std::printf("]}\n");
    return exit_ok;
  }
  std::printf("%-24s %10s %7s %12s %11s\n", "TOPIC", "MAX_SIZE", "DEPTH", "PUBLISHED", "SUBSCRIBERS");
  for (const auto& s : stats) {
    std::printf("%-24s %10llu %7u %12llu %11u\n", s.info.name.c_str(),
                static_cast<unsigned long long>(s.info.max_message_size), s.info.depth,
                static_cast<unsigned long long>(s.published), s.live_subscribers);
  }
  return exit_ok;
}

int cmd_pub(const args& a) {
  if (a.positional.empty() || a.positional.size() > 2) throw usage_error{"pub needs TOPIC [MESSAGE]"};
  shmbus::bus bus(a.bus);
  auto pub = bus.make_publisher(a.positional[0]);
  if (a.positional.size() == 2) {
    pub.publish(a.positional[1]);
    return exit_ok;
  }
  std::string line;
  while (std::getline(std::cin, line)) pub.publish(line);
  return exit_ok;
}

void print_text(std::span<const std::byte> payload) {
  std::string out;
  out.reserve(payload.size() + 1);
  for (std::byte b : payload) {
    const auto c = static_cast<unsigned char>(b);
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else out += static_cast<char>(c);
  }
  std::fputs(out.c_str(), stdout);
}

void print_hex(std::span<const std::byte> payload) {
  for (std::byte b : payload) std::printf("%02x", static_cast<unsigned>(b));
}

int cmd_sub(const args& a) {
  if (a.positional.size() != 1) throw usage_error{"sub needs exactly one TOPIC"};
  if (a.format != "text" && a.format != "hex") throw usage_error{"--format must be text or hex"};
  shmbus::bus bus(a.bus);
  auto sub = bus.make_subscriber(a.positional[0]);
  std::optional<std::chrono::nanoseconds> timeout;
  if (a.timeout >= 0) timeout = std::chrono::nanoseconds(static_cast<std::int64_t>(a.timeout * 1e9));
  shmbus::message m;
  for (std::uint64_t n = 0; a.count == 0 || n < a.count; ++n) {
    if (!sub.wait(m, timeout)) {
      std::fprintf(stderr, "shmbus: timed out after %g s waiting for a message on topic '%s' (%llu received)\n",
                   a.timeout, a.positional[0].c_str(), static_cast<unsigned long long>(n));
      return exit_timeout;
    }
    if (m.missed() != 0) {
      std::fflush(stdout);
      std::fprintf(stderr, "shmbus: gap: %llu message(s) missed before #%llu\n",
                   static_cast<unsigned long long>(m.missed()), static_cast<unsigned long long>(m.sequence()));
    }
    if (a.verbose) {
      const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now().time_since_epoch()).count();
      std::printf("#%llu %zuB %.1fus ", static_cast<unsigned long long>(m.sequence()), m.size(),
                  static_cast<double>(now - m.timestamp_ns()) / 1e3);
    }
    if (a.format == "hex") print_hex(m.payload());
    else print_text(m.payload());
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const args a = parse(argc, argv);
    if (a.command.empty() || a.command == "help") {
      std::fputs(main_usage.data(), a.help || a.command == "help" ? stdout : stderr);
      return a.help || a.command == "help" ? exit_ok : exit_usage;
    }
    if (a.command == "ls") {
      if (a.help) return std::fputs(ls_usage.data(), stdout), exit_ok;
      return cmd_ls(a);
    }
    if (a.command == "pub") {
      if (a.help) return std::fputs(pub_usage.data(), stdout), exit_ok;
      return cmd_pub(a);
    }
    if (a.command == "sub") {
      if (a.help) return std::fputs(sub_usage.data(), stdout), exit_ok;
      return cmd_sub(a);
    }
    throw usage_error{"unknown command '" + a.command + "' (commands: ls, pub, sub)"};
  } catch (const usage_error& e) {
    std::fprintf(stderr, "shmbus: %s (see shmbus --help)\n", e.text.c_str());
    return exit_usage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmbus: %s\n", e.what());
    return exit_error;
  }
}
