// Small text helpers shared by the core's sources.
#pragma once

#include <cctype>
#include <string>

namespace lamina {

// `s` in lower case (ASCII), for case-insensitive names.
inline std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace lamina
