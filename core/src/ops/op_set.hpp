// Where the built-in ops are defined: one function per family, mirroring the kernel files every
// backend has (backends/reference/{elementwise,reduce,matmul,conv,pool,random,update}.cpp).
// op_registry.cpp calls them in the order listed here; an op's id is its position, so families
// are only ever appended.
//
// Writing a family (a new ops/<family>.cpp, declared below and called last in op_registry.cpp):
//
//   void define_layout_ops(OpSet& set) {
//     OpDef& d = set.def("transpose");          // the next id; name as in docs/ops.md
//     d.infer = [](const ShapeList& in, const Attributes& a) {
//       need_inputs("transpose", in, 1);        // shape rules from ops/rules.hpp
//       ...
//       return one_shape(out);
//     };
//     d.backward = [](const Node& n, const Grads& g) { ... };  // through the ops API or run_op
//   }
//
// An OpDef's fields (op_registry.hpp) say what the core does around the kernel:
//   infer              output shapes from input shapes and attributes; throws with op_context()
//   backward           gradient rule; empty = not differentiable. Return one gradient per input,
//                      undefined where !wants(node, i)
//   fallback           the same result from other ops, run where a backend lacks the kernel
//   has_kernel         false: the core computes it itself (reshape)
//   shape_only_inputs  the inputs only give the output shape; kernels see none
//   broadcasts         kernels see every input expanded to the output's rank
//   in_place_update    outputs are the inputs 0, 2, 3, ... written in place (optimizer updates)
//   kernel_keeps_rank  reductions: kernels see the output at the input's rank (reduce_sum's keepdims)
//   gives_probabilities the output is softmax(input 0): cross-entropy reads the logits instead
//   gradient_of        a gradient op: the op whose gradient rule calls it (the SDK wraps the rest)
//   optional_output_gradients  the gradient rule gets undefined gradients for the outputs no path
//                      from the loss reaches (a multi-output op whose extra outputs are statistics)
//   attributes         the attribute names a call may pass: def()'s second argument
// Backends learn of a new op only by name (lamina_backend's kernel list), so an op without a
// fallback needs a kernel in every backend meant to run it (docs/ops.md lists the contracts).
#pragma once

#include "../op_registry.hpp"
#include "rules.hpp"

#include <memory>
#include <string>
#include <vector>

namespace lamina {

// Adds ops to the table under construction, numbering them in order.
class OpSet {
 public:
  explicit OpSet(std::vector<std::unique_ptr<OpDef>>& defs) : defs_(defs) {}
  // A new op `name` with the next id, taking the attributes named; the caller fills in its rules.
  OpDef& def(const std::string& name, std::vector<std::string> attributes = {}) {
    defs_.push_back(std::make_unique<OpDef>());
    defs_.back()->name = name;
    defs_.back()->attributes = std::move(attributes);
    defs_.back()->id = int(defs_.size() - 1);
    return *defs_.back();
  }

 private:
  std::vector<std::unique_ptr<OpDef>>& defs_;
};

// In op_registry.cpp's order:
void define_elementwise_ops(OpSet& set);  // copy, fill, unary ops and their backward ops, add/sub/mul/div,
                                          // erf, sign abs floor round, comparisons, where, max/min, pow
void define_reduce_ops(OpSet& set);       // reduce_sum, softmax, log_softmax
void define_loss_ops(OpSet& set);         // mean_squared_error, softmax_cross_entropy (+ _backward)
void define_matmul_ops(OpSet& set);       // matmul, matmul_bias
void define_conv_ops(OpSet& set);         // conv2d, conv2d_bias and their backward ops, conv2d_transpose
void define_pool_ops(OpSet& set);         // max_pool2d, avg_pool2d and their backward ops
void define_random_ops(OpSet& set);       // dropout_mask, random_normal
void define_shape_ops(OpSet& set);        // reshape
void define_update_ops(OpSet& set);       // sgd, adadelta, adam, rmsprop updates
void define_layout_ops(OpSet& set);       // concat, slice, slice_backward, pad, transpose
void define_gather_ops(OpSet& set);       // gather, gather_backward
void define_normalization_ops(OpSet& set);  // batch_norm_train (+ _backward), batch_norm_inference

}  // namespace lamina
