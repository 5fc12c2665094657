// shmbus: the command-line client. `shmbus ls`, `stat`, `pub`, `sub`, `get`,
// `keys`.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "decoders.hpp"
#include "shmbus/client.hpp"
#include "shmbus/platform/process.hpp"

namespace {

constexpr int exit_ok = 0, exit_error = 1, exit_usage = 2, exit_timeout = 3, exit_not_found = 4;

constexpr std::string_view main_usage = R"(Usage: shmbus [--bus NAME] COMMAND [ARGS]

Commands:
  ls   [--json]                     list the bus's topics
  stat [--watch] [--interval S] [--json]
                                    per-topic rates, subscribers, lag, gaps
  pub  TOPIC [--key KEY] [MESSAGE]  publish MESSAGE, or each line of stdin
  sub  TOPIC [--count N] [--timeout SECONDS] [--format text|hex|TYPE] [-v]
             [--key KEY]... [--snapshot]
                                    print messages as they arrive
  get  TOPIC KEY [--format text|hex|TYPE] [-v]
                                    print a keyed topic's latest value of KEY
  keys TOPIC [--json]               list a keyed topic's keys

Options (every command):
  -b, --bus NAME   bus name (default: $SHMBUS_BUS, else "default")
  -h, --help       help; `shmbus COMMAND --help` for a command

Exit status: 0 success, 1 error, 2 bad usage, 3 timeout, 4 no such key (get).
)";

constexpr std::string_view ls_usage = R"(Usage: shmbus ls [--bus NAME] [--json]

Lists the topics of a bus: name, max message size, depth, messages
published, live subscribers, and for keyed topics the keys in use of the
topic's key capacity (KEYS, e.g. 2/25000; - for a plain topic).
)";

constexpr std::string_view stat_usage = R"(Usage: shmbus stat [--bus NAME] [--watch] [--interval S] [--json]

Samples every topic twice, S seconds apart (default 1), and prints per
topic: messages and bytes published per second, live subscribers, the
slowest subscriber's lag (messages published that it has not read yet),
gaps (messages the live subscribers were told they missed), the age of the
last publish, and recoveries (publishers that died holding the mutex or
the exclusive publish right), and for keyed topics the keys in use of the
topic's key capacity (- for a plain topic). Below the table, each topic
whose exclusive publish right is held names the holder's pid.

Options:
  -w, --watch            keep sampling; redraw in place on a terminal, one
                         block per sample otherwise. Waits for a broker when
                         none runs. Ends on Ctrl-C.
  -i, --interval S       seconds between samples (default 1)
  -n, --count N          with --watch: stop after N samples
      --json             one JSON object per sample, one per line
)";

constexpr std::string_view pub_usage = R"(Usage: shmbus pub [--bus NAME] TOPIC [MESSAGE] [OPTIONS]

Publishes MESSAGE to TOPIC. Without MESSAGE, publishes each line read from
standard input as one message (without its newline). On a topic that
declares a type size, a message of any other size is refused: exit 1, and
nothing after it is published.

Options:
  -k, --key KEY          the message's key (1-63 bytes); needed on a keyed
                         topic, refused on a plain one. Every message is
                         published under it and becomes its latest value.
                         A new key beyond the topic's key capacity is
                         refused: exit 1
  -x, --exclusive        hold the topic's exclusive publish right while
                         running: no other publisher can publish meanwhile
                         (exit 1 if another one holds it)
      --wait-right S     with --exclusive: wait up to S seconds for the
                         holder to give the right back or die
)";

constexpr std::string_view sub_usage = R"(Usage: shmbus sub [--bus NAME] TOPIC [OPTIONS]

Prints each message of TOPIC on one line as it arrives. Gaps (messages this
subscriber missed) are reported on standard error.

Options:
  -n, --count N          exit 0 after N messages
  -t, --timeout SECONDS  exit 3 when no message arrives for SECONDS
  -f, --format FORMAT    text (default; control bytes escaped), hex, or a
                         registered struct type, decoded as Field=value:
@TYPES@  -v, --verbose          prefix each line with sequence, size and
                         publish-to-receive latency ("snapshot" instead of
                         the latency for a --snapshot value)

Keyed topics: each line starts with the message's key, "KEY: " (escaped as
text is).
  -k, --key KEY          only messages of KEY; repeat it for more keys
                         (default: every key)
      --snapshot         first every selected key's latest value, then the
                         messages published after those values, none lost
                         and none twice. --count counts both.
)";

constexpr std::string_view get_usage = R"(Usage: shmbus get [--bus NAME] TOPIC KEY [OPTIONS]

Prints the latest value of KEY on the keyed topic TOPIC, on one line, as
`shmbus sub` prints a message (without the key). Exit 4 when TOPIC has no
value of KEY.

Options:
  -f, --format FORMAT    text (default), hex or a registered struct type, as
                         for `shmbus sub` (see shmbus sub --help)
  -v, --verbose          prefix the line with the value's sequence, size and
                         the word "latest"
)";

constexpr std::string_view keys_usage = R"(Usage: shmbus keys [--bus NAME] TOPIC [--json]

Lists the keys of the keyed topic TOPIC, in the order they were added: the
key (escaped as `shmbus sub` escapes text), the sequence of the message that
wrote its latest value, that message's age, its size in bytes, and the
messages published under the key.

Options:
      --json             one JSON object on one line: the bus, the topic,
                         its key capacity and a "keys" array
)";

std::string sub_help() {
  std::string types;
  for (const auto& d : shmbus::cli::decoders())
    types += "                           " + std::string(d.name) + ": " + std::string(d.description) + "\n";
  std::string text(sub_usage);
  text.replace(text.find("@TYPES@"), 7, types);
  return text;
}

struct usage_error {
  std::string text;
};

struct args {
  std::string bus;
  std::string command;
  std::vector<std::string> positional;
  bool json = false, verbose = false, help = false, watch = false, exclusive = false, snapshot = false;
  std::vector<std::string> keys;  // --key, in the order given
  std::optional<double> wait_right;
  std::uint64_t count = 0;
  double timeout = -1;
  double interval = 1;
  std::string format = "text";
};

double parse_seconds(const std::string& option, const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(v >= 0) || v > 1e9)
    throw usage_error{option + " needs seconds >= 0, not '" + s + "'"};
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
    if (arg == "-h" || arg == "--help")
      a.help = true;
    else if (arg == "-b" || arg == "--bus")
      a.bus = value();
    else if (arg == "--json")
      a.json = true;
    else if (arg == "-v" || arg == "--verbose")
      a.verbose = true;
    else if (arg == "-n" || arg == "--count")
      a.count = parse_count(value());
    else if (arg == "-t" || arg == "--timeout")
      a.timeout = parse_seconds(arg, value());
    else if (arg == "-w" || arg == "--watch")
      a.watch = true;
    else if (arg == "-i" || arg == "--interval") {
      a.interval = parse_seconds(arg, value());
      if (a.interval < 0.01) throw usage_error{arg + " needs at least 0.01 seconds"};
    } else if (arg == "-f" || arg == "--format")
      a.format = value();
    else if (arg == "-x" || arg == "--exclusive")
      a.exclusive = true;
    else if (arg == "--wait-right")
      a.wait_right = parse_seconds(arg, value());
    else if (arg == "-k" || arg == "--key")
      a.keys.push_back(value());
    else if (arg == "--snapshot")
      a.snapshot = true;
    else if (arg.size() > 1 && arg[0] == '-' && arg != "-")
      throw usage_error{"unknown option '" + arg + "'"};
    else if (a.command.empty())
      a.command = arg;
    else
      a.positional.push_back(arg);
  }
  return a;
}

// The length of the valid UTF-8 sequence starting at s[i] (overlong forms,
// surrogates and code points past U+10FFFF are not valid), or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const auto cont = [&](std::size_t k) { return (byte(k) & 0xc0u) == 0x80u; };
  const unsigned b0 = byte(0), b1 = byte(1);
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const bool second_ok = b0 == 0xe0 ? b1 >= 0xa0 && b1 <= 0xbf : b0 == 0xed ? b1 >= 0x80 && b1 <= 0x9f : cont(1);
    return second_ok && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const bool second_ok = b0 == 0xf0 ? b1 >= 0x90 && b1 <= 0xbf : b0 == 0xf4 ? b1 >= 0x80 && b1 <= 0x8f : cont(1);
    return second_ok && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// The body of a JSON string holding `s`. Keys are arbitrary bytes, and JSON
// text must be UTF-8: valid UTF-8 passes through, quotes, backslashes,
// control bytes and DEL are escaped, and any other byte is written as
// \u0080-\u00ff. Characters U+0080-U+00FF themselves are never escaped, so
// such an escape always stands for one byte and the bytes can be recovered.
std::string json_escape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += s[i++];
    } else if (c >= 0x20 && c < 0x7f) {
      out += s[i++];
    } else if (const std::size_t n = c >= 0x80 ? utf8_sequence(s, i) : 0; n != 0) {
      out.append(s, i, n);
      i += n;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      ++i;
    }
  }
  return out;
}

// A keyed topic's keys in use of its capacity ("2/25000"), "-" for a plain one.
std::string keys_cell(const shmbus::topic_stats& s) {
  if (!s.info.keyed()) return "-";
  return std::to_string(s.keys) + "/" + std::to_string(s.info.key_capacity);
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
      std::printf(
          "%s{\"name\":\"%s\",\"max_message_size\":%llu,\"depth\":%u,\"type_size\":%u,"
          "\"published\":%llu,\"subscribers\":%u,\"mutex_recoveries\":%llu,\"key_capacity\":%u,\"keys\":%u}",
          i ? "," : "", json_escape(s.info.name).c_str(), static_cast<unsigned long long>(s.info.max_message_size),
          s.info.depth, s.info.type_size, static_cast<unsigned long long>(s.published), s.live_subscribers,
          static_cast<unsigned long long>(s.mutex_recoveries), s.info.key_capacity, s.keys);
    }
    std::printf("]}\n");
    return exit_ok;
  }
  // 80 columns with a full 25000-key topic's "25000/25000".
  std::printf("%-24s %10s %7s %12s %11s %11s\n", "TOPIC", "MAX_SIZE", "DEPTH", "PUBLISHED", "SUBSCRIBERS", "KEYS");
  for (const auto& s : stats) {
    std::printf("%-24s %10llu %7u %12llu %11u %11s\n", s.info.name.c_str(),
                static_cast<unsigned long long>(s.info.max_message_size), s.info.depth,
                static_cast<unsigned long long>(s.published), s.live_subscribers, keys_cell(s).c_str());
  }
  return exit_ok;
}

int cmd_pub(const args& a) {
  if (a.positional.empty() || a.positional.size() > 2) throw usage_error{"pub needs TOPIC [MESSAGE]"};
  if (a.wait_right && !a.exclusive) throw usage_error{"--wait-right needs --exclusive"};
  if (a.keys.size() > 1) throw usage_error{"pub takes one --key"};
  if (a.snapshot) throw usage_error{"--snapshot is for sub"};
  const std::optional<std::string> key = a.keys.empty() ? std::nullopt : std::optional(a.keys[0]);
  shmbus::bus bus(a.bus);
  shmbus::publisher_options opts;
  opts.exclusive = a.exclusive;
  if (a.wait_right)
    opts.wait_for_right =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(*a.wait_right));
  auto pub = bus.make_publisher(a.positional[0], opts);
  // Told before any input is read, not at its first line (or never, for
  // empty input); a bad key or a full key table is the library's to tell.
  const std::string& topic = a.positional[0];
  if (key && !pub.topic().keyed())
    throw std::runtime_error("topic '" + topic + "' is not keyed: publish without --key");
  if (!key && pub.topic().keyed())
    throw std::runtime_error("topic '" + topic + "' is keyed: every message needs a key (give it with --key KEY)");
  const auto publish = [&](const std::string& message) {
    if (key)
      pub.publish(*key, message);
    else
      pub.publish(message);
  };
  if (a.positional.size() == 2) {
    publish(a.positional[1]);
    return exit_ok;
  }
  std::string line;
  for (std::uint64_t n = 1; std::getline(std::cin, line); ++n) {
    try {
      publish(line);
    } catch (const shmbus::error& e) {
      throw std::runtime_error("standard input line " + std::to_string(n) + ": " + e.what());
    }
  }
  return exit_ok;
}

void append_hex(std::string& out, std::span<const std::byte> payload) {
  static constexpr char digits[] = "0123456789abcdef";
  for (std::byte b : payload) {
    out += digits[static_cast<unsigned>(b) >> 4];
    out += digits[static_cast<unsigned>(b) & 0xf];
  }
}

// How `sub` and `get` print payloads: --format, checked once.
struct payload_format {
  std::string name;                               // text, hex or the decoder's
  const shmbus::cli::decoder* decoder = nullptr;  // a registered struct type
  // The type size to open the subscriber with: a decoded type is checked
  // against the topic's declared type size.
  [[nodiscard]] std::size_t type_size() const { return decoder ? decoder->size : 0; }
};

payload_format payload_format_of(const args& a) {
  payload_format f{a.format};
  if (a.format != "text" && a.format != "hex") {
    f.decoder = shmbus::cli::find_decoder(a.format);
    if (f.decoder == nullptr) {
      std::string known = "text, hex";
      for (const auto& d : shmbus::cli::decoders()) known += ", " + std::string(d.name);
      throw usage_error{"unknown --format '" + a.format + "' (known: " + known + ")"};
    }
  }
  return f;
}

// Prints `m` on one line of standard output, as `sub` does: with `verbose`,
// "#SEQUENCE SIZEB TAG " first (TAG: the latency, or what kind of value it
// is); the key, "KEY: ", when `with_key`; then the payload in format `f`.
void print_message(const shmbus::message& m, const payload_format& f, bool verbose, std::string_view tag,
                   bool with_key) {
  std::string line;
  if (verbose) {
    char prefix[64];
    std::snprintf(prefix, sizeof prefix, "#%llu %zuB ", static_cast<unsigned long long>(m.sequence()), m.size());
    line += prefix;
    line += tag;
    line += ' ';
  }
  if (with_key) {
    shmbus::cli::append_escaped(line, m.key());
    line += ": ";
  }
  if (f.decoder != nullptr && m.size() == f.decoder->size) {
    f.decoder->format(m.payload(), line);
  } else if (f.decoder != nullptr) {
    std::fprintf(stderr, "shmbus: message #%llu is %zu bytes, not a %zu-byte %s; shown as hex\n",
                 static_cast<unsigned long long>(m.sequence()), m.size(), f.decoder->size, f.decoder->name.data());
    append_hex(line, m.payload());
  } else if (f.name == "hex") {
    append_hex(line, m.payload());
  } else {
    shmbus::cli::append_escaped(line, m.text());
  }
  line += '\n';
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

int cmd_sub(const args& a) {
  if (a.positional.size() != 1) throw usage_error{"sub needs exactly one TOPIC"};
  const payload_format format = payload_format_of(a);
  shmbus::bus bus(a.bus);
  shmbus::subscriber_options opts;
  opts.type_size = format.type_size();
  opts.keys = a.keys;
  opts.snapshot = a.snapshot;
  auto sub = bus.make_subscriber(a.positional[0], opts);
  const bool keyed = sub.topic().keyed();
  std::optional<std::chrono::nanoseconds> timeout;
  if (a.timeout >= 0) timeout = std::chrono::nanoseconds(static_cast<std::int64_t>(a.timeout * 1e9));
  shmbus::message m;
  for (std::uint64_t n = 0; a.count == 0 || n < a.count; ++n) {
    if (!sub.wait(m, timeout)) {
      std::fprintf(stderr, "shmbus: timed out after %g s waiting for a message on topic '%s' (%llu received)\n",
                   a.timeout, a.positional[0].c_str(), static_cast<unsigned long long>(n));
      return exit_timeout;
    }
    // Both clocks are platform::monotonic_ns(), shared by every process.
    const std::int64_t received_ns = shmbus::platform::monotonic_ns();
    std::fflush(stdout);  // keep stdout and stderr lines in order
    if (m.missed() != 0)
      std::fprintf(stderr, "shmbus: gap: %llu message(s) missed before #%llu\n",
                   static_cast<unsigned long long>(m.missed()), static_cast<unsigned long long>(m.sequence()));
    // A snapshot value's publish-to-receive time is its age, not a latency.
    char tag[32] = "snapshot";
    if (!m.from_snapshot())
      std::snprintf(tag, sizeof tag, "%.1fus", static_cast<double>(received_ns - m.timestamp_ns()) / 1e3);
    print_message(m, format, a.verbose, tag, keyed);
  }
  return exit_ok;
}

int cmd_get(const args& a) {
  if (a.positional.size() != 2) throw usage_error{"get needs TOPIC KEY"};
  if (!a.keys.empty() || a.snapshot) throw usage_error{"get takes its KEY as an argument, and no --key or --snapshot"};
  const payload_format format = payload_format_of(a);
  shmbus::bus bus(a.bus);
  auto sub = bus.make_subscriber(a.positional[0], format.type_size());
  shmbus::message m;
  const std::string& key = a.positional[1];
  if (!sub.get(key, m)) {
    std::string shown;
    shmbus::cli::append_escaped(shown, key);
    std::fprintf(stderr, "shmbus: topic '%s' has no key '%s'\n", a.positional[0].c_str(), shown.c_str());
    return exit_not_found;
  }
  print_message(m, format, a.verbose, "latest", false);
  return exit_ok;
}

// ---- stat ------------------------------------------------------------------

// One sample of a bus: what bus::stats() said, and when.
struct sample {
  std::uint64_t broker_pid = 0;
  std::int64_t taken_ns = 0;
  std::vector<shmbus::topic_stats> topics;
};

// The bus's figures now; nullopt when no broker runs (or it is going away
// while we look), if `tolerate_absence`.
std::optional<sample> take_sample(const args& a, bool tolerate_absence) {
  // Opened afresh each time, so that a restarted broker is picked up.
  std::optional<shmbus::bus> bus;
  try {
    bus.emplace(a.bus);
  } catch (const shmbus::error& e) {
    if (tolerate_absence && e.code() == shmbus::errc::no_broker) return std::nullopt;
    throw;
  }
  sample s;
  s.broker_pid = bus->broker_pid();
  try {
    s.topics = bus->stats();
  } catch (const std::system_error&) {
    // A segment vanished between reading the registry and opening it: the
    // broker is stopping.
    if (tolerate_absence && !bus->broker_alive()) return std::nullopt;
    throw;
  }
  s.taken_ns = shmbus::platform::monotonic_ns();
  return s;
}

// A topic's figures over the interval between two samples.
struct topic_row {
  const shmbus::topic_stats* now = nullptr;
  bool have_rates = false;  // false: no earlier figures of this topic from the same broker
  double publishes_per_s = 0, bytes_per_s = 0;
  double last_publish_age_s = -1;  // -1: never published
};

std::vector<topic_row> rows_of(const sample& before, const sample& after) {
  std::vector<topic_row> rows;
  const double secs = static_cast<double>(after.taken_ns - before.taken_ns) / 1e9;
  for (const auto& t : after.topics) {
    topic_row r;
    r.now = &t;
    for (const auto& old : before.topics) {
      // A counter that went down belongs to a new broker's topic.
      if (old.info.name != t.info.name || before.broker_pid != after.broker_pid || old.published > t.published ||
          secs <= 0)
        continue;
      r.have_rates = true;
      r.publishes_per_s = static_cast<double>(t.published - old.published) / secs;
      r.bytes_per_s = static_cast<double>(t.bytes_published - old.bytes_published) / secs;
    }
    if (t.last_publish_ns != 0)
      r.last_publish_age_s = std::max(0.0, static_cast<double>(after.taken_ns - t.last_publish_ns) / 1e9);
    rows.push_back(r);
  }
  return rows;
}

std::string human_bytes(double v) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.1f%s", v, units[u]);
  return buf;
}

std::string human_age(double s) {
  char buf[32];
  if (s < 0) return "never";
  if (s < 1)
    std::snprintf(buf, sizeof buf, "%.0fms", s * 1e3);
  else if (s < 60)
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%.0fm%02.0fs", std::floor(s / 60), std::fmod(s, 60));
  else
    std::snprintf(buf, sizeof buf, "%.1fh", s / 3600);
  return buf;
}

// The plain table: one line per topic. Returns the number of lines written.
int print_table(const std::string& bus_name, const sample& before, const sample& after) {
  const double secs = static_cast<double>(after.taken_ns - before.taken_ns) / 1e9;
  std::printf("bus '%s', broker pid %llu, rates over %.2f s\n", bus_name.c_str(),
              static_cast<unsigned long long>(after.broker_pid), secs);
  std::printf("%-24s %6s %12s %10s %12s %5s %8s %8s %9s %6s %11s\n", "TOPIC", "DEPTH", "PUBLISHED", "MSG/S", "BYTES/S",
              "SUBS", "MAX_LAG", "GAPS", "LAST_PUB", "RECOV", "KEYS");
  for (const auto& r : rows_of(before, after)) {
    const auto& t = *r.now;
    char msg_rate[32] = "-";
    if (r.have_rates) std::snprintf(msg_rate, sizeof msg_rate, "%.1f", r.publishes_per_s);
    std::printf("%-24s %6u %12llu %10s %12s %5u %8llu %8llu %9s %6llu %11s\n", t.info.name.c_str(), t.info.depth,
                static_cast<unsigned long long>(t.published), msg_rate,
                r.have_rates ? (human_bytes(r.bytes_per_s) + "/s").c_str() : "-", t.live_subscribers,
                static_cast<unsigned long long>(t.slowest_lag()), static_cast<unsigned long long>(t.missed()),
                human_age(r.last_publish_age_s).c_str(), static_cast<unsigned long long>(t.mutex_recoveries),
                keys_cell(t).c_str());
  }
  int holders = 0;
  for (const auto& t : after.topics) {
    if (t.exclusive_pid == 0) continue;
    std::printf("topic '%s': exclusive publisher pid %llu\n", t.info.name.c_str(),
                static_cast<unsigned long long>(t.exclusive_pid));
    ++holders;
  }
  return 2 + static_cast<int>(after.topics.size()) + holders;
}

void print_json(const std::string& bus_name, const sample& before, const sample& after) {
  std::string out;
  char buf[512];
  std::snprintf(buf, sizeof buf, "{\"bus\":\"%s\",\"broker_pid\":%llu,\"interval_s\":%.3f,\"topics\":[",
                json_escape(bus_name).c_str(), static_cast<unsigned long long>(after.broker_pid),
                static_cast<double>(after.taken_ns - before.taken_ns) / 1e9);
  out += buf;
  bool first = true;
  for (const auto& r : rows_of(before, after)) {
    const auto& t = *r.now;
    out += first ? "" : ",";
    first = false;
    std::snprintf(buf, sizeof buf,
                  "{\"name\":\"%s\",\"max_message_size\":%llu,\"depth\":%u,\"type_size\":%u,\"published\":%llu,"
                  "\"bytes_published\":%llu,",
                  json_escape(t.info.name).c_str(), static_cast<unsigned long long>(t.info.max_message_size),
                  t.info.depth, t.info.type_size, static_cast<unsigned long long>(t.published),
                  static_cast<unsigned long long>(t.bytes_published));
    out += buf;
    if (r.have_rates)
      std::snprintf(buf, sizeof buf, "\"publishes_per_s\":%.3f,\"bytes_per_s\":%.3f,", r.publishes_per_s,
                    r.bytes_per_s);
    else
      std::snprintf(buf, sizeof buf, "\"publishes_per_s\":null,\"bytes_per_s\":null,");
    out += buf;
    if (r.last_publish_age_s >= 0)
      std::snprintf(buf, sizeof buf, "\"last_publish_age_s\":%.6f,", r.last_publish_age_s);
    else
      std::snprintf(buf, sizeof buf, "\"last_publish_age_s\":null,");
    out += buf;
    std::snprintf(buf, sizeof buf,
                  "\"subscribers\":%u,\"slowest_lag\":%llu,\"missed\":%llu,\"mutex_recoveries\":%llu,"
                  "\"torn_discarded\":%llu,\"exclusive_pid\":%llu,\"key_capacity\":%u,\"keys\":%u,"
                  "\"subscriber_details\":[",
                  t.live_subscribers, static_cast<unsigned long long>(t.slowest_lag()),
                  static_cast<unsigned long long>(t.missed()), static_cast<unsigned long long>(t.mutex_recoveries),
                  static_cast<unsigned long long>(t.torn_discarded), static_cast<unsigned long long>(t.exclusive_pid),
                  t.info.key_capacity, t.keys);
    out += buf;
    for (std::size_t i = 0; i < t.subscribers.size(); ++i) {
      const auto& sub = t.subscribers[i];
      std::snprintf(buf, sizeof buf,
                    "%s{\"pid\":%llu,\"last_read\":%llu,\"lag\":%llu,\"received\":%llu,\"missed\":%llu,"
                    "\"waiting\":%s}",
                    i ? "," : "", static_cast<unsigned long long>(sub.pid),
                    static_cast<unsigned long long>(sub.last_read),
                    static_cast<unsigned long long>(t.published > sub.last_read ? t.published - sub.last_read : 0),
                    static_cast<unsigned long long>(sub.received), static_cast<unsigned long long>(sub.missed),
                    sub.waiting ? "true" : "false");
      out += buf;
    }
    out += "]}";
  }
  out += "]}\n";
  std::fputs(out.c_str(), stdout);
}

int cmd_stat(const args& a) {
  if (!a.positional.empty()) throw usage_error{"stat takes no arguments"};
  if (a.count != 0 && !a.watch) throw usage_error{"--count with stat needs --watch"};
  const auto interval = std::chrono::milliseconds(static_cast<std::int64_t>(a.interval * 1e3));
  const bool redraw = a.watch && !a.json && shmbus::platform::stdout_is_terminal();
  const std::string bus_name = a.bus.empty() ? shmbus::default_bus_name() : a.bus;
  // Ctrl-C (or SIGTERM) ends the command cleanly: the waits between samples
  // are waits for it.
  if (shmbus::platform::wait_for_termination_request(std::chrono::milliseconds(0))) return exit_ok;
  std::optional<sample> before = take_sample(a, a.watch);
  int drawn = 0;  // lines of the previous redraw, to move back over
  bool said_waiting = false;
  for (std::uint64_t reports = 0; !a.watch || a.count == 0 || reports < a.count;) {
    if (shmbus::platform::wait_for_termination_request(interval)) break;
    std::optional<sample> after = take_sample(a, a.watch);
    if (!after || !before) {
      // No broker (yet, or any more): say so once, and try again.
      if (!after && !said_waiting) {
        if (redraw && drawn > 0) std::printf("\x1b[%dA\x1b[J", drawn);
        std::printf("bus '%s': no broker running; waiting for one (Ctrl-C to stop)\n", bus_name.c_str());
        std::fflush(stdout);
        drawn = 1;
        said_waiting = true;
      }
      before = std::move(after);
      continue;
    }
    said_waiting = false;
    if (a.json) {
      print_json(bus_name, *before, *after);
    } else {
      if (redraw && drawn > 0)
        std::printf("\x1b[%dA\x1b[J", drawn);
      else if (a.watch && reports > 0)
        std::printf("\n");
      drawn = print_table(bus_name, *before, *after);
    }
    std::fflush(stdout);
    ++reports;
    if (!a.watch) break;
    before = std::move(after);
  }
  return exit_ok;
}

// ---- keys ------------------------------------------------------------------

int cmd_keys(const args& a) {
  if (a.positional.size() != 1) throw usage_error{"keys needs exactly one TOPIC"};
  if (!a.keys.empty() || a.snapshot) throw usage_error{"keys takes no --key or --snapshot"};
  shmbus::bus bus(a.bus);
  auto sub = bus.make_subscriber(a.positional[0]);
  // Said plainly: the library's sentence for this is about keys in general.
  if (!sub.topic().keyed()) throw std::runtime_error("topic '" + a.positional[0] + "' is not keyed: it has no keys");
  const auto keys = sub.keys();
  const std::int64_t now_ns = shmbus::platform::monotonic_ns();
  const auto age_of = [&](const shmbus::key_stats& k) {
    return std::max(0.0, static_cast<double>(now_ns - k.timestamp_ns) / 1e9);
  };
  if (a.json) {
    std::string out = "{\"bus\":\"" + json_escape(bus.name()) + "\",\"topic\":\"" + json_escape(a.positional[0]) +
                      "\",\"key_capacity\":" + std::to_string(sub.topic().key_capacity) + ",\"keys\":[";
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const auto& k = keys[i];
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "\",\"sequence\":%llu,\"timestamp_ns\":%lld,\"age_s\":%.6f,\"size\":%zu,\"updates\":%llu}",
                    static_cast<unsigned long long>(k.sequence), static_cast<long long>(k.timestamp_ns), age_of(k),
                    k.size, static_cast<unsigned long long>(k.updates));
      out += (i ? ",{\"key\":\"" : "{\"key\":\"") + json_escape(k.key) + buf;
    }
    out += "]}\n";
    std::fputs(out.c_str(), stdout);
    return exit_ok;
  }
  // The key column as wide as the widest key, so that the others line up.
  std::vector<std::string> shown(keys.size());
  std::size_t width = 3;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    shmbus::cli::append_escaped(shown[i], keys[i].key);
    width = std::max(width, shown[i].size());
  }
  const int w = static_cast<int>(width);
  std::printf("%-*s %12s %9s %10s %12s\n", w, "KEY", "SEQUENCE", "AGE", "SIZE", "UPDATES");
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto& k = keys[i];
    std::printf("%-*s %12llu %9s %10zu %12llu\n", w, shown[i].c_str(), static_cast<unsigned long long>(k.sequence),
                human_age(age_of(k)).c_str(), k.size, static_cast<unsigned long long>(k.updates));
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
    if (a.command == "stat") {
      if (a.help) return std::fputs(stat_usage.data(), stdout), exit_ok;
      return cmd_stat(a);
    }
    if (a.command == "pub") {
      if (a.help) return std::fputs(pub_usage.data(), stdout), exit_ok;
      return cmd_pub(a);
    }
    if (a.command == "sub") {
      if (a.help) return std::fputs(sub_help().c_str(), stdout), exit_ok;
      return cmd_sub(a);
    }
    if (a.command == "get") {
      if (a.help) return std::fputs(get_usage.data(), stdout), exit_ok;
      return cmd_get(a);
    }
    if (a.command == "keys") {
      if (a.help) return std::fputs(keys_usage.data(), stdout), exit_ok;
      return cmd_keys(a);
    }
    throw usage_error{"unknown command '" + a.command + "' (commands: ls, stat, pub, sub, get, keys)"};
  } catch (const usage_error& e) {
    std::fprintf(stderr, "shmbus: %s (see shmbus --help)\n", e.text.c_str());
    return exit_usage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmbus: %s\n", e.what());
    return exit_error;
  }
}
