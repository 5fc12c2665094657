// shmbus-broker: parses flags, builds a shmbus::broker, and runs its
// maintenance loop until SIGINT/SIGTERM.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/broker.hpp"
#include "shmbus/error.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/process.hpp"

namespace {

constexpr std::string_view usage = R"(Usage: shmbus-broker [OPTIONS]

Creates the topics of one shmbus bus (shared memory, mutex and event per
topic) and keeps them alive until interrupted (Ctrl-C / SIGTERM), then removes
them.

Options:
  -t, --topic NAME[:MAX_SIZE[:DEPTH[:KEYS]]]
                        add a topic (repeatable). MAX_SIZE in bytes, K/M
                        suffixes allowed (default 4096); DEPTH 1 = latest
                        value (default), N = ring of N messages; KEYS makes
                        it a keyed topic of up to KEYS keys, each with its
                        latest value (docs/concepts.md)
  -c, --config FILE     read topics and settings from an INI file
                        (see docs/configuration.md)
  -b, --bus NAME        bus name (default: $SHMBUS_BUS, else "default")
      --mode OCTAL      permission bits of created objects (default 0600)
      --group NAME      share the bus with a group (POSIX: objects' group,
                        give --mode group bits too; Windows: grant access)
      --group-publish   let the group publish too (default: it may only
                        subscribe; messages get no group write bit)
      --sddl SDDL       Windows: security descriptor for created objects
      --namespace NS    Windows: local (default) or global (Global\, for
                        services; needs SeCreateGlobalPrivilege)
      --log-level LVL   trace|debug|info|warn|error|off (default info)
  -h, --help            show this help
  -V, --version         show the version

Example:
  shmbus-broker --topic prices:512:64 --topic status:128
)";

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "shmbus-broker: %s\n", msg.c_str());
  std::exit(2);
}

struct cli {
  shmbus::broker_options opts;
  std::string log_level = "info";
};

cli parse(int argc, char** argv) {
  cli c;
  std::vector<shmbus::topic_config> flag_topics;
  std::string config_file, bus_flag, mode_flag;
  // Settings given as flags, in the config file's syntax so that both are
  // checked by one parser.
  std::string settings;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&](std::string_view name) -> std::string {
      if (i + 1 >= argc) die(std::string(name) + " needs a value (see --help)");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(usage.data(), stdout);
      std::exit(0);
    } else if (a == "-V" || a == "--version") {
      std::puts("shmbus-broker " SHMBUS_VERSION);
      std::exit(0);
    } else if (a == "-t" || a == "--topic") {
      flag_topics.push_back(shmbus::parse_topic_spec(value(a)));
    } else if (a == "-c" || a == "--config") {
      config_file = value(a);
    } else if (a == "-b" || a == "--bus") {
      bus_flag = value(a);
    } else if (a == "--mode") {
      mode_flag = value(a);
    } else if (a == "--group") {
      settings += "group = " + value(a) + "\n";
    } else if (a == "--group-publish") {
      settings += "group_publish = yes\n";
    } else if (a == "--sddl") {
      settings += "sddl = " + value(a) + "\n";
    } else if (a == "--namespace") {
      settings += "namespace = " + value(a) + "\n";
    } else if (a == "--log-level") {
      c.log_level = value(a);
    } else {
      die("unknown option '" + std::string(a) + "' (see --help)");
    }
  }
  if (!config_file.empty()) shmbus::load_config_file(config_file, c.opts);
  for (auto& t : flag_topics) c.opts.topics.push_back(std::move(t));
  if (!bus_flag.empty()) c.opts.bus = bus_flag;
  if (!mode_flag.empty()) settings += "mode = " + mode_flag + "\n";
  if (!settings.empty()) {
    shmbus::broker_options flags;
    shmbus::load_config_text("[broker]\n" + settings, "command line", flags);
    if (!mode_flag.empty()) c.opts.mode = flags.mode;
    if (!flags.group.empty()) c.opts.group = flags.group;
    if (flags.group_publishes) c.opts.group_publishes = true;
    if (!flags.sddl.empty()) c.opts.sddl = flags.sddl;
    if (!flags.object_namespace.empty()) c.opts.object_namespace = flags.object_namespace;
  }
  if (c.opts.topics.empty()) die("no topics: give --topic NAME or --config FILE (see --help)");
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    cli c = parse(argc, argv);
    const auto level = spdlog::level::from_str(c.log_level);
    if (level == spdlog::level::off && c.log_level != "off") die("unknown --log-level '" + c.log_level + "'");
    spdlog::set_level(level);
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e [%^%l%$] %v");

    // Signals are taken synchronously (sigtimedwait); set that up before the
    // broker exists so no signal can kill it half-created.
    shmbus::platform::wait_for_termination_request(std::chrono::milliseconds(0));
    shmbus::broker b(std::move(c.opts));
    spdlog::info("bus '{}' ready: {} topic(s), pid {}", b.bus(), b.status().size(),
                 shmbus::platform::current_process().pid);
    std::printf("shmbus-broker: bus '%s' ready\n", b.bus().c_str());
    std::fflush(stdout);
    while (!shmbus::platform::wait_for_termination_request(std::chrono::milliseconds(100))) b.maintain();
    spdlog::info("bus '{}': shutting down, removing its objects", b.bus());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmbus-broker: %s\n", e.what());
    return 1;
  }
  return 0;
}
