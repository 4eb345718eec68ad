// The op set: one OpDef per op (shape rule, gradient rule, fallback), numbered by id, looked up by
// name. Built-in ops come from the families in ops/ (ops/op_set.hpp) on first use; plugin ops are
// added after them (plugin_ops.hpp).
//
// Layering of the core's runtime, lowest first (each header includes only those above it):
//   attributes.hpp, profiler.hpp     leaves
//   launch_recorder.hpp              hook: who listens to kernel launches (replay installs one)
//   op_registry.hpp                  OpDef and lookup (this file)
//   backend_entry.hpp                a registered backend's kernels, by op id
//   tensor_impl.hpp                  buffers and TensorImpl (tensor.cpp)
//   autograd.hpp                     the recorded graph and the grad mode
//   plugins.hpp                      the plugin Registry (the active backend)
//   dispatch.hpp                     run_op: shape rule, kernel or fallback, graph recording
//   ops/rules.hpp, ops/op_set.hpp    the op families' shared rules
//   plugin_ops.hpp, host_table.hpp   plugin ops, the table handed to plugins
//   replay.hpp                       step recording and replay (a LaunchRecorder)
// Calls that go back up, each through a narrow interface:
//  - the op table holds closures that run ops: op_registry.cpp fills it from the families, whose
//    rules call dispatch, which looks ops up here;
//  - dispatch.cpp and tensor.cpp report launches to the thread's LaunchRecorder, which replay.cpp
//    installs (launch_recorder.hpp);
//  - plugins.cpp hands each plugin host_table(), whose functions run ops through dispatch.
#pragma once

#include <lamina/lamina_plugin.h>
#include <lamina/ops.hpp>
#include <lamina/tensor.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lamina {

struct Node;  // autograd.hpp

// Gradient rule: given the node and the gradients of its outputs, the gradients of its inputs
// (undefined where an input gets none).
using BackwardFn = std::function<std::vector<Tensor>(const Node&, const std::vector<Tensor>&)>;

// The shapes of an op's inputs, read from the tensors themselves so that shape inference copies
// nothing on the per-op path.
class ShapeList {
 public:
  explicit ShapeList(std::span<const Tensor> tensors) : tensors_(tensors) {}
  size_t size() const { return tensors_.size(); }
  const Shape& operator[](size_t i) const { return tensors_[i].shape(); }
  std::vector<Shape> to_vector() const {
    std::vector<Shape> out;
    for (const Tensor& t : tensors_) out.push_back(t.shape());
    return out;
  }

 private:
  std::span<const Tensor> tensors_;
};

// A composition of other ops computing the same as a fused op, for backends without its kernel.
using FallbackFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&, const Attributes&)>;

struct OpDef {
  std::string name;
  int id = 0;
  bool has_kernel = true;  // false: handled by the core (reshape)
  // Output shapes from input shapes and attributes.
  std::function<std::vector<Shape>(const ShapeList&, const Attributes&)> infer;
  BackwardFn backward;             // empty: not differentiable
  bool shape_only_inputs = false;  // inputs only give the output shape (fill, dropout_mask, random_normal)
  bool broadcasts = false;         // add/sub/mul/div: kernels see inputs expanded to the output's rank
  // Optimizer updates: inputs (param, grad, slots...) and outputs (param, slots...) are the same
  // tensors, written in place; nothing is allocated and nothing is recorded for autograd.
  bool in_place_update = false;
  size_t update_min_inputs = 0, update_max_inputs = 0;  // in-place updates: how many operands they take
  bool kernel_keeps_rank = false;  // reductions: kernels see the output at input 0's rank (keepdims)
  // softmax: the output is a probability distribution over input 0, the logits, which the output
  // keeps (TensorImpl::logits) so that cross-entropy is computed from them.
  bool gives_probabilities = false;
  // A gradient op (relu_backward, conv2d_backward_data, ...): the op whose gradient rule calls it.
  // Gradient ops are the core's own; the SDK wraps every other op.
  std::string gradient_of;
  // Ops with several outputs: the gradient rule gets an undefined gradient for each output no path
  // from the loss reaches, instead of zeros, so it can skip work (batch_norm_train's statistics,
  // which feed the moving averages only). Otherwise every output's gradient is defined.
  bool optional_output_gradients = false;
  // The attributes a call may pass, by name: every built-in op declares its own (none by default), and
  // a plugin's call with any other attribute is an error that lists these. Plugin ops: unchecked.
  std::optional<std::vector<std::string>> attributes;
  // Fused ops: the same computation from basic ops, run where the backend has no kernel for this
  // op, so a backend written before the op existed keeps working.
  FallbackFn fallback;
  // Plugin ops (lamina_op_class): kernels by backend name, attached to each backend of that name.
  std::vector<std::pair<std::string, lamina_kernel_fn>> plugin_kernels;
};

// The op `name`; throws for an unknown name.
const OpDef& need_op(std::string_view name);
// The op `name`, or null.
const OpDef* find_op(const std::string& name);
// Every op, by id.
const std::vector<const OpDef*>& all_ops();
// "op 'name' with input shapes (a, b)", the start of every error about an op's operands.
std::string op_context(const std::string& op, const std::vector<Shape>& in);
std::string op_context(const std::string& op, const ShapeList& in);

// Adds `def` with the next id (plugin ops, after the built-in ones). Throws for a name already
// taken.
const OpDef& add_op(std::unique_ptr<OpDef> def);

// An op looked up once per call site.
#define LAMINA_OP(name)                            \
  ([]() -> const OpDef& {                          \
    static const OpDef& cached_op = need_op(name); \
    return cached_op;                              \
  }())

}  // namespace lamina
