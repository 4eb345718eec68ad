// Helpers shared by the test files.
#pragma once

#include <lamina/lamina.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace lamina::test {

// Ends this test case as skipped: ctest reports it as "Skipped" (exit code 77) with the reason.
[[noreturn]] inline void skip(const std::string& reason) {
  std::cout << "SKIPPED: " << reason << std::endl;
  std::exit(77);
}

// The backends this build was configured with (see tests/CMakeLists.txt).
inline std::vector<std::string> configured_backends() {
  std::vector<std::string> out;
  std::stringstream s(LAMINA_TEST_BACKENDS);
  std::string item;
  while (std::getline(s, item, ',')) out.push_back(item);
  return out;
}

// Selects `name`, or skips the test case with the reason the backend cannot be used.
inline void use_backend_or_skip(const std::string& name) {
  for (const auto& b : available_backends())
    if (b == name) {
      set_backend(name);
      return;
    }
  std::string why = "no plugin for it was found";
  for (const auto& p : list_plugins())
    if (p.name == name) why = p.reason;
  skip("backend '" + name + "' cannot run here: " + why);
}

// Restores the previously active backend at scope exit.
struct BackendScope {
  std::string previous = backend();
  explicit BackendScope(const std::string& name) { set_backend(name); }
  ~BackendScope() { set_backend(previous); }
};

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Deterministic pseudo-random values in [lo, hi).
inline Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v(size_t(shape_size(shape)));
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& x : v) {
    z ^= z << 13, z ^= z >> 7, z ^= z << 17;
    x = lo + (hi - lo) * float(z >> 40) / float(1 << 24);
  }
  return Tensor::from_vector(v, shape);
}

// Runs `body` and returns the lamina::Error message it throws ("" if none).
template <class Body> std::string error_of(Body&& body) {
  try {
    body();
  } catch (const lamina::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace lamina::test
