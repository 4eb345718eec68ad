// Writing JSON the way Python's json module writes it, so that what lamina saves reads like what
// Keras saves: a double as the shortest decimal that reads back to the same value, in Python's repr
// form (0.9, 1e-07, 0.0, 1e+16), integers as integers. Boost.JSON's serialize writes doubles as
// 9E-1 and 0E0. Keys, strings, separators and everything else are Boost.JSON's (compact).
#pragma once

#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace lamina::sdk {

// A double as Python's repr(float) writes it. Python's rule: the shortest digits that round-trip;
// positional notation while the decimal point falls within 16 digits left of them or 4 right
// (1e16 and 1e-05 switch to an exponent, written with a sign and at least two digits). Infinities
// and NaN, which JSON has no spelling for, are written as Boost.JSON writes them.
inline std::string json_number_text(double v) {
  if (!std::isfinite(v)) return boost::json::serialize(boost::json::value(v));
  char buffer[64];
  const auto written = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::scientific);
  const std::string scientific(buffer, written.ptr);  // "-1.25e-07", "0e+00"
  const size_t e = scientific.find('e');
  const bool negative = scientific[0] == '-';
  std::string digits;
  for (size_t i = negative ? 1 : 0; i < e; ++i)
    if (scientific[i] != '.') digits += scientific[i];
  const int point = std::atoi(scientific.c_str() + e + 1) + 1;  // the decimal point's place in digits
  const int n = int(digits.size());
  std::string out = negative ? "-" : "";
  if (point > -4 && point <= 16) {
    if (point <= 0) {
      out += "0.";
      out.append(size_t(-point), '0');
      out += digits;
    } else if (point >= n) {
      out += digits;
      out.append(size_t(point - n), '0');
      out += ".0";
    } else {
      out.append(digits, 0, size_t(point));
      out += '.';
      out.append(digits, size_t(point));
    }
  } else {
    out += digits[0];
    if (n > 1) {
      out += '.';
      out.append(digits, 1);
    }
    char exponent[16];
    std::snprintf(exponent, sizeof exponent, "e%c%02d", point - 1 < 0 ? '-' : '+', std::abs(point - 1));
    out += exponent;
  }
  return out;
}

inline void append_json(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::double_:
      out += json_number_text(v.get_double());
      return;
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& item : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += boost::json::serialize(boost::json::string_view(item.key()));
        out += ':';
        append_json(out, item.value());
      }
      out += '}';
      return;
    }
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const boost::json::value& x : v.get_array()) {
        if (!first) out += ',';
        first = false;
        append_json(out, x);
      }
      out += ']';
      return;
    }
    default:
      out += boost::json::serialize(v);
      return;
  }
}

// `v` as JSON text, numbers written as Python writes them.
inline std::string json_text(const boost::json::value& v) {
  std::string out;
  append_json(out, v);
  return out;
}

}  // namespace lamina::sdk
