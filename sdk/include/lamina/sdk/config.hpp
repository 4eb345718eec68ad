// Reading Keras layer and optimizer configs (JSON object text) inside plugins, with errors that
// name the layer and the key. Uses Boost.JSON; only strings cross the plugin boundary.
#pragma once

#include <lamina/sdk/json.hpp>
#include <lamina/sdk/plugin.hpp>

#include <boost/json.hpp>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace lamina::sdk {

// A JSON value as a person would write it: 2.5 rather than Boost's 2.5E0.
inline std::string value_text(const boost::json::value& v) {
  if (v.is_double()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v.as_double());
    return buf;
  }
  return boost::json::serialize(v);
}

class Config {
 public:
  // `what` names the object in messages, e.g. "Dense".
  Config(const std::string& json_text, std::string what) : what_(std::move(what)) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(json_text, ec);
    if (ec || !v.is_object()) throw Error(what_ + ": config is not a JSON object");
    object_ = v.as_object();
    if (auto* n = object_.if_contains("name"); n && n->is_string()) {
      name_ = std::string(n->as_string());
      what_ += " '" + name_ + "'";
    }
  }
  const std::string& name() const { return name_; }
  const boost::json::object& object() const { return object_; }
  bool has(const char* key) const {
    auto* v = object_.if_contains(key);
    return v && !v->is_null();
  }

  int64_t require_int(const char* key) const {
    if (!has(key)) throw Error(what_ + ": config key '" + key + "' is missing");
    return to_int(key, object_.at(key));
  }
  int64_t get_int(const char* key, int64_t fallback) const {
    return has(key) ? to_int(key, object_.at(key)) : fallback;
  }
  double get_float(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const auto& v = object_.at(key);
    if (v.is_double()) return v.as_double();
    if (v.is_int64()) return double(v.as_int64());
    if (v.is_uint64()) return double(v.as_uint64());
    throw Error(what_ + ": config key '" + key + "' must be a number, got " + value_text(v));
  }
  bool get_bool(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const auto& v = object_.at(key);
    if (!v.is_bool()) throw Error(what_ + ": config key '" + key + "' must be true or false");
    return v.as_bool();
  }
  std::string get_string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const auto& v = object_.at(key);
    if (!v.is_string())
      throw Error(what_ + ": config key '" + key + "' must be a string, got " + value_text(v));
    return std::string(v.as_string());
  }
  // One of `allowed` (compared case-insensitively, returned in lower case).
  std::string get_choice(const char* key, const std::string& fallback,
                         std::initializer_list<const char*> allowed) const {
    std::string s = get_string(key, fallback);
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    std::string list;
    for (const char* a : allowed) {
      if (s == a) return s;
      list += std::string(list.empty() ? "" : ", ") + "'" + a + "'";
    }
    throw Error(what_ + ": config key '" + key + "' is '" + s + "'; use one of " + list);
  }
  // A pair such as kernel_size: an integer n means (n, n); a list must hold two positive integers.
  std::array<int64_t, 2> get_pair(const char* key, std::optional<std::array<int64_t, 2>> fallback) const {
    if (!has(key)) {
      if (fallback) return *fallback;
      throw Error(what_ + ": config key '" + key + "' is missing");
    }
    const auto& v = object_.at(key);
    std::array<int64_t, 2> out{};
    if (v.is_array() && v.as_array().size() == 2) {
      out = {to_int(key, v.as_array()[0]), to_int(key, v.as_array()[1])};
    } else if (v.is_number()) {
      out = {to_int(key, v), to_int(key, v)};
    } else {
      throw Error(what_ + ": config key '" + key + "' must be an integer or a list of two, got " +
                  value_text(v));
    }
    if (out[0] < 1 || out[1] < 1)
      throw Error(what_ + ": config key '" + key + "' must be positive, got " + value_text(v));
    return out;
  }
  // The raw JSON text of a key (e.g. an initializer), or `fallback` when absent.
  std::string get_json(const char* key, const std::string& fallback) const {
    return has(key) ? boost::json::serialize(object_.at(key)) : fallback;
  }
  [[noreturn]] void fail(const std::string& message) const { throw Error(what_ + ": " + message); }
  // For settings where a misspelt key must not pass silently (Keras configs ignore unknown keys).
  void only_keys(std::initializer_list<const char*> known) const {
    for (const auto& item : object_) {
      bool ok = false;
      std::string list;
      for (const char* k : known) {
        ok |= item.key() == k;
        list += std::string(list.empty() ? "" : ", ") + "'" + k + "'";
      }
      if (!ok) fail("unknown key '" + std::string(item.key()) + "' (known: " + list + ")");
    }
  }

 private:
  int64_t to_int(const char* key, const boost::json::value& v) const {
    if (v.is_int64()) return v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= uint64_t(INT64_MAX)) return int64_t(v.as_uint64());
    // 4.0 is an integer; 1e100 is not one lamina can hold (and converting it would be undefined).
    if (v.is_double()) {
      double d = v.as_double();
      if (d >= -9.2e18 && d <= 9.2e18 && d == double(int64_t(d))) return int64_t(d);
    }
    throw Error(what_ + ": config key '" + key + "' must be an integer, got " + value_text(v));
  }
  std::string what_;
  std::string name_;
  boost::json::object object_;
};

// Serialises a JSON object built in place: to_json({{"units", 10}, ...}), numbers as Python's json
// writes them (json.hpp).
inline std::string to_json(const boost::json::object& o) {
  return json_text(o);
}

}  // namespace lamina::sdk
