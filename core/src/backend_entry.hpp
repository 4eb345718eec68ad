// A registered backend as the core calls it: the plugin's table plus kernels indexed by op id.
// The Registry (plugins.hpp) owns these; tensors point to the one owning their memory.
#pragma once

#include "op_registry.hpp"

#include <lamina/lamina_plugin.h>

#include <string>
#include <vector>

namespace lamina {

struct PluginRecord;  // plugins.cpp

struct BackendEntry {
  lamina_backend table{};
  std::string name;
  std::vector<lamina_kernel_fn> kernels;  // by OpDef::id, null where unsupported
  PluginRecord* plugin = nullptr;
  bool supports(const OpDef& op) const { return size_t(op.id) < kernels.size() && kernels[size_t(op.id)]; }
};

}  // namespace lamina
