// Choosing the compute backend and looking at the plugins lamina found.
#pragma once

#include <string>
#include <vector>

namespace lamina {

// Selects the backend for everything that follows: a name such as "onednn" or "reference", or
// "auto" for the best usable one. Throws, listing the available backends, for an unknown name.
void set_backend(const std::string& name);
// The active backend's name (resolving "auto", the config file and LAMINA_BACKEND on first use).
std::string backend();
// Names of the usable backends, best first.
std::vector<std::string> available_backends();

// Adds a folder searched for plugins before every other (call before the first model is built).
void add_plugin_path(const std::string& folder);

struct PluginInfo {
  std::string name;
  std::string kind;  // "backend", "layer", "optimizer" (several joined by '+')
  std::string version;
  std::string path;
  std::string abi;  // "1.0"
  std::vector<std::string> provides;
  bool usable = false;
  std::string reason;  // why not usable; the device for a usable backend
  int score = 0;
};
// Every plugin found, loaded and checked (for `lamina plugins`).
std::vector<PluginInfo> list_plugins();
// Folders searched, in order.
std::vector<std::string> plugin_search_path();

// Seeds lamina's random number generator (weights, shuffling, dropout): same seed, same run
// on the same backend.
void set_random_seed(uint64_t seed);

}  // namespace lamina
