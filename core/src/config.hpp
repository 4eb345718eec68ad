// The user configuration file; precedence (docs/architecture.md): API call > environment >
// this file > defaults.
#pragma once

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace lamina {

struct UserConfig {
  std::string source;             // the file it came from, empty when none
  std::string backend;            // "" = not set
  std::optional<int64_t> device;  // the top-level "device": a default for every backend's settings
  std::vector<std::string> plugin_paths;
  boost::json::object backends;  // per-plugin settings by plugin name
};

// The settings handed to plugin `name` (lamina_plugin_configure): its `backends` entry (matched
// case-insensitively), plus the top-level "device" when the entry has none. Empty object when
// unset. Throws when the entry is not an object.
boost::json::object plugin_settings(const UserConfig& config, const std::string& name);

// Parses a configuration; unknown keys are errors naming `source` and the key.
UserConfig parse_user_config(const std::string& text, const std::string& source);
// $LAMINA_CONFIG, else ~/.lamina/lamina.json, else empty; read once.
const UserConfig& user_config();

}  // namespace lamina
