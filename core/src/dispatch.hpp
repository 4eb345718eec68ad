// Running an op: shape inference, the active backend's kernel (or the op's fallback, or the core's
// own view for reshape), in-place updates, and recording the result for autograd. Every op the
// core, a layer or an optimizer runs comes through run_op (lamina/ops.hpp has the by-name form and
// assign()).
// Depends on op_registry.hpp, backend_entry.hpp, tensor_impl.hpp, autograd.hpp, plugins.hpp (the
// active backend) and, through launch_recorder.hpp only, on step replay.
#pragma once

#include "op_registry.hpp"

#include <lamina/ops.hpp>
#include <lamina/tensor.hpp>

#include <span>
#include <vector>

namespace lamina {

// Runs `op` on `given`.
std::vector<Tensor> run_op(const OpDef& op, const std::vector<Tensor>& given, const Attributes& attrs);
// run_op for a name given as a C string by a plugin (looked up through a per-thread cache).
std::vector<Tensor> run_named_op(const char* name, const std::vector<Tensor>& given, const Attributes& attrs);
// The op a plugin names with a C string (through the same cache).
const OpDef& named_op(const char* name);
// An optimizer's in-place update as a plugin calls it, in its common case: the parameter, its
// gradient and slots all of one shape and in the active backend's memory, none recorded for
// autograd, a backend with the kernel, and attributes the op declares, each once. Then the kernel
// gets the plugin's operands and attributes directly, without the attribute objects, shape lists
// and output lists of run_op, and the call returns true; an optimizer step then costs about its
// kernels. Otherwise it does nothing and returns false: run_named_op takes the call, and gives
// the errors.
bool run_plugin_update(const OpDef& op, std::span<const Tensor> given, const lamina_attrs* attrs);

}  // namespace lamina
