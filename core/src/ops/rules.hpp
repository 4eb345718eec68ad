// Shape and gradient helpers shared by the op families (ops/*.cpp), defined in ops/rules.cpp.
// Shape helpers throw Error naming the op and its input shapes (op_context, op_registry.hpp).
#pragma once

#include "../op_registry.hpp"

#include <lamina/ops.hpp>
#include <lamina/tensor.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lamina {

struct Node;

using Grads = std::vector<Tensor>;

// ---- Shape rules

// Throws unless the op got `n` inputs.
void need_inputs(const std::string& op, const ShapeList& in, size_t n);
// The output shapes of a one-output op (moved in: shapes end up in the output tensor).
std::vector<Shape> one_shape(Shape s);
// The output has the first input's shape.
std::vector<Shape> same_shape(const ShapeList& in, const Attributes&);
// NumPy broadcasting of two shapes.
Shape broadcast_shapes(const std::string& op, const Shape& a, const Shape& b);
// Output length of a sliding window of `k` with stride `s` over `in` padded by pad_a + pad_b.
int64_t window_out(const std::string& op, int64_t in, int64_t k, int64_t s, int64_t pad_a, int64_t pad_b);
// conv2d's output (N, OH, OW, O) for input x (N, H, W, C) and kernel w (KH, KW, C, O); attributes
// strides (2) and pads (4).
Shape conv_out(const std::string& op, const Shape& x, const Shape& w, const Attributes& a);
// A pooling op's output (N, OH, OW, C); attributes pool, strides and pads.
Shape pool_out(const std::string& op, const Shape& x, const Attributes& a);
// (M, N) of matmul's result, checking the inner dimensions.
Shape matmul_out(const std::string& op, const ShapeList& in, const Attributes& a);

// The activation a fused op applies to its result. Each is differentiable from its output alone,
// which is what lets the fused op keep no pre-activation tensor.
enum class Activation { linear, relu, sigmoid, tanh };
// The attribute "activation" (linear when absent); throws for another value.
Activation read_activation(const std::string& op, const Attributes& a);
// The fused op's bias: one value per output channel, shape (n,).
void check_bias(const std::string& op, const ShapeList& in, size_t index, int64_t n);

// Optimizer updates: every input has the parameter's shape, and the outputs are the parameter and
// the slots (every input but the gradient, input 1).
std::vector<Shape> update_shapes(const std::string& op, const ShapeList& in, size_t min_inputs,
                                 size_t max_inputs);

// ---- Gradient helpers

// Sums `g` down to `shape` (undoing broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);
// Whether input i of the node needs a gradient (skips e.g. the data gradient of the first layer).
bool wants(const Node& n, size_t i);
Tensor apply_activation(Activation act, const Tensor& z);
// The gradient before the activation, from the activation's output y and the gradient dy.
Tensor activation_gradient(Activation act, const Tensor& y, const Tensor& dy);

}  // namespace lamina
