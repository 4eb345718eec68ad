// The user configuration file; precedence (docs/architecture.md): API call > environment >
// this file > defaults.
#pragma once

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace lamina {

struct UserConfig {
  std::string source;   // the file it came from, empty when none
  std::string backend;  // "" = not set
  int device = 0;
  std::vector<std::string> plugin_paths;
  boost::json::object backends;
};

// Parses a configuration; unknown keys are errors naming `source` and the key.
UserConfig parse_user_config(const std::string& text, const std::string& source);
// $LAMINA_CONFIG, else ~/.lamina/lamina.json, else empty; read once.
const UserConfig& user_config();

}  // namespace lamina
