// The plugin Registry: discovery, loading and lookup of backends, layers, optimizers and
// communicators (plugins.cpp). One per process. Dispatch asks it for the active backend; plugins
// reach the core through the host table (host_table.hpp), which the Registry hands to each plugin's
// init.
#pragma once

#include "backend_entry.hpp"

#include <lamina/lamina_plugin.h>
#include <lamina/backend.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lamina {

struct PluginRecord;

struct LayerPlugin {
  lamina_layer_class table{};
  PluginRecord* plugin = nullptr;
};
struct OptimizerPlugin {
  lamina_optimizer_class table{};
  PluginRecord* plugin = nullptr;
};

class Registry {
 public:
  static Registry& get();
  BackendEntry& active_backend();
  void set_backend(const std::string& name);
  std::string active_backend_name();
  std::vector<BackendEntry*> usable_backends();  // best first
  const LayerPlugin& layer(const std::string& class_name);
  const OptimizerPlugin& optimizer(const std::string& class_name);
  void add_path(const std::string& folder);
  std::vector<std::string> search_path();
  std::vector<PluginInfo> list();

  // used by the host table during lamina_plugin_init
  void register_backend(const lamina_backend& table);
  void register_layer(const lamina_layer_class& table);
  void register_optimizer(const lamina_optimizer_class& table);
  void register_communicator(const lamina_communicator& table);
  // The registered communicator `name`, loading communicator plugins; nullptr with `why` if none.
  const lamina_communicator* communicator(const std::string& name, std::string& why);
  void register_op(const lamina_op_class& table);

  struct Impl;
  ~Registry();

 private:
  Registry();
  std::unique_ptr<Impl> impl_;
};

// A shared library a plugin's manifest says the machine must have.
struct NeededLibrary {
  std::string library;  // as dlopen takes it: "libcuda.so.1"
  std::string what;     // for people: "the NVIDIA driver" (may be empty)
};

// A plugin manifest (<target>.json beside the library) as discovery reads it. Throws Error saying
// what is malformed; `library` is as written (relative to the manifest's folder).
struct PluginManifest {
  std::string name, kind, version, library;
  std::vector<std::string> provides;
  // A backend's highest possible lamina_plugin_score: `auto` need not load a backend that cannot
  // outscore one already loaded. Absent: it could score anything, so `auto` loads it.
  std::optional<int32_t> score_at_most;
  // Shared libraries the machine must have for the plugin to be usable, each with what it is (e.g.
  // libcuda.so.1, "the NVIDIA driver"); where one is missing the plugin is reported unusable without
  // being loaded.
  std::vector<NeededLibrary> needs;
};
PluginManifest parse_plugin_manifest(const std::string& text);

}  // namespace lamina
