// The conformance table: every op of docs/ops.md, on every backend, against the reference backend;
// then finite-difference checks of every gradient rule, on every backend.
#include "support.hpp"

// The fallback cases hide a backend's kernels through the registry the core itself uses.
#include "../core/src/host_table.hpp"
#include "../core/src/plugins.hpp"

#include <algorithm>
#include <functional>

using namespace lamina;
using lamina::test::max_abs_diff;
using lamina::test::random_tensor;

namespace {

struct Case {
  std::string name;  // what a failure prints
  std::string op;
  std::vector<Shape> inputs;
  Attributes attrs;
  float tolerance = 1e-5f;
  float lo = -1.0f, hi = 1.0f;  // input range (log and sqrt need positive inputs)
  int index_input = -1;         // gather: this input holds row indices, whole numbers in [0, index_rows)
  int64_t index_rows = 0;
  float step = 0.0f;  // nonzero: inputs snapped to multiples of it (ties, halves, zeros)
};

Attributes conv_attrs(std::vector<int64_t> strides, std::vector<int64_t> pads) {
  return Attributes().set("strides", strides).set("pads", pads);
}
// A dilated or grouped convolution's attributes.
Attributes conv_attrs(std::vector<int64_t> strides, std::vector<int64_t> pads, std::vector<int64_t> dilation,
                      int64_t groups) {
  return conv_attrs(std::move(strides), std::move(pads)).set("dilation", dilation).set("groups", groups);
}
Attributes pool_attrs(std::vector<int64_t> pool, std::vector<int64_t> strides, std::vector<int64_t> pads) {
  return Attributes().set("pool", pool).set("strides", strides).set("pads", pads);
}

std::vector<Case> conformance_table() {
  std::vector<Case> t;
  for (const char* op : {"copy", "neg", "exp", "square", "relu", "sigmoid", "tanh"})
    t.push_back({op, op, {{3, 17}}, {}, 1e-5f});
  // Far from zero: range reduction with large exponents, and saturation where e^x leaves the floats.
  t.push_back({"exp over [-12, 12]", "exp", {{3, 17}}, {}, 1e-5f, -12.0f, 12.0f});
  t.push_back({"sigmoid over [-100, 100]", "sigmoid", {{4, 17}}, {}, 1e-5f, -100.0f, 100.0f});
  t.push_back({"tanh over [-60, 60]", "tanh", {{4, 17}}, {}, 1e-5f, -60.0f, 60.0f});
  t.push_back({"erf", "erf", {{3, 17}}, {}, 1e-5f, -3.0f, 3.0f});
  t.push_back({"log", "log", {{3, 17}}, {}, 1e-5f, 0.1f, 3.0f});
  t.push_back({"sqrt", "sqrt", {{3, 17}}, {}, 1e-5f, 0.0f, 3.0f});
  t.push_back({"scale", "scale", {{4, 9}}, Attributes().set("alpha", 2.5).set("beta", -1.0)});
  t.push_back({"clip", "clip", {{4, 9}}, Attributes().set("low", -0.3).set("high", 0.4)});
  t.push_back({"fill", "fill", {}, Attributes().set("shape", {3, 5}).set("value", 0.75)});
  for (const char* op : {"relu_backward", "sigmoid_backward", "tanh_backward"})
    t.push_back({op, op, {{5, 7}, {5, 7}}});
  t.push_back(
      {"clip_backward", "clip_backward", {{5, 7}, {5, 7}}, Attributes().set("low", -0.3).set("high", 0.4)});
  for (const char* op : {"add", "sub", "mul"}) {
    t.push_back({std::string(op) + " same shape", op, {{6, 5}, {6, 5}}});
    t.push_back({std::string(op) + " (4,1,3) with (1,5,3)", op, {{4, 1, 3}, {1, 5, 3}}});
    t.push_back({std::string(op) + " bias (2,5,5,8) with (1,1,1,8)", op, {{2, 5, 5, 8}, {1, 1, 1, 8}}});
  }
  t.push_back({"div (8,10) by (1,10)", "div", {{8, 10}, {1, 10}}, {}, 1e-5f, 0.5f, 1.5f});
  t.push_back({"reduce_sum over axis 0", "reduce_sum", {{6, 7}}, Attributes().set("axes", {0}), 1e-5f});
  // A Dense layer's bias gradient: a batch of rows summed into one row wider than a vector group.
  t.push_back({"reduce_sum over axis 0, bias gradient (16,100)",
               "reduce_sum",
               {{16, 100}},
               Attributes().set("axes", {0}),
               1e-5f});
  t.push_back({"reduce_sum over axes 0,1,2",
               "reduce_sum",
               {{3, 4, 5, 6}},
               Attributes().set("axes", {0, 1, 2}),
               1e-4f});
  t.push_back(
      {"reduce_sum over everything", "reduce_sum", {{30, 40}}, Attributes().set("axes", {0, 1}), 1e-4f});
  // One long row: a backend may split it over its threads.
  t.push_back({"reduce_sum over everything, large",
               "reduce_sum",
               {{300, 400}},
               Attributes().set("axes", {0, 1}),
               1e-4f});
  t.push_back({"softmax", "softmax", {{5, 10}}, {}, 1e-6f, -5.0f, 5.0f});
  t.push_back({"log_softmax", "log_softmax", {{5, 10}}, {}, 1e-5f, -5.0f, 5.0f});
  t.push_back({"matmul", "matmul", {{7, 5}, {5, 6}}, {}, 1e-5f});
  t.push_back({"matmul transpose_a", "matmul", {{5, 7}, {5, 6}}, Attributes().set("transpose_a", 1), 1e-5f});
  t.push_back({"matmul transpose_b", "matmul", {{7, 5}, {6, 5}}, Attributes().set("transpose_b", 1), 1e-5f});
  t.push_back({"matmul both transposed",
               "matmul",
               {{5, 7}, {6, 5}},
               Attributes().set("transpose_a", 1).set("transpose_b", 1),
               1e-5f});
  t.push_back({"matmul seed dense 32x3200 · 3200x128", "matmul", {{32, 3200}, {3200, 128}}, {}, 1e-3f});
  // The seed MLP's products and gradients: small ones (a few thousand multiply-adds, where backends
  // may loop rather than call a library: every loop order) and the 100-wide ones, each transpose.
  t.push_back({"matmul seed MLP 16x2 · 2x100", "matmul", {{16, 2}, {2, 100}}, {}, 1e-5f});
  t.push_back({"matmul seed MLP 16x100 · 100x1", "matmul", {{16, 100}, {100, 1}}, {}, 1e-5f});
  t.push_back({"matmul seed MLP (16x100)^T · 16x1",
               "matmul",
               {{16, 100}, {16, 1}},
               Attributes().set("transpose_a", 1),
               1e-5f});
  t.push_back({"matmul seed MLP 16x1 · (100x1)^T",
               "matmul",
               {{16, 1}, {100, 1}},
               Attributes().set("transpose_b", 1),
               1e-5f});
  t.push_back({"matmul 9x7 · 7x3", "matmul", {{9, 7}, {7, 3}}, {}, 1e-5f});
  t.push_back({"matmul 300x4 both transposed",
               "matmul",
               {{4, 300}, {2, 4}},
               Attributes().set("transpose_a", 1).set("transpose_b", 1),
               1e-5f});
  t.push_back({"matmul seed MLP (16x100)^T · 16x100",
               "matmul",
               {{16, 100}, {16, 100}},
               Attributes().set("transpose_a", 1),
               1e-5f});
  t.push_back({"matmul seed MLP 16x100 · (100x100)^T",
               "matmul",
               {{16, 100}, {100, 100}},
               Attributes().set("transpose_b", 1),
               1e-5f});
  // medium products with ragged edges: row blocks of 8 with 5 and 7 left over, column panels of 32
  // with 15 and 18 left over
  t.push_back({"matmul 13x40 · 40x47", "matmul", {{13, 40}, {40, 47}}, {}, 1e-5f});
  t.push_back({"matmul_bias (40x23)^T · 40x50 relu",
               "matmul_bias",
               {{40, 23}, {40, 50}, {50}},
               Attributes().set("transpose_a", 1).set("activation", std::string("relu")),
               1e-5f});
  t.push_back({"matmul 100x30 both transposed",
               "matmul",
               {{30, 100}, {40, 30}},
               Attributes().set("transpose_a", 1).set("transpose_b", 1),
               1e-5f});
  // transposed b with few rows: ragged 8x8 tiles of both transposes (13 = 8 + 5 rows, 37 = 32 + 5
  // columns), and an op(a) that is already contiguous when transposed
  t.push_back({"matmul 13x37 · (45x37)^T",
               "matmul",
               {{13, 37}, {45, 37}},
               Attributes().set("transpose_b", 1),
               1e-5f});
  t.push_back({"matmul 11x60 both transposed",
               "matmul",
               {{60, 11}, {30, 60}},
               Attributes().set("transpose_a", 1).set("transpose_b", 1),
               1e-5f});
  // fused losses: prediction and target of one shape → the loss; backward: p, t, dloss → dp
  t.push_back({"mean_squared_error seed MLP", "mean_squared_error", {{16, 1}, {16, 1}}, {}, 1e-6f});
  t.push_back({"mean_squared_error (8,5)", "mean_squared_error", {{8, 5}, {8, 5}}, {}, 1e-6f});
  t.push_back({"mean_squared_error large", "mean_squared_error", {{300, 784}, {300, 784}}, {}, 1e-5f});
  t.push_back(
      {"mean_squared_error_backward", "mean_squared_error_backward", {{8, 5}, {8, 5}, {}}, {}, 1e-6f});
  t.push_back({"mean_squared_error_backward large",
               "mean_squared_error_backward",
               {{300, 784}, {300, 784}, {}},
               {},
               1e-6f});
  t.push_back({"softmax_cross_entropy", "softmax_cross_entropy", {{6, 10}, {6, 10}}, {}, 1e-5f, 0.0f, 4.0f});
  t.push_back({"softmax_cross_entropy (2,3,4)", "softmax_cross_entropy", {{2, 3, 4}, {2, 3, 4}}, {}, 1e-5f});
  t.push_back({"softmax_cross_entropy seed batch",
               "softmax_cross_entropy",
               {{128, 10}, {128, 10}},
               {},
               1e-5f,
               0.0f,
               4.0f});
  t.push_back({"softmax_cross_entropy_backward",
               "softmax_cross_entropy_backward",
               {{6, 10}, {6, 10}, {}},
               {},
               1e-5f,
               0.0f,
               4.0f});
  t.push_back({"softmax_cross_entropy_backward seed batch",
               "softmax_cross_entropy_backward",
               {{128, 10}, {128, 10}, {}},
               {},
               1e-5f});
  // conv2d: the seed's layers, strides, and Keras' "same" padding with its odd extra row at the bottom
  t.push_back({"conv2d seed layer 1",
               "conv2d",
               {{2, 28, 28, 1}, {5, 5, 1, 8}},
               conv_attrs({1, 1}, {0, 0, 0, 0}),
               1e-4f});
  t.push_back(
      {"conv2d 3x3 valid", "conv2d", {{2, 9, 9, 3}, {3, 3, 3, 4}}, conv_attrs({1, 1}, {0, 0, 0, 0}), 1e-4f});
  t.push_back({"conv2d stride 2 same",
               "conv2d",
               {{2, 8, 8, 3}, {3, 3, 3, 4}},
               conv_attrs({2, 2}, {0, 1, 0, 1}),
               1e-4f});
  t.push_back(
      {"conv2d 5x5 same", "conv2d", {{1, 7, 6, 4}, {5, 5, 4, 6}}, conv_attrs({1, 1}, {2, 2, 2, 2}), 1e-4f});
  t.push_back({"conv2d_backward_data",
               "conv2d_backward_data",
               {{2, 7, 7, 4}, {3, 3, 3, 4}},
               conv_attrs({1, 1}, {0, 0, 0, 0}).set("input_shape", {2, 9, 9, 3}),
               1e-4f});
  t.push_back({"conv2d_backward_data stride 2 same",
               "conv2d_backward_data",
               {{2, 4, 4, 4}, {3, 3, 3, 4}},
               conv_attrs({2, 2}, {0, 1, 0, 1}).set("input_shape", {2, 8, 8, 3}),
               1e-4f});
  // conv2d_transpose: Keras' Conv2DTranspose geometries (stride 2 "same" with its odd row at the
  // bottom, "valid" with output_padding leaving a row past the last window, a 4x4 kernel)
  t.push_back({"conv2d_transpose stride 2 same",
               "conv2d_transpose",
               {{2, 4, 4, 4}, {3, 3, 3, 4}},
               conv_attrs({2, 2}, {0, 1, 0, 1}).set("output_size", {8, 8}),
               1e-4f});
  t.push_back({"conv2d_transpose stride 2 valid output_padding 1",
               "conv2d_transpose",
               {{2, 3, 4, 5}, {3, 3, 2, 5}},
               conv_attrs({2, 2}, {0, 0, 0, 0}).set("output_size", {8, 10}),
               1e-4f});
  t.push_back({"conv2d_transpose 4x4 stride 2 same",
               "conv2d_transpose",
               {{1, 7, 7, 8}, {4, 4, 16, 8}},
               conv_attrs({2, 2}, {1, 1, 1, 1}).set("output_size", {14, 14}),
               1e-4f});
  t.push_back({"conv2d_transpose stride 1",
               "conv2d_transpose",
               {{2, 5, 5, 3}, {3, 3, 2, 3}},
               conv_attrs({1, 1}, {1, 1, 1, 1}).set("output_size", {5, 5}),
               1e-4f});
  t.push_back({"conv2d_backward_filter",
               "conv2d_backward_filter",
               {{2, 9, 9, 3}, {2, 7, 7, 4}},
               conv_attrs({1, 1}, {0, 0, 0, 0}).set("filter_shape", {3, 3, 3, 4}),
               1e-4f});
  t.push_back({"conv2d_backward_filter stride 2 same",
               "conv2d_backward_filter",
               {{2, 8, 8, 3}, {2, 4, 4, 4}},
               conv_attrs({2, 2}, {0, 1, 0, 1}).set("filter_shape", {3, 3, 3, 4}),
               1e-4f});
  // dilation and groups: a dilated "same" kernel, unequal dilations, two groups with strides, a
  // depthwise convolution (groups = input channels) with two outputs per channel, and wide groups
  // (vector-width channel blocks inside a group)
  t.push_back({"conv2d dilation 2 same",
               "conv2d",
               {{2, 9, 9, 3}, {3, 3, 3, 4}},
               conv_attrs({1, 1}, {2, 2, 2, 2}, {2, 2}, 1),
               1e-4f});
  t.push_back({"conv2d dilation [2, 3] valid",
               "conv2d",
               {{1, 10, 11, 4}, {3, 2, 4, 5}},
               conv_attrs({1, 1}, {0, 0, 0, 0}, {2, 3}, 1),
               1e-4f});
  t.push_back({"conv2d groups 2 stride 2 same",
               "conv2d",
               {{2, 8, 8, 4}, {3, 3, 2, 6}},
               conv_attrs({2, 2}, {0, 1, 0, 1}, {1, 1}, 2),
               1e-4f});
  t.push_back({"conv2d depthwise multiplier 2",
               "conv2d",
               {{2, 7, 7, 3}, {3, 3, 1, 6}},
               conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 3),
               1e-4f});
  t.push_back({"conv2d depthwise 16 channels dilation 2",
               "conv2d",
               {{1, 8, 8, 16}, {3, 3, 1, 16}},
               conv_attrs({1, 1}, {2, 2, 2, 2}, {2, 2}, 16),
               1e-4f});
  t.push_back({"conv2d groups 2 of 8 channels",
               "conv2d",
               {{2, 6, 6, 16}, {3, 3, 8, 16}},
               conv_attrs({1, 1}, {0, 0, 0, 0}, {1, 1}, 2),
               1e-4f});
  t.push_back({"conv2d_bias depthwise dilation 2 relu",
               "conv2d_bias",
               {{2, 9, 9, 4}, {3, 3, 1, 8}, {8}},
               conv_attrs({1, 1}, {2, 2, 2, 2}, {2, 2}, 4).set("activation", std::string("relu")),
               1e-4f});
  t.push_back({"conv2d_bias groups 3 tanh",
               "conv2d_bias",
               {{2, 7, 7, 6}, {3, 3, 2, 9}, {9}},
               conv_attrs({1, 1}, {0, 0, 0, 0}, {1, 1}, 3).set("activation", std::string("tanh")),
               1e-4f});
  t.push_back({"conv2d_backward_data dilation 2 same",
               "conv2d_backward_data",
               {{2, 9, 9, 4}, {3, 3, 3, 4}},
               conv_attrs({1, 1}, {2, 2, 2, 2}, {2, 2}, 1).set("input_shape", {2, 9, 9, 3}),
               1e-4f});
  t.push_back({"conv2d_backward_data dilation [2, 3] valid",
               "conv2d_backward_data",
               {{1, 6, 5, 5}, {3, 2, 4, 5}},
               conv_attrs({1, 1}, {0, 0, 0, 0}, {2, 3}, 1).set("input_shape", {1, 10, 8, 4}),
               1e-4f});
  t.push_back({"conv2d_backward_data groups 2 stride 2 same",
               "conv2d_backward_data",
               {{2, 4, 4, 6}, {3, 3, 2, 6}},
               conv_attrs({2, 2}, {0, 1, 0, 1}, {1, 1}, 2).set("input_shape", {2, 8, 8, 4}),
               1e-4f});
  t.push_back({"conv2d_backward_data depthwise multiplier 2",
               "conv2d_backward_data",
               {{2, 7, 7, 6}, {3, 3, 1, 6}},
               conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 3).set("input_shape", {2, 7, 7, 3}),
               1e-4f});
  t.push_back({"conv2d_backward_data groups 2 of 8 channels",
               "conv2d_backward_data",
               {{2, 4, 4, 16}, {3, 3, 8, 16}},
               conv_attrs({1, 1}, {0, 0, 0, 0}, {1, 1}, 2).set("input_shape", {2, 6, 6, 16}),
               1e-4f});
  t.push_back({"conv2d_backward_filter dilation 2 same",
               "conv2d_backward_filter",
               {{2, 9, 9, 3}, {2, 9, 9, 4}},
               conv_attrs({1, 1}, {2, 2, 2, 2}, {2, 2}, 1).set("filter_shape", {3, 3, 3, 4}),
               1e-4f});
  t.push_back({"conv2d_backward_filter dilation [2, 3] valid",
               "conv2d_backward_filter",
               {{1, 10, 8, 4}, {1, 6, 5, 5}},
               conv_attrs({1, 1}, {0, 0, 0, 0}, {2, 3}, 1).set("filter_shape", {3, 2, 4, 5}),
               1e-4f});
  t.push_back({"conv2d_backward_filter groups 2 stride 2 same",
               "conv2d_backward_filter",
               {{2, 8, 8, 4}, {2, 4, 4, 6}},
               conv_attrs({2, 2}, {0, 1, 0, 1}, {1, 1}, 2).set("filter_shape", {3, 3, 2, 6}),
               1e-4f});
  t.push_back({"conv2d_backward_filter depthwise multiplier 2",
               "conv2d_backward_filter",
               {{2, 7, 7, 3}, {2, 7, 7, 6}},
               conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 3).set("filter_shape", {3, 3, 1, 6}),
               1e-4f});
  t.push_back({"conv2d_backward_filter groups 2 of 8 channels",
               "conv2d_backward_filter",
               {{2, 6, 6, 16}, {2, 4, 4, 16}},
               conv_attrs({1, 1}, {0, 0, 0, 0}, {1, 1}, 2).set("filter_shape", {3, 3, 8, 16}),
               1e-4f});
  t.push_back({"conv2d_backward_filter_bias depthwise dilation 2",
               "conv2d_backward_filter_bias",
               {{2, 9, 9, 4}, {2, 9, 9, 8}},
               conv_attrs({1, 1}, {2, 2, 2, 2}, {2, 2}, 4).set("filter_shape", {3, 3, 1, 8}),
               1e-4f});
  t.push_back({"max_pool2d 2x2", "max_pool2d", {{2, 8, 8, 3}}, pool_attrs({2, 2}, {2, 2}, {0, 0, 0, 0})});
  t.push_back({"max_pool2d 3x3 stride 2 same",
               "max_pool2d",
               {{2, 7, 7, 3}},
               pool_attrs({3, 3}, {2, 2}, {1, 1, 1, 1})});
  t.push_back({"max_pool2d_backward",
               "max_pool2d_backward",
               {{2, 8, 8, 3}, {2, 4, 4, 3}},
               pool_attrs({2, 2}, {2, 2}, {0, 0, 0, 0})});
  // windows tiling the input with a row and a column left over, seed-sized and small
  t.push_back({"max_pool2d_backward 7x7 leaves an edge",
               "max_pool2d_backward",
               {{2, 7, 7, 5}, {2, 3, 3, 5}},
               pool_attrs({2, 2}, {2, 2}, {0, 0, 0, 0})});
  t.push_back({"max_pool2d_backward seed layer",
               "max_pool2d_backward",
               {{4, 20, 20, 32}, {4, 10, 10, 32}},
               pool_attrs({2, 2}, {2, 2}, {0, 0, 0, 0})});
  t.push_back({"max_pool2d_backward 3x3 stride 2 same",
               "max_pool2d_backward",
               {{2, 7, 7, 3}, {2, 4, 4, 3}},
               pool_attrs({3, 3}, {2, 2}, {1, 1, 1, 1})});
  t.push_back({"avg_pool2d 2x2", "avg_pool2d", {{2, 8, 8, 3}}, pool_attrs({2, 2}, {2, 2}, {0, 0, 0, 0})});
  t.push_back({"avg_pool2d 3x3 stride 2 same",
               "avg_pool2d",
               {{2, 7, 7, 3}},
               pool_attrs({3, 3}, {2, 2}, {1, 1, 1, 1})});
  t.push_back({"avg_pool2d_backward same",
               "avg_pool2d_backward",
               {{2, 4, 4, 3}},
               pool_attrs({3, 3}, {2, 2}, {1, 1, 1, 1}).set("input_shape", {2, 7, 7, 3})});
  t.push_back({"dropout_mask",
               "dropout_mask",
               {},
               Attributes().set("shape", {64, 33}).set("rate", 0.3).set("seed", 42),
               0.0f});
  t.push_back({"random_normal",
               "random_normal",
               {},
               Attributes().set("shape", {64, 33}).set("mean", 0.5).set("stddev", 2.0).set("seed", 42),
               1e-5f});
  // fused ops: every activation, the seed's layers, strides and padding, transposes
  for (const char* act : {"linear", "relu", "sigmoid", "tanh"}) {
    t.push_back({std::string("conv2d_bias 3x3 valid ") + act,
                 "conv2d_bias",
                 {{2, 9, 9, 3}, {3, 3, 3, 4}, {4}},
                 conv_attrs({1, 1}, {0, 0, 0, 0}).set("activation", std::string(act)),
                 1e-4f});
    t.push_back({std::string("matmul_bias ") + act,
                 "matmul_bias",
                 {{7, 5}, {5, 6}, {6}},
                 Attributes().set("activation", std::string(act)),
                 1e-5f});
  }
  t.push_back({"conv2d_bias seed layer 2 relu",
               "conv2d_bias",
               {{2, 12, 12, 32}, {5, 5, 32, 32}, {32}},
               conv_attrs({1, 1}, {0, 0, 0, 0}).set("activation", std::string("relu")),
               1e-4f});
  t.push_back({"conv2d_bias stride 2 same",
               "conv2d_bias",
               {{2, 8, 8, 3}, {3, 3, 3, 4}, {4}},
               conv_attrs({2, 2}, {0, 1, 0, 1}).set("activation", std::string("relu")),
               1e-4f});
  t.push_back(
      {"matmul_bias transposed relu",
       "matmul_bias",
       {{5, 7}, {6, 5}, {6}},
       Attributes().set("transpose_a", 1).set("transpose_b", 1).set("activation", std::string("relu")),
       1e-5f});
  t.push_back({"matmul_bias seed dense 32x3200 · 3200x128 relu",
               "matmul_bias",
               {{32, 3200}, {3200, 128}, {128}},
               Attributes().set("activation", std::string("relu")),
               1e-3f});
  t.push_back({"matmul_bias seed MLP 16x100 · 100x100 sigmoid",
               "matmul_bias",
               {{16, 100}, {100, 100}, {100}},
               Attributes().set("activation", std::string("sigmoid")),
               1e-5f});
  t.push_back({"conv2d_backward_filter_bias",
               "conv2d_backward_filter_bias",
               {{2, 9, 9, 3}, {2, 7, 7, 4}},
               conv_attrs({1, 1}, {0, 0, 0, 0}).set("filter_shape", {3, 3, 3, 4}),
               1e-4f});
  t.push_back({"conv2d_backward_filter_bias stride 2 same",
               "conv2d_backward_filter_bias",
               {{2, 8, 8, 3}, {2, 4, 4, 4}},
               conv_attrs({2, 2}, {0, 1, 0, 1}).set("filter_shape", {3, 3, 3, 4}),
               1e-4f});
  // optimizer updates (in place; slots drawn positive, as accumulated squares are), small and large
  // enough to be split over threads
  for (int64_t n : {int64_t(37), int64_t(70001)}) {
    std::string size = " (" + std::to_string(n) + ")";
    t.push_back(
        {"sgd_update" + size, "sgd_update", {{n}, {n}}, Attributes().set("lr", 0.1), 1e-5f, 0.0f, 1.0f});
    t.push_back({"sgd_update momentum" + size,
                 "sgd_update",
                 {{n}, {n}, {n}},
                 Attributes().set("lr", 0.1).set("momentum", 0.9),
                 1e-5f,
                 0.0f,
                 1.0f});
    t.push_back({"sgd_update nesterov" + size,
                 "sgd_update",
                 {{n}, {n}, {n}},
                 Attributes().set("lr", 0.1).set("momentum", 0.9).set("nesterov", 1),
                 1e-5f,
                 0.0f,
                 1.0f});
    t.push_back({"adadelta_update" + size,
                 "adadelta_update",
                 {{n}, {n}, {n}, {n}},
                 Attributes().set("lr", 1.0).set("rho", 0.95).set("epsilon", 1e-7),
                 1e-5f,
                 0.0f,
                 1.0f});
    t.push_back({"adam_update" + size,
                 "adam_update",
                 {{n}, {n}, {n}, {n}},
                 Attributes().set("alpha", 0.01).set("beta_1", 0.9).set("beta_2", 0.999).set("epsilon", 1e-7),
                 1e-5f,
                 0.0f,
                 1.0f});
    t.push_back({"adam_update amsgrad" + size,
                 "adam_update",
                 {{n}, {n}, {n}, {n}, {n}},
                 Attributes().set("alpha", 0.01).set("beta_1", 0.9).set("beta_2", 0.999).set("epsilon", 1e-7),
                 1e-5f,
                 0.0f,
                 1.0f});
    t.push_back({"rmsprop_update" + size,
                 "rmsprop_update",
                 {{n}, {n}, {n}},
                 Attributes().set("lr", 0.01).set("rho", 0.9).set("epsilon", 1e-7),
                 1e-5f,
                 0.0f,
                 1.0f});
    t.push_back({"rmsprop_update momentum" + size,
                 "rmsprop_update",
                 {{n}, {n}, {n}, {n}},
                 Attributes().set("lr", 0.01).set("rho", 0.9).set("momentum", 0.5).set("epsilon", 1e-7),
                 1e-5f,
                 0.0f,
                 1.0f});
  }
  // layout ops: every input of a concat, slices with steps (backwards too), pads, permutations
  t.push_back(
      {"concat last axis of three", "concat", {{3, 4}, {3, 5}, {3, 1}}, Attributes().set("axis", -1)});
  t.push_back({"concat axis 0", "concat", {{2, 3, 4}, {1, 3, 4}}, Attributes().set("axis", 0)});
  t.push_back(
      {"concat channels (NHWC)", "concat", {{2, 3, 4, 5}, {2, 3, 4, 7}}, Attributes().set("axis", 3)});
  t.push_back({"concat middle axis", "concat", {{2, 3, 4, 5}, {2, 1, 4, 5}}, Attributes().set("axis", 1)});
  t.push_back({"slice two axes, step 2",
               "slice",
               {{5, 7, 6}},
               Attributes()
                   .set("axes", {1, 2})
                   .set("begin", {1, -5})
                   .set("end", {6, ops::kSliceEnd})
                   .set("step", {2, 1})});
  t.push_back(
      {"slice backwards, step -3",
       "slice",
       {{8, 9}},
       Attributes().set("axes", {0}).set("begin", {-1}).set("end", {ops::kSliceEnd}).set("step", {-3})});
  t.push_back({"slice as Cropping2D",
               "slice",
               {{2, 10, 9, 3}},
               Attributes().set("axes", {1, 2}).set("begin", {2, 1}).set("end", {-1, -3})});
  t.push_back({"slice_backward step 2",
               "slice_backward",
               {{5, 3, 6}},
               Attributes()
                   .set("input_shape", {5, 7, 6})
                   .set("axes", {1})
                   .set("begin", {1})
                   .set("end", {6})
                   .set("step", {2})});
  t.push_back({"pad as ZeroPadding2D",
               "pad",
               {{2, 5, 5, 3}},
               Attributes().set("pads_before", {0, 1, 2, 0}).set("pads_after", {0, 2, 1, 0})});
  t.push_back({"pad with 1.5",
               "pad",
               {{4, 6}},
               Attributes().set("pads_before", {1, 0}).set("pads_after", {0, 3}).set("value", 1.5)});
  t.push_back(
      {"transpose NHWC to NCHW", "transpose", {{2, 3, 4, 5}}, Attributes().set("perm", {0, 3, 1, 2})});
  t.push_back(
      {"transpose reversed", "transpose", {{6, 7}}, Attributes().set("perm", std::vector<int64_t>{})});
  t.push_back({"transpose (2,0,1)", "transpose", {{2, 3, 4}}, Attributes().set("perm", {2, 0, 1})});
  // lookup: every row of a small table, and an Embedding-sized one (indices repeat)
  t.push_back({"gather (5,3) by (2,4)", "gather", {{5, 3}, {2, 4}}, {}, 0.0f, -1.0f, 1.0f, 1, 5});
  t.push_back(
      {"gather embedding (32,12) by (64,28)", "gather", {{32, 12}, {64, 28}}, {}, 0.0f, -1.0f, 1.0f, 1, 32});
  t.push_back({"gather_backward scatter-add",
               "gather_backward",
               {{6, 7, 4}, {6, 7}},
               Attributes().set("input_dim", 5),
               1e-5f,
               -1.0f,
               1.0f,
               1,
               5});
  t.push_back({"reduce_sum without keepdims",
               "reduce_sum",
               {{6, 7, 3}},
               Attributes().set("axes", {1}).set("keepdims", int64_t(0)),
               1e-5f});
  t.push_back({"reduce_sum keepdims",
               "reduce_sum",
               {{6, 7, 3}},
               Attributes().set("axes", {0, 2}).set("keepdims", int64_t(1)),
               1e-5f});
  // Keras' ops for masks and piecewise functions. Inputs on a grid of quarters hold zeros, exact
  // halves (round goes to the even neighbour: 0.5 → 0, 1.5 → 2, -2.5 → -2) and ties between a and b.
  for (const char* op : {"sign", "abs", "floor", "round"})
    t.push_back({op, op, {{5, 12}}, {}, 0.0f, -3.0f, 3.0f, -1, 0, 0.25f});
  t.push_back({"floor off the grid", "floor", {{4, 9}}, {}, 0.0f, -3.0f, 3.0f});
  t.push_back({"abs off the grid", "abs", {{4, 9}}, {}, 0.0f, -3.0f, 3.0f});
  for (const char* op : {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal"}) {
    t.push_back({std::string(op) + " same shape", op, {{6, 5}, {6, 5}}, {}, 0.0f, -1.0f, 1.0f, -1, 0, 0.5f});
    t.push_back({std::string(op) + " (4,1,3) with (1,5,3)",
                 op,
                 {{4, 1, 3}, {1, 5, 3}},
                 {},
                 0.0f,
                 -1.0f,
                 1.0f,
                 -1,
                 0,
                 0.5f});
    t.push_back({std::string(op) + " with a rank-0 b", op, {{3, 7}, {}}, {}, 0.0f, -1.0f, 1.0f, -1, 0, 0.5f});
  }
  for (const char* op : {"maximum", "minimum"}) {
    t.push_back({std::string(op) + " same shape", op, {{6, 5}, {6, 5}}, {}, 0.0f, -1.0f, 1.0f, -1, 0, 0.25f});
    t.push_back({std::string(op) + " (2,5,5,8) with (1,1,1,8)", op, {{2, 5, 5, 8}, {1, 1, 1, 8}}});
    t.push_back({std::string(op) + " (4,1) with (1,6)", op, {{4, 1}, {1, 6}}});
  }
  // cond on a grid of whole numbers in [-1, 1]: zeros (b) and nonzeros of both signs (a)
  t.push_back({"where same shape", "where", {{6, 5}, {6, 5}, {6, 5}}, {}, 0.0f, -1.0f, 1.0f, -1, 0, 1.0f});
  t.push_back({"where (4,1,3) cond, (1,5,3) a, (3) b",
               "where",
               {{4, 1, 3}, {1, 5, 3}, {1, 1, 3}},
               {},
               0.0f,
               -1.0f,
               1.0f,
               -1,
               0,
               1.0f});
  t.push_back({"where with a rank-0 b", "where", {{3, 7}, {3, 7}, {}}, {}, 0.0f, -1.0f, 1.0f, -1, 0, 1.0f});
  t.push_back({"pow same shape", "pow", {{6, 5}, {6, 5}}, {}, 1e-5f, 0.25f, 2.0f});
  t.push_back({"pow (4,6) to the (1,6)", "pow", {{4, 6}, {1, 6}}, {}, 1e-5f, 0.25f, 2.0f});
  t.push_back({"pow to a rank-0 power", "pow", {{3, 7}, {}}, {}, 1e-5f, 0.5f, 1.5f});
  // batch normalization over the last axis: NHWC images, (N, C) vectors, and a batch large enough to
  // be split over threads; the backward and inference cases draw every input positive, as variances are
  const Attributes bn = Attributes().set("epsilon", 1e-3);
  t.push_back({"batch_norm_train NHWC", "batch_norm_train", {{2, 5, 5, 8}, {8}, {8}}, bn, 1e-4f});
  t.push_back({"batch_norm_train (N, C)", "batch_norm_train", {{16, 10}, {10}, {10}}, bn, 1e-4f});
  t.push_back({"batch_norm_train large", "batch_norm_train", {{8, 16, 16, 32}, {32}, {32}}, bn, 1e-4f});
  t.push_back({"batch_norm_train_backward NHWC",
               "batch_norm_train_backward",
               {{2, 5, 5, 8}, {8}, {8}, {8}, {2, 5, 5, 8}},
               bn,
               1e-4f,
               0.1f,
               1.0f});
  t.push_back({"batch_norm_train_backward (N, C) epsilon 1e-5",
               "batch_norm_train_backward",
               {{16, 10}, {10}, {10}, {10}, {16, 10}},
               Attributes().set("epsilon", 1e-5),
               1e-4f,
               0.1f,
               1.0f});
  t.push_back({"batch_norm_train_backward large",
               "batch_norm_train_backward",
               {{8, 16, 16, 32}, {32}, {32}, {32}, {8, 16, 16, 32}},
               bn,
               1e-4f,
               0.1f,
               1.0f});
  t.push_back({"batch_norm_inference NHWC",
               "batch_norm_inference",
               {{2, 5, 5, 8}, {8}, {8}, {8}, {8}},
               bn,
               1e-5f,
               0.1f,
               1.0f});
  t.push_back({"batch_norm_inference (N, C)",
               "batch_norm_inference",
               {{16, 10}, {10}, {10}, {10}, {10}},
               bn,
               1e-5f,
               0.1f,
               1.0f});
  return t;
}

// Fresh host copies, so that an in-place op run on one backend does not change another run's inputs.
std::vector<Tensor> copies(const std::vector<Tensor>& in) {
  std::vector<Tensor> out;
  for (const Tensor& t : in) out.push_back(Tensor::from_vector(t.to_vector(), t.shape()));
  return out;
}

// Every output of `op`, on the host.
std::vector<std::vector<float>> run_all(const std::string& op, const std::vector<Tensor>& in,
                                        const Attributes& attrs) {
  std::vector<std::vector<float>> out;
  for (const Tensor& t : run_op(op, copies(in), attrs)) out.push_back(t.to_vector());
  return out;
}

std::vector<Tensor> make_inputs(const Case& c, uint64_t seed) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (int(i) == c.index_input) {
      std::vector<float> rows = random_tensor(c.inputs[i], seed + i, 0.0f, float(c.index_rows)).to_vector();
      for (float& r : rows) r = std::min(std::floor(r), float(c.index_rows - 1));
      in.push_back(Tensor::from_vector(rows, c.inputs[i]));
      continue;
    }
    in.push_back(random_tensor(c.inputs[i], seed + i, c.lo, c.hi));
    if (c.step > 0.0f) {
      std::vector<float> v = in.back().to_vector();
      for (float& x : v) x = std::round(x / c.step) * c.step;
      in.back() = Tensor::from_vector(v, c.inputs[i]);
    }
  }
  return in;
}

void conformance_on(const std::string& backend_name) {
  test::use_backend_or_skip(backend_name);
  uint64_t seed = 1;
  for (const Case& c : conformance_table()) {
    CAPTURE(c.name);
    std::vector<Tensor> in = make_inputs(c, seed += 10);
    std::vector<std::vector<float>> want, got;
    {
      test::BackendScope scope("reference");
      want = run_all(c.op, in, c.attrs);
    }
    got = run_all(c.op, in, c.attrs);
    REQUIRE(want.size() == got.size());
    for (size_t k = 0; k < want.size(); ++k) {
      float scale = 1.0f;
      for (float w : want[k]) scale = std::max(scale, std::fabs(w));
      INFO("op '" << c.op << "' on backend '" << backend_name << "', case '" << c.name << "', output " << k);
      CHECK(max_abs_diff(want[k], got[k]) <= c.tolerance * scale);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Gradient checks: autograd against central differences of L = Σ f(inputs) · r.

struct GradCase {
  std::string name;
  std::vector<Shape> inputs;
  std::function<Tensor(const std::vector<Tensor>&)> f;
  float lo = -1.0f, hi = 1.0f;
};

std::vector<GradCase> gradient_table() {
  using V = std::vector<Tensor>;
  std::vector<GradCase> t;
  t.push_back({"add with broadcasting", {{3, 4}, {1, 4}}, [](const V& x) { return ops::add(x[0], x[1]); }});
  t.push_back({"sub with broadcasting", {{2, 3, 4}, {4}}, [](const V& x) { return ops::sub(x[0], x[1]); }});
  t.push_back({"mul", {{3, 4}, {3, 4}}, [](const V& x) { return ops::mul(x[0], x[1]); }});
  t.push_back({"div", {{3, 4}, {3, 1}}, [](const V& x) { return ops::div(x[0], x[1]); }, 0.5f, 1.5f});
  t.push_back({"neg", {{3, 4}}, [](const V& x) { return ops::neg(x[0]); }});
  t.push_back({"exp", {{3, 4}}, [](const V& x) { return ops::exp(x[0]); }});
  t.push_back({"log", {{3, 4}}, [](const V& x) { return ops::log(x[0]); }, 0.5f, 2.0f});
  t.push_back({"sqrt", {{3, 4}}, [](const V& x) { return ops::sqrt(x[0]); }, 0.5f, 2.0f});
  t.push_back({"square", {{3, 4}}, [](const V& x) { return ops::square(x[0]); }});
  t.push_back({"relu", {{3, 4}}, [](const V& x) { return ops::relu(x[0]); }});
  t.push_back({"sigmoid", {{3, 4}}, [](const V& x) { return ops::sigmoid(x[0]); }});
  t.push_back({"tanh", {{3, 4}}, [](const V& x) { return ops::tanh(x[0]); }});
  t.push_back({"scale", {{3, 4}}, [](const V& x) { return ops::scale(x[0], -1.5, 0.25); }});
  t.push_back({"clip", {{3, 4}}, [](const V& x) { return ops::clip(x[0], -0.5, 0.5); }});
  t.push_back({"softmax", {{3, 5}}, [](const V& x) { return ops::softmax(x[0]); }});
  t.push_back({"log_softmax", {{3, 5}}, [](const V& x) { return ops::log_softmax(x[0]); }});
  t.push_back({"reduce_sum", {{3, 4, 5}}, [](const V& x) { return ops::reduce_sum(x[0], {1}); }});
  t.push_back({"reshape", {{3, 4}}, [](const V& x) { return ops::reshape(x[0], {2, 6}); }});
  t.push_back({"matmul", {{3, 4}, {4, 5}}, [](const V& x) { return ops::matmul(x[0], x[1]); }});
  t.push_back({"matmul transposed", {{4, 3}, {5, 4}}, [](const V& x) {
                 return ops::matmul(x[0], x[1], true, true);
               }});
  t.push_back({"conv2d", {{2, 6, 6, 2}, {3, 3, 2, 3}}, [](const V& x) { return ops::conv2d(x[0], x[1]); }});
  t.push_back({"conv2d stride 2 same", {{1, 6, 5, 2}, {3, 3, 2, 2}}, [](const V& x) {
                 return ops::conv2d(x[0], x[1], {2, 2}, {0, 1, 1, 1});
               }});
  // a wide input range keeps each window's maximum far from the runner-up, so ±h never changes it
  t.push_back({"max_pool2d",
               {{2, 4, 4, 2}},
               [](const V& x) {
                 return ops::max_pool2d(x[0], {2, 2}, {2, 2});
               },
               -10.0f,
               10.0f});
  t.push_back({"avg_pool2d same", {{1, 5, 5, 2}}, [](const V& x) {
                 return ops::avg_pool2d(x[0], {2, 2}, {2, 2}, {0, 1, 0, 1});
               }});
  for (const char* act : {"linear", "relu", "sigmoid", "tanh"}) {
    t.push_back({std::string("conv2d_bias ") + act, {{2, 6, 6, 2}, {3, 3, 2, 3}, {3}}, [act](const V& x) {
                   return ops::conv2d_bias(x[0], x[1], x[2], {1, 1}, {0, 0, 0, 0}, act);
                 }});
    t.push_back({std::string("matmul_bias ") + act, {{3, 4}, {4, 5}, {5}}, [act](const V& x) {
                   return ops::matmul_bias(x[0], x[1], x[2], false, false, act);
                 }});
  }
  t.push_back({"conv2d_bias stride 2 same", {{1, 6, 5, 2}, {3, 3, 2, 2}, {2}}, [](const V& x) {
                 return ops::conv2d_bias(x[0], x[1], x[2], {2, 2}, {0, 1, 1, 1}, "tanh");
               }});
  t.push_back({"matmul_bias transposed", {{4, 3}, {5, 4}, {5}}, [](const V& x) {
                 return ops::matmul_bias(x[0], x[1], x[2], true, true, "sigmoid");
               }});
  t.push_back({"mean_squared_error (prediction and target)", {{4, 3}, {4, 3}}, [](const V& x) {
                 return ops::mean_squared_error(x[0], x[1]);
               }});
  // the target of a cross-entropy is data: gradients for the logits only
  t.push_back({"softmax_cross_entropy", {{4, 5}}, [](const V& x) {
                 Tensor target = ops::softmax(test::random_tensor({4, 5}, 77, -2.0f, 2.0f));
                 return ops::softmax_cross_entropy(x[0], target);
               }});
  t.push_back({"gather (indices repeat; row 3 unused)", {{4, 3}}, [](const V& x) {
                 return ops::gather(x[0], Tensor::from_vector({0, 2, 1, 2, 0, 0}, {3, 2}));
               }});
  t.push_back({"reduce_sum keepdims", {{3, 4, 5}}, [](const V& x) {
                 return ops::reduce_sum(x[0], {0, 2}, true);
               }});
  t.push_back({"concat", {{3, 4}, {3, 2}, {3, 1}}, [](const V& x) {
                 return ops::concat({x[0], x[1], x[2]}, 1);
               }});
  t.push_back({"slice with steps", {{5, 6}}, [](const V& x) {
                 return ops::slice(x[0], {0, 1}, {4, 1}, {0, 6}, {-2, 2});
               }});
  t.push_back({"pad", {{2, 3}}, [](const V& x) { return ops::pad(x[0], {1, 0}, {2, 1}, 0.5); }});
  t.push_back({"transpose", {{2, 3, 4}}, [](const V& x) { return ops::transpose(x[0], {1, 2, 0}); }});
  t.push_back({"slice_backward (through slice's gradient)", {{4, 5}}, [](const V& x) {
                 Attributes a;
                 a.set("input_shape", {6, 5}).set("axes", {0}).set("begin", {1}).set("end", {5});
                 return run_op("slice_backward", {x[0]}, a)[0];
               }});
  // last, so that the cases above keep the random inputs they have always had
  t.push_back({"erf", {{3, 4}}, [](const V& x) { return ops::erf(x[0]); }, -2.0f, 2.0f});
  t.push_back({"conv2d_transpose stride 2 same", {{1, 3, 3, 2}, {3, 3, 2, 2}}, [](const V& x) {
                 return ops::conv2d_transpose(x[0], x[1], {6, 6}, {2, 2}, {0, 1, 0, 1});
               }});
  t.push_back({"conv2d_transpose stride 2 valid, a row past the last window",
               {{2, 2, 3, 2}, {2, 2, 3, 2}},
               [](const V& x) {
                 return ops::conv2d_transpose(x[0], x[1], {5, 7}, {2, 2}, {0, 0, 0, 0});
               }});
  t.push_back({"conv2d dilation [2, 3] same", {{1, 7, 8, 2}, {3, 3, 2, 3}}, [](const V& x) {
                 return ops::conv2d(x[0], x[1], {1, 1}, {2, 2, 3, 3}, {2, 3});
               }});
  t.push_back({"conv2d groups 2 stride 2", {{2, 6, 5, 4}, {3, 3, 2, 4}}, [](const V& x) {
                 return ops::conv2d(x[0], x[1], {2, 2}, {0, 1, 1, 1}, {1, 1}, 2);
               }});
  t.push_back(
      {"conv2d_bias depthwise multiplier 2 dilation 2", {{2, 6, 6, 3}, {3, 3, 1, 6}, {6}}, [](const V& x) {
         return ops::conv2d_bias(x[0], x[1], x[2], {1, 1}, {2, 2, 2, 2}, "tanh", {2, 2}, 3);
       }});
  // abs on both sides of 0, away from the kink: x in [0.2, 1] and -x
  t.push_back({"abs",
               {{3, 4}},
               [](const V& x) {
                 return ops::concat({ops::abs(x[0]), ops::abs(ops::neg(x[0]))}, 0);
               },
               0.2f,
               1.0f});
  // a in [-0.2, 0.2], b in ±[0.3, 0.7] by column: each input wins somewhere, no pair within h
  auto apart = [](const Tensor& b) {
    return ops::add(ops::scale(b, 0.2), Tensor::from_vector({0.5f, -0.5f, 0.5f, -0.5f}, {1, 4}));
  };
  t.push_back({"maximum with broadcasting", {{3, 4}, {1, 4}}, [apart](const V& x) {
                 return ops::maximum(ops::scale(x[0], 0.2), apart(x[1]));
               }});
  t.push_back({"minimum with broadcasting", {{3, 4}, {1, 4}}, [apart](const V& x) {
                 return ops::minimum(ops::scale(x[0], 0.2), apart(x[1]));
               }});
  t.push_back({"where with broadcasting (a and b get the gradient)", {{3, 4}, {1, 4}}, [](const V& x) {
                 Tensor cond = ops::greater(test::random_tensor({3, 4}, 78), ops::full({}, 0.0f));
                 return ops::where(cond, x[0], x[1]);
               }});
  t.push_back(
      {"pow with broadcasting", {{3, 4}, {4}}, [](const V& x) { return ops::pow(x[0], x[1]); }, 0.5f, 2.0f});
  t.push_back({"pow to a number", {{3, 4}}, [](const V& x) { return ops::pow(x[0], 2.5); }, 0.5f, 2.0f});
  // batch normalization: the output alone (batch_norm_train_backward), the batch statistics alone,
  // and both, which adds their gradients to dx; inference w.r.t. every input
  const Attributes bn = Attributes().set("epsilon", 1e-3);
  t.push_back({"batch_norm_train", {{2, 3, 3, 4}, {4}, {4}}, [bn](const V& x) {
                 return run_op("batch_norm_train", {x[0], x[1], x[2]}, bn)[0];
               }});
  t.push_back({"batch_norm_train's mean and variance", {{6, 3}}, [bn](const V& x) {
                 std::vector<Tensor> out =
                     run_op("batch_norm_train", {x[0], Tensor::full({3}, 1.0f), Tensor::zeros({3})}, bn);
                 return ops::concat({out[1], out[2]}, 0);
               }});
  t.push_back({"batch_norm_train's output and variance", {{5, 4}, {4}, {4}}, [bn](const V& x) {
                 std::vector<Tensor> out = run_op("batch_norm_train", {x[0], x[1], x[2]}, bn);
                 return ops::add(out[0], ops::reshape(out[2], {1, 4}));
               }});
  t.push_back({"batch_norm_inference",
               {{2, 3, 3, 4}, {4}, {4}, {4}, {4}},
               [bn](const V& x) {
                 return run_op("batch_norm_inference", {x[0], x[1], x[2], x[3], x[4]}, bn)[0];
               },
               0.5f,
               1.5f});
  return t;
}

void gradients_on(const std::string& backend_name) {
  test::use_backend_or_skip(backend_name);
  uint64_t seed = 100;
  for (const GradCase& c : gradient_table()) {
    CAPTURE(c.name);
    std::vector<Tensor> x;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      x.push_back(random_tensor(c.inputs[i], seed += 7, c.lo, c.hi));
      x.back().set_requires_grad(true);
    }
    Tensor y = c.f(x);
    Tensor r = random_tensor(y.shape(), seed += 7);
    std::vector<Tensor> grads = gradients(ops::sum(ops::mul(y, r)), x);
    auto loss_at = [&](const std::vector<Tensor>& inputs) {
      NoGradGuard no_grad;
      std::vector<float> out = c.f(inputs).to_vector(), w = r.to_vector();
      double s = 0;
      for (size_t i = 0; i < out.size(); ++i) s += double(out[i]) * double(w[i]);
      return s;
    };
    for (size_t i = 0; i < x.size(); ++i) {
      REQUIRE(grads[i].defined());
      std::vector<float> g = grads[i].to_vector(), base = x[i].to_vector();
      for (size_t k = 0; k < base.size(); k += std::max<size_t>(1, base.size() / 12)) {
        const float h = 1e-2f;
        std::vector<float> plus = base, minus = base;
        plus[k] += h, minus[k] -= h;
        std::vector<Tensor> xp = x, xm = x;
        xp[i] = Tensor::from_vector(plus, x[i].shape());
        xm[i] = Tensor::from_vector(minus, x[i].shape());
        double numeric = (loss_at(xp) - loss_at(xm)) / (2.0 * h);
        INFO("gradient of '" << c.name << "' w.r.t. input " << i << " element " << k << " on '"
                             << backend_name << "'");
        CHECK(g[k] == doctest::Approx(numeric).epsilon(2e-2).scale(1.0));
      }
    }
  }
}

}  // namespace

TEST_CASE("conformance: every op on reference matches the reference (sanity of the harness)") {
  conformance_on("reference");
}
TEST_CASE("conformance: every op on onednn matches the reference") {
  conformance_on("onednn");
}

// The onednn backend's Winograd convolutions (docs/ops.md), forced on with each output tile, in every
// pass, against the float64 reference. Per output, |ŷ − y| <= 8 · β · ε · S, where S is the same op
// run on the inputs' magnitudes (Σ |x|·|w| over the terms of a forward output) and β the tile's
// amplification factor from docs/ops.md: 7.2, 256, 134 and 302 for F(2,3), F(4,3), F(2,5), F(4,5)
// in the forward and data passes; 9, 178, 414 and 373 in the filter pass.
TEST_CASE("conformance: Winograd convolutions on onednn stay within their error bound") {
  test::use_backend_or_skip("onednn");
  struct WinogradCase {
    std::string name, op;
    std::vector<Shape> inputs;
    Attributes attrs;
    int64_t r;  // kernel size
  };
  const Attributes valid = conv_attrs({1, 1}, {0, 0, 0, 0}), same3 = conv_attrs({1, 1}, {1, 1, 1, 1});
  // the seed's second layer in all three passes; ragged tiles, channels that are not multiples of
  // the vector width, "same" padding, and uneven pads (a tile reaching past every edge)
  const std::vector<WinogradCase> cases = {
      {"seed layer 2",
       "conv2d_bias",
       {{3, 24, 24, 32}, {5, 5, 32, 32}, {32}},
       Attributes(valid).set("activation", "relu"),
       5},
      {"seed layer 2 dx",
       "conv2d_backward_data",
       {{3, 20, 20, 32}, {5, 5, 32, 32}},
       Attributes(valid).set("input_shape", {3, 24, 24, 32}),
       5},
      {"seed layer 2 dw, db",
       "conv2d_backward_filter_bias",
       {{3, 24, 24, 32}, {3, 20, 20, 32}},
       Attributes(valid).set("filter_shape", {5, 5, 32, 32}),
       5},
      {"3x3 same, 20 to 24 channels", "conv2d", {{2, 13, 11, 20}, {3, 3, 20, 24}}, same3, 3},
      {"3x3 same dx",
       "conv2d_backward_data",
       {{2, 13, 11, 24}, {3, 3, 20, 24}},
       Attributes(same3).set("input_shape", {2, 13, 11, 20}),
       3},
      {"3x3 same dw",
       "conv2d_backward_filter",
       {{2, 13, 11, 20}, {2, 13, 11, 24}},
       Attributes(same3).set("filter_shape", {3, 3, 20, 24}),
       3},
      {"5x5 same tanh, 6 to 5 channels",
       "conv2d_bias",
       {{2, 9, 10, 6}, {5, 5, 6, 5}, {5}},
       conv_attrs({1, 1}, {2, 2, 2, 2}).set("activation", "tanh"),
       5},
      {"5x5 pads 1,3,0,4 dx",
       "conv2d_backward_data",
       {{2, 9, 10, 5}, {5, 5, 6, 5}},
       conv_attrs({1, 1}, {1, 3, 0, 4}).set("input_shape", {2, 9, 10, 6}),
       5},
      {"5x5 pads 1,3,0,4 dw",
       "conv2d_backward_filter",
       {{2, 9, 10, 6}, {2, 9, 10, 5}},
       conv_attrs({1, 1}, {1, 3, 0, 4}).set("filter_shape", {5, 5, 6, 5}),
       5},
      {"conv2d_transpose 3x3 stride 1",
       "conv2d_transpose",
       {{2, 6, 7, 16}, {3, 3, 8, 16}},
       Attributes(same3).set("output_size", {6, 7}),
       3},
  };
  const double epsilon = 0x1p-24;
  uint64_t seed = 500;
  // "direct": the same shapes on oneDNN's direct convolution (the suite otherwise runs with
  // LAMINA_WINOGRAD=on), held to the same kind of bound with β = 16
  for (const std::string tile : {"direct", "2", "4"}) {
    test::ScopedEnv on("LAMINA_WINOGRAD", tile == "direct" ? "off" : "on"),
        which("LAMINA_WINOGRAD_TILE", tile.c_str());
    for (const WinogradCase& c : cases) {
      CAPTURE(c.name);
      CAPTURE(tile);
      const int64_t r = c.r;
      const bool filter = c.op.rfind("conv2d_backward_filter", 0) == 0;
      const double beta = tile == "direct" ? 16.0
                          : filter         ? (tile == "2" ? (r == 3 ? 9.0 : 414.0) : (r == 3 ? 178.0 : 373.0))
                                   : (tile == "2" ? (r == 3 ? 7.2 : 134.0) : (r == 3 ? 256.0 : 302.0));
      std::vector<Tensor> in, magnitude;
      for (const Shape& shape : c.inputs) {
        in.push_back(random_tensor(shape, seed += 3, -1.0f, 1.0f));
        std::vector<float> v = in.back().to_vector();
        for (float& e : v) e = std::fabs(e);
        magnitude.push_back(Tensor::from_vector(v, shape));
      }
      std::vector<std::vector<float>> want, bound;
      {
        test::BackendScope scope("reference");
        want = run_all(c.op, in, c.attrs);
        Attributes linear = c.attrs;
        linear.set("activation", "linear");
        bound = run_all(c.op, magnitude, c.op == "conv2d_bias" ? linear : c.attrs);
      }
      const std::vector<std::vector<float>> got = run_all(c.op, in, c.attrs);
      REQUIRE(got.size() == want.size());
      for (size_t k = 0; k < want.size(); ++k) {
        REQUIRE(got[k].size() == want[k].size());
        double worst = 0;  // the largest error as a fraction of its bound
        for (size_t i = 0; i < want[k].size(); ++i)
          worst = std::max(
              worst, std::fabs(double(got[k][i]) - want[k][i]) / (8 * beta * epsilon * bound[k][i] + 1e-30));
        INFO("output " << k << ": the largest error is " << worst << " of its bound");
        CHECK(worst <= 1.0);
      }
    }
  }
}

TEST_CASE("conformance: every op on cudnn matches the reference") {
  conformance_on("cudnn");
}
TEST_CASE("conformance: every op on opencl matches the reference") {
  conformance_on("opencl");
}

// A backend without a kernel for a fused op (one written before the op existed) gets the op's
// composition of basic ops: same results, same gradients. Simulated by hiding the kernels.
void fallbacks_on(const std::string& backend_name) {
  test::use_backend_or_skip(backend_name);
  BackendEntry& backend = Registry::get().active_backend();
  const std::vector<std::string> fused{"concat",
                                       "slice",
                                       "slice_backward",
                                       "pad",
                                       "transpose",
                                       "conv2d_bias",
                                       "matmul_bias",
                                       "conv2d_backward_filter_bias",
                                       "conv2d_transpose",
                                       "sgd_update",
                                       "adadelta_update",
                                       "adam_update",
                                       "rmsprop_update",
                                       "mean_squared_error",
                                       "mean_squared_error_backward",
                                       "softmax_cross_entropy",
                                       "softmax_cross_entropy_backward",
                                       "gather",
                                       "gather_backward",
                                       "batch_norm_train",
                                       "batch_norm_train_backward",
                                       "batch_norm_inference"};
  uint64_t seed = 500;
  for (const Case& c : conformance_table()) {
    if (std::find(fused.begin(), fused.end(), c.op) == fused.end()) continue;
    CAPTURE(c.name);
    std::vector<Tensor> in = make_inputs(c, seed += 10);
    std::vector<std::vector<float>> want = run_all(c.op, in, c.attrs), got;
    const OpDef* op = find_op(c.op);
    REQUIRE(op);
    lamina_kernel_fn hidden = backend.kernels[size_t(op->id)];
    backend.kernels[size_t(op->id)] = nullptr;
    try {
      got = run_all(c.op, in, c.attrs);
    } catch (...) {
      backend.kernels[size_t(op->id)] = hidden;
      throw;
    }
    backend.kernels[size_t(op->id)] = hidden;
    REQUIRE(want.size() == got.size());
    for (size_t k = 0; k < want.size(); ++k) {
      float scale = 1.0f;
      for (float w : want[k]) scale = std::max(scale, std::fabs(w));
      INFO("op '" << c.op << "' composed on '" << backend_name << "', case '" << c.name << "', output " << k);
      CHECK(max_abs_diff(want[k], got[k]) <= c.tolerance * scale);
    }
  }
}

TEST_CASE("fused ops: a backend without their kernels runs their composition (reference)") {
  fallbacks_on("reference");
}
TEST_CASE("fused ops: a backend without their kernels runs their composition (onednn)") {
  fallbacks_on("onednn");
}
TEST_CASE("fused ops: a backend without their kernels runs their composition (cudnn)") {
  fallbacks_on("cudnn");
}
TEST_CASE("fused ops: a backend without their kernels runs their composition (opencl)") {
  fallbacks_on("opencl");
}

// Optimizer plugins call their updates through the host table with C attributes, and the usual
// call goes straight to the kernel (run_plugin_update, core/src/dispatch.hpp). It must update as
// run_op does, and a call it does not take must still get run_op's result or error.
TEST_CASE(
    "an optimizer's update called through the host table updates as run_op does, with run_op's errors") {
  const lamina_host* host = host_table();
  lamina_attr items[3]{};
  items[0].name = "lr", items[0].type = LAMINA_ATTR_FLOAT, items[0].real = 0.1;
  items[1].name = "momentum", items[1].type = LAMINA_ATTR_FLOAT, items[1].real = 0.9;
  items[2].name = "nesterov", items[2].type = LAMINA_ATTR_INT, items[2].count = 1, items[2].ints[0] = 1;
  const Attributes same = Attributes().set("lr", 0.1).set("momentum", 0.9).set("nesterov", 1);
  auto handle = [](const Tensor& t) { return reinterpret_cast<lamina_tensor>(t.impl()); };
  for (const std::string& backend : test::configured_backends()) {
    if (!test::backend_usable(backend)) {
      MESSAGE("backend '" << backend << "' cannot run here");
      continue;
    }
    CAPTURE(backend);
    set_backend(backend);
    NoGradGuard no_grad;
    auto on_backend = [](const Tensor& t) { return ops::add(t, ops::full(t.shape(), 0.0f)); };
    const Tensor p0 = test::random_tensor({37}, 1), g = on_backend(test::random_tensor({37}, 2)),
                 v0 = test::random_tensor({37}, 3);
    Tensor p = on_backend(p0), v = on_backend(v0), p_ref = on_backend(p0), v_ref = on_backend(v0);
    run_op("sgd_update", {p_ref, g, v_ref}, same);
    lamina_tensor in[3] = {handle(p), handle(g), handle(v)}, out[2] = {nullptr, nullptr};
    lamina_attrs attrs{3, items};
    lamina_error error{};
    REQUIRE(host->op("sgd_update", in, 3, &attrs, out, 2, &error) == LAMINA_OK);
    CHECK(out[0] == in[0]);  // the parameter and the slot themselves, each with a reference to release
    CHECK(out[1] == in[2]);
    host->tensor_release(out[0]);
    host->tensor_release(out[1]);
    CHECK(p.to_vector() == p_ref.to_vector());
    CHECK(v.to_vector() == v_ref.to_vector());

    items[0].name = "learning_rate";  // not an attribute of sgd_update
    CHECK(host->op("sgd_update", in, 3, &attrs, out, 2, &error) == LAMINA_ERROR);
    CHECK(std::string(error.message) ==
          "op 'sgd_update' has no attribute 'learning_rate' (its attributes: lr, momentum, nesterov)");
    items[0].name = "lr";
    Tensor short_slot = on_backend(test::random_tensor({36}, 4));
    in[2] = handle(short_slot);
    CHECK(host->op("sgd_update", in, 3, &attrs, out, 2, &error) == LAMINA_ERROR);
    CHECK(std::string(error.message).find("every slot must have the parameter's shape") != std::string::npos);
    in[2] = handle(v);
    CHECK(host->op("sgd_update", in, 3, &attrs, out, 1, &error) == LAMINA_ERROR);  // one output too few
    CHECK(std::string(error.message) == "op 'sgd_update' gives 2 outputs, the caller expected 1");
  }
}

TEST_CASE("in-place updates refuse to run while autograd records") {
  test::use_backend_or_skip("reference");
  Tensor p = Tensor::from_vector({1, 2, 3}, {3});
  p.set_requires_grad(true);
  Tensor g = Tensor::from_vector({1, 1, 1}, {3});
  std::string message = test::error_of([&] { run_op("sgd_update", {p, g}, Attributes().set("lr", 0.5)); });
  CHECK(message.find("NoGradGuard") != std::string::npos);
  NoGradGuard no_grad;
  std::vector<Tensor> out = run_op("sgd_update", {p, g}, Attributes().set("lr", 0.5));
  REQUIRE(out.size() == 1);
  CHECK(out[0].impl() == p.impl());  // the parameter itself, updated in place
  CHECK(p.to_vector() == std::vector<float>{0.5f, 1.5f, 2.5f});
}

TEST_CASE("fused ops check their bias and activation") {
  test::use_backend_or_skip("reference");
  Tensor x = Tensor::zeros({2, 4}), w = Tensor::zeros({4, 3});
  CHECK(test::error_of([&] {
          ops::matmul_bias(x, w, Tensor::zeros({4}));
        }).find("bias must have shape (3,)") != std::string::npos);
  CHECK(test::error_of([&] {
          ops::matmul_bias(x, w, Tensor::zeros({3}), false, false, "softmax");
        }).find("unknown activation 'softmax'") != std::string::npos);
}

TEST_CASE("gradients: autograd matches finite differences on reference") {
  gradients_on("reference");
}
TEST_CASE("gradients: autograd matches finite differences on onednn") {
  gradients_on("onednn");
}
TEST_CASE("gradients: autograd matches finite differences on cudnn") {
  gradients_on("cudnn");
}
TEST_CASE("gradients: autograd matches finite differences on opencl") {
  gradients_on("opencl");
}
