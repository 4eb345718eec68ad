// The reference backend: declarations shared by its source files, and the small checks every
// kernel runs on its arguments before touching memory.
//
// Kernels are plain loops over contiguous row-major float32 views, accumulating in double. They are
// the oracle the other backends are tested against, so they favour the obvious formulation; the only
// concession to speed is loop order (the innermost loop runs over a contiguous axis).
#pragma once

#include <lamina/sdk/plugin.hpp>

#include <cmath>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <string>

namespace lamina::reference {

// Every kernel has the lamina_kernel_fn signature; plugin.cpp lists them by op name.
using KernelFn = lamina_status(void* backend, const lamina_view* inputs, int32_t n_inputs,
                               const lamina_view* outputs, int32_t n_outputs, const lamina_attrs* attrs,
                               lamina_error* error);

// elementwise.cpp
KernelFn copy, fill, neg, exp, log, sqrt, square, relu, sigmoid, tanh, scale, clip;
KernelFn relu_backward, sigmoid_backward, tanh_backward, clip_backward;
KernelFn add, sub, mul, div;
// reduce.cpp
KernelFn reduce_sum, softmax, log_softmax;
KernelFn mean_squared_error, mean_squared_error_backward, softmax_cross_entropy, softmax_cross_entropy_backward;
// matmul.cpp
KernelFn matmul, matmul_bias;
// conv.cpp
KernelFn conv2d, conv2d_bias, conv2d_backward_data, conv2d_backward_filter, conv2d_backward_filter_bias;
// update.cpp
KernelFn sgd_update, adadelta_update, adam_update, rmsprop_update;
// pool.cpp
KernelFn max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward;
// random.cpp
KernelFn dropout_mask;

// memory.cpp: the backend's buffer functions (plain 64-byte-aligned host memory).
void* alloc(void* self, size_t bytes, lamina_error* error);
void release(void* self, void* buffer);
lamina_status copy_in(void* self, void* buffer, size_t offset, const void* source, size_t bytes,
                      lamina_error* error);
lamina_status copy_out(void* self, const void* buffer, size_t offset, void* destination, size_t bytes,
                       lamina_error* error);
lamina_status synchronize(void* self, lamina_error* error);

// Runs a kernel body, turning any exception into LAMINA_ERROR with a message that names the op, so
// that an error surfacing from deep inside a model still says which kernel refused what.
template <class Body>
lamina_status run_kernel(const char* op, lamina_error* error, Body&& body) noexcept {
  return sdk::guarded(error, [&] {
    try {
      body();
    } catch (const std::exception& e) {
      throw sdk::Error(std::string("reference backend, op '") + op + "': " + e.what());
    }
  });
}

}  // namespace lamina::reference

// Like the SDK's LAMINA_KERNEL, but the kernel has external linkage so that plugin.cpp can put
// kernels defined in other files into the backend's table. Use inside namespace lamina::reference.
#define REFERENCE_KERNEL(name)                                                                       \
  static void name##_body(::lamina::sdk::KernelArgs& args);                                          \
  lamina_status name(void* backend, const lamina_view* in, int32_t n_in, const lamina_view* out,     \
                     int32_t n_out, const lamina_attrs* attrs, lamina_error* error) {                \
    ::lamina::sdk::KernelArgs args{backend, in, n_in, out, n_out, ::lamina::sdk::AttrReader(attrs)}; \
    return ::lamina::reference::run_kernel(#name, error, [&] { name##_body(args); });                \
  }                                                                                                  \
  static void name##_body(::lamina::sdk::KernelArgs& args)

namespace lamina::reference {

// ------------------------------------------------------------------------------------------------
// Argument checks. They cost O(rank) and keep a malformed call from reading or writing out of bounds.

inline std::string shape_string(const lamina_view& v) {
  std::string s = "[";
  for (int32_t i = 0; i < v.ndim; ++i) s += (i ? ", " : "") + std::to_string(v.shape[i]);
  return s + "]";
}

inline std::string name_list(std::initializer_list<const char*> names) {
  std::string s;
  for (const char* n : names) s += (s.empty() ? "" : ", ") + std::string(n);
  return "(" + s + ")";
}

inline void check_view(const lamina_view& v, const char* name) {
  if (v.ndim < 0 || v.ndim > LAMINA_MAX_DIMS)
    throw sdk::Error(std::string(name) + " has invalid rank " + std::to_string(v.ndim));
  if (v.dtype != LAMINA_DTYPE_FLOAT32)
    throw sdk::Error(std::string(name) + " has dtype " + std::to_string(v.dtype) +
                     ", only float32 is supported");
  for (int32_t i = 0; i < v.ndim; ++i)
    if (v.shape[i] < 0) throw sdk::Error(std::string(name) + " has a negative dimension " + shape_string(v));
  if (!v.data && sdk::view_size(v) > 0) throw sdk::Error(std::string(name) + " has no data");
}

// Checks the number of inputs and outputs (named for the message) and that every view is sound.
inline void expect_arity(const sdk::KernelArgs& args, std::initializer_list<const char*> inputs,
                         std::initializer_list<const char*> outputs) {
  if (args.n_inputs != int32_t(inputs.size()) || args.n_outputs != int32_t(outputs.size()))
    throw sdk::Error("takes inputs " + name_list(inputs) + " and outputs " + name_list(outputs) + ", got " +
                     std::to_string(args.n_inputs) + " input(s) and " + std::to_string(args.n_outputs) +
                     " output(s)");
  const char* const* in_name = inputs.begin();
  for (int32_t i = 0; i < args.n_inputs; ++i) check_view(args.inputs[i], in_name[i]);
  const char* const* out_name = outputs.begin();
  for (int32_t i = 0; i < args.n_outputs; ++i) check_view(args.outputs[i], out_name[i]);
}

inline void expect_rank(const lamina_view& v, const char* name, int32_t rank, const char* layout) {
  if (v.ndim != rank)
    throw sdk::Error(std::string(name) + " has shape " + shape_string(v) + ", expected rank " +
                     std::to_string(rank) + " " + layout);
}

inline bool same_shape(const lamina_view& a, const lamina_view& b) {
  if (a.ndim != b.ndim) return false;
  for (int32_t i = 0; i < a.ndim; ++i)
    if (a.shape[i] != b.shape[i]) return false;
  return true;
}

inline void expect_same_shape(const lamina_view& a, const char* a_name, const lamina_view& b,
                              const char* b_name) {
  if (!same_shape(a, b))
    throw sdk::Error(std::string(a_name) + " has shape " + shape_string(a) + " but " + b_name +
                     " has shape " + shape_string(b) + "; they must match");
}

// The activation of the fused ops, in double like every reference computation.
inline double activate(sdk::Activation act, double z) {
  switch (act) {
    case sdk::Activation::relu: return z > 0.0 ? z : 0.0;
    case sdk::Activation::sigmoid: return 1.0 / (1.0 + std::exp(-z));
    case sdk::Activation::tanh: return std::tanh(z);
    case sdk::Activation::linear: break;
  }
  return z;
}

inline const float* input(const sdk::KernelArgs& args, int32_t i) {
  return sdk::host_data(args.inputs[i]);
}
inline float* output(const sdk::KernelArgs& args, int32_t i) {
  return sdk::host_data(args.outputs[i]);
}

// ------------------------------------------------------------------------------------------------
// Sliding windows, shared by conv2d and the pools: a kh×kw window moved by (sh, sw) over an input
// padded by (top, bottom, left, right). Output cell (i, j) covers input rows i·sh − top + [0, kh)
// and columns j·sw − left + [0, kw).

struct Window {
  int64_t kh = 1, kw = 1;
  int64_t sh = 1, sw = 1;
  int64_t top = 0, bottom = 0, left = 0, right = 0;
};

// Reads `strides` and `pads` (defaults: 1 and 0) for a window of kh×kw.
inline Window read_window(const sdk::AttrReader& attrs, int64_t kh, int64_t kw) {
  auto strides = attrs.get_ints<2>("strides", {1, 1});
  auto pads = attrs.get_ints<4>("pads", {0, 0, 0, 0});
  if (strides[0] < 1 || strides[1] < 1)
    throw sdk::Error("strides must be >= 1, got [" + std::to_string(strides[0]) + ", " +
                     std::to_string(strides[1]) + "]");
  for (int64_t p : pads)
    if (p < 0) throw sdk::Error("pads must be >= 0, got a pad of " + std::to_string(p));
  if (kh < 1 || kw < 1)
    throw sdk::Error("window must be at least 1x1, got " + std::to_string(kh) + "x" + std::to_string(kw));
  return {kh, kw, strides[0], strides[1], pads[0], pads[1], pads[2], pads[3]};
}

// The output size along one axis is fixed by the input size and the window; a mismatch means the
// caller computed shapes with a different convention, and the kernel would silently compute
// something else, so it is refused.
inline void expect_extent(const char* axis, int64_t in, int64_t pad_lo, int64_t pad_hi, int64_t k, int64_t s,
                          int64_t out) {
  int64_t padded = in + pad_lo + pad_hi;
  int64_t expected = padded >= k ? (padded - k) / s + 1 : 0;
  if (out != expected || expected == 0)
    throw sdk::Error(std::string("output ") + axis + " is " + std::to_string(out) + " but an input " + axis +
                     " of " + std::to_string(in) + " padded by " + std::to_string(pad_lo) + "+" +
                     std::to_string(pad_hi) + " with window " + std::to_string(k) + " and stride " +
                     std::to_string(s) + " gives " + std::to_string(expected));
}

inline void expect_window_fits(const Window& w, int64_t h, int64_t wd, int64_t oh, int64_t ow) {
  expect_extent("height", h, w.top, w.bottom, w.kh, w.sh, oh);
  expect_extent("width", wd, w.left, w.right, w.kw, w.sw, ow);
}

}  // namespace lamina::reference
