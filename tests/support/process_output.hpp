#pragma once
// What the tests that run the tools read back: a child's whole output, a
// search in it, and a configuration file that lives as long as the test.
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "support/child_process.hpp"

namespace shmbus::test {

/// Every line `p` writes until it closes its output.
inline std::vector<std::string> lines_until_eof(child_process& p) {
  std::vector<std::string> lines;
  while (auto line = p.read_line()) lines.push_back(*line);
  return lines;
}

inline bool has_line(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

/// The lines as one text, for a failure message.
inline std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

/// A broker configuration file, removed again at the end of the test.
struct config_file {
  std::filesystem::path path;
  config_file(const std::string& bus, const std::string& text)
      : path(std::filesystem::temp_directory_path() / (bus + ".ini")) {
    std::ofstream(path) << text;
  }
  ~config_file() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

}  // namespace shmbus::test
