// Test main: `shmbus_tests --child ROLE ARGS...` runs a child role (this is
// how multi-process tests start their other processes); anything else runs
// doctest.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "support/child_process.hpp"

int main(int argc, char** argv) {
  shmbus::test::set_self_path(argv[0]);
  // In-process brokers log every topic they create; tests want only warnings.
  spdlog::set_level(spdlog::level::warn);
  if (argc >= 3 && std::string(argv[1]) == "--child") {
    auto& roles = shmbus::test::child_roles();
    const auto it = roles.find(argv[2]);
    if (it == roles.end()) {
      std::fprintf(stderr, "unknown child role '%s'\n", argv[2]);
      return 100;
    }
    try {
      return it->second(std::vector<std::string>(argv + 3, argv + argc));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child '%s' failed: %s\n", argv[2], e.what());
      return 101;
    }
  }
  doctest::Context context(argc, argv);
  return context.run();
}
