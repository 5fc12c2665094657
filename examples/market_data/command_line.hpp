#pragma once
// The demo programs' command lines: flags in order, some followed by a value.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace md_demo {

class command_line {
 public:
  command_line(int argc, char** argv) : argc_(argc), argv_(argv) {}

  /// Moves to the next flag; false after the last.
  bool next() {
    if (++index_ >= argc_) return false;
    flag_ = argv_[index_];
    return true;
  }
  [[nodiscard]] const std::string& flag() const noexcept { return flag_; }
  /// The value that follows the current flag; throws if there is none.
  std::string value() {
    if (index_ + 1 >= argc_) throw std::invalid_argument(flag_ + " needs a value");
    return argv_[++index_];
  }

 private:
  int argc_;
  char** argv_;
  int index_ = 0;
  std::string flag_;
};

/// The items of a comma-separated list ("a,b,,c": a, b, c).
inline std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto comma = std::min(list.find(',', start), list.size());
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace md_demo
