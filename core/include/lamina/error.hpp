// lamina's one exception type: every message says what was wrong, where, and how to fix it.
#pragma once

#include <stdexcept>
#include <string>

namespace lamina {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace lamina
