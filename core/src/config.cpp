// The user configuration file (~/.lamina/lamina.json or $LAMINA_CONFIG).
#include "config.hpp"

#include <lamina/error.hpp>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace lamina {

static const char* const kKnownKeys[] = {"backend", "device", "plugin_paths", "backends"};

UserConfig parse_user_config(const std::string& text, const std::string& source) {
  UserConfig c;
  c.source = source;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) throw Error(source + ": not valid JSON (" + ec.message() + ")");
  if (!v.is_object()) throw Error(source + ": the configuration must be a JSON object");
  for (const auto& [key, value] : v.as_object()) {
    std::string k(key);
    bool known = false;
    for (const char* name : kKnownKeys) known |= k == name;
    if (!known)
      throw Error(source + ": unknown key '" + k + "' (known keys: backend, device, plugin_paths, backends)");
    if (k == "backend") {
      if (!value.is_string()) throw Error(source + ": key 'backend' must be a string such as \"onednn\"");
      c.backend = std::string(value.as_string());
    } else if (k == "device") {
      if (!value.is_int64() || value.as_int64() < 0)
        throw Error(source + ": key 'device' must be a device index (0, 1, ...)");
      c.device = value.as_int64();
    } else if (k == "plugin_paths") {
      if (!value.is_array()) throw Error(source + ": key 'plugin_paths' must be a list of folders");
      for (const auto& p : value.as_array()) {
        if (!p.is_string()) throw Error(source + ": key 'plugin_paths' must hold strings");
        c.plugin_paths.emplace_back(p.as_string());
      }
    } else if (k == "backends") {
      if (!value.is_object())
        throw Error(source + ": key 'backends' must be an object of per-backend settings");
      c.backends = value.as_object();
    }
  }
  return c;
}

boost::json::object plugin_settings(const UserConfig& config, const std::string& name) {
  auto lower = [](std::string s) {
    for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  };
  boost::json::object settings;
  for (const auto& [key, value] : config.backends) {
    if (lower(std::string(key)) != lower(name)) continue;
    if (!value.is_object())
      throw Error(config.source + ": 'backends." + std::string(key) +
                  "' must be an object of settings, such as " + "{\"device\": 1}");
    settings = value.as_object();
  }
  if (config.device && !settings.contains("device")) settings["device"] = *config.device;
  return settings;
}

const UserConfig& user_config() {
  static const UserConfig config = [] {
    std::string path;
    if (const char* env = std::getenv("LAMINA_CONFIG"); env && *env) {
      path = env;
      if (!std::filesystem::exists(path))
        throw Error("LAMINA_CONFIG names " + path + ", which does not exist");
    } else if (const char* home = std::getenv("HOME"); home && *home) {
      path = std::string(home) + "/.lamina/lamina.json";
      if (!std::filesystem::exists(path)) return UserConfig{};
    } else {
      return UserConfig{};
    }
    std::ifstream in(path);
    if (!in) throw Error("cannot read the configuration file " + path);
    std::stringstream s;
    s << in.rdbuf();
    return parse_user_config(s.str(), path);
  }();
  return config;
}

}  // namespace lamina
