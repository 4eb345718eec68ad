// Ops that plugins add (lamina_host.register_op): a shape rule and kernels from the plugin, a
// fallback that runs the plugin's composition of existing ops, and the gradient of that
// composition. Above dispatch and autograd.
#pragma once

#include "op_registry.hpp"

#include <lamina/lamina_plugin.h>

namespace lamina {

// Adds a plugin's op to the op set; its gradient is that of its composition. Throws for a name
// already taken or an incomplete table.
const OpDef& define_plugin_op(const lamina_op_class& op);

}  // namespace lamina
