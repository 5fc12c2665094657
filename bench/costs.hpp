#pragma once
// Single-thread costs of the steps of a publish and a read (costs.cpp).

#include <string>
#include <vector>

namespace shmbus::bench {

struct cost {
  std::string what;
  double ns = 0;  ///< per call, thread CPU time, best of three rounds
};

/// `name`: a prefix for the objects it creates; `quick`: fewer iterations.
std::vector<cost> measure_costs(const std::string& name, bool quick);

}  // namespace shmbus::bench
