// Element-wise kernels: copy and fill (the queue's own commands), unary maps, their backward rules,
// broadcasting binary ops (arithmetic, comparisons, maximum, minimum, pow) and where.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels.hpp"

namespace lamina::opencl {
namespace {

// A work-item handles VW consecutive elements as one vector (the host builds it with VW = 8). Every
// tensor is a buffer and the index of its element 0 there; alpha and beta are the ops' float
// attributes where they have any. Z(v) is v as a vector.
const std::string kSource = std::string(kVectorPreamble) + R"CL(
#define Z(v) ((vec_t)(v))

// y = f(x); x and y have n elements, the last vector possibly partial.
#define UNARY(name, expr)                                                                         \
  __kernel void name(__global const float* x, int x_off, __global float* y, int y_off, int n,     \
                     float alpha, float beta) {                                                   \
    const int i = get_global_id(0) * VW;                                                          \
    if (i >= n) return;                                                                           \
    const int count = min(n - i, VW);                                                             \
    const vec_t v = LOAD_SOME(x + x_off + i, count);                                              \
    STORE_SOME((expr), y + y_off + i, count);                                                     \
  }
UNARY(neg_kernel, -v)
UNARY(exp_kernel, exp(v))
UNARY(log_kernel, log(v))
UNARY(sqrt_kernel, sqrt(v))
UNARY(square_kernel, v * v)
UNARY(relu_kernel, v > Z(0.0f) ? v : Z(0.0f))
UNARY(sigmoid_kernel, 1.0f / (1.0f + exp(-v)))
UNARY(tanh_kernel, tanh(v))
UNARY(erf_kernel, erf(v))
// sign(NaN) is NaN, as on the reference backend (OpenCL's sign gives 0)
UNARY(sign_kernel, v > Z(0.0f) ? Z(1.0f) : (v < Z(0.0f) ? Z(-1.0f) : (v == Z(0.0f) ? Z(0.0f) : v)))
UNARY(abs_kernel, fabs(v))
UNARY(floor_kernel, floor(v))
// rint rounds in the default mode, to nearest with halves to even, as Keras rounds
UNARY(round_kernel, rint(v))
UNARY(scale_kernel, fma(Z(alpha), v, Z(beta)))
// min(max(v, low), high) with std::min/std::max's rules, so that NaN passes through as it does on
// the reference backend
UNARY(clip_kernel, Z(beta) < (v < Z(alpha) ? Z(alpha) : v) ? Z(beta) : (v < Z(alpha) ? Z(alpha) : v))

// dx = f(a, dy), where a is the forward op's input or output; all three have n elements.
#define BACKWARD(name, expr)                                                                      \
  __kernel void name(__global const float* a, int a_off, __global const float* dy, int dy_off,    \
                     __global float* dx, int dx_off, int n, float low, float high) {              \
    const int i = get_global_id(0) * VW;                                                          \
    if (i >= n) return;                                                                           \
    const int count = min(n - i, VW);                                                             \
    const vec_t u = LOAD_SOME(a + a_off + i, count), g = LOAD_SOME(dy + dy_off + i, count);       \
    STORE_SOME((expr), dx + dx_off + i, count);                                                   \
  }
BACKWARD(relu_backward_kernel, u > Z(0.0f) ? g : Z(0.0f))
BACKWARD(sigmoid_backward_kernel, g * u * (1.0f - u))
BACKWARD(tanh_backward_kernel, g * (1.0f - u * u))
// low and high arrive rounded inwards, so these float comparisons equal the double ones
BACKWARD(clip_backward_kernel, Z(low) <= u && u <= Z(high) ? g : Z(0.0f))

// y = f(a, b) with broadcasting. The host merges y's axes until neighbours differ in how a or b
// steps along them; along axis d (0 innermost), a advances stride_a[d] elements per step (0 where a
// is broadcast), likewise b. Axes 0 and 1 are the NDRange's first two dimensions, axis 0 in vectors
// of VW (a and b step by 1 or 0 along it; its last vector may be partial), and the rest are folded
// into the third, so that work-items divide only when four or more axes remain (broadcasting that
// alternates that often is rare; same shapes leave one axis, a bias row two).
typedef struct {
  int rank;
  int shape[8];
  int stride_a[8];
  int stride_b[8];
} Broadcast;

#define BINARY(name, expr)                                                                        \
  __kernel void name(__global const float* a, int a_off, __global const float* b, int b_off,      \
                     __global float* y, int y_off, Broadcast s, int outer) {                      \
    const int i0 = get_global_id(0) * VW, i1 = get_global_id(1), i2 = get_global_id(2);          \
    if (i0 >= s.shape[0] || i1 >= s.shape[1] || i2 >= outer) return;                              \
    int ia = a_off + i0 * s.stride_a[0] + i1 * s.stride_a[1];                                     \
    int ib = b_off + i0 * s.stride_b[0] + i1 * s.stride_b[1];                                     \
    if (s.rank <= 3) {                                                                            \
      ia += i2 * s.stride_a[2];                                                                   \
      ib += i2 * s.stride_b[2];                                                                   \
    } else {                                                                                      \
      int rest = i2;                                                                              \
      for (int d = 2; d < s.rank; ++d) {                                                          \
        const int q = rest / s.shape[d], k = rest - q * s.shape[d];                               \
        ia += k * s.stride_a[d];                                                                  \
        ib += k * s.stride_b[d];                                                                  \
        rest = q;                                                                                 \
      }                                                                                           \
    }                                                                                             \
    const int count = min(s.shape[0] - i0, VW);                                                   \
    const vec_t u = s.stride_a[0] ? LOAD_SOME(a + ia, count) : Z(a[ia]);                          \
    const vec_t v = s.stride_b[0] ? LOAD_SOME(b + ib, count) : Z(b[ib]);                          \
    STORE_SOME((expr), y + y_off + (i2 * s.shape[1] + i1) * s.shape[0] + i0, count);              \
  }
BINARY(add_kernel, u + v)
BINARY(sub_kernel, u - v)
BINARY(mul_kernel, u * v)
BINARY(div_kernel, u / v)
BINARY(greater_kernel, u > v ? Z(1.0f) : Z(0.0f))
BINARY(greater_equal_kernel, u >= v ? Z(1.0f) : Z(0.0f))
BINARY(less_kernel, u < v ? Z(1.0f) : Z(0.0f))
BINARY(less_equal_kernel, u <= v ? Z(1.0f) : Z(0.0f))
BINARY(equal_kernel, u == v ? Z(1.0f) : Z(0.0f))
BINARY(not_equal_kernel, u != v ? Z(1.0f) : Z(0.0f))
// u on a tie; NaN in either gives NaN (u + v), as on the reference backend
BINARY(maximum_kernel, u >= v ? u : (v > u ? v : u + v))
BINARY(minimum_kernel, u <= v ? u : (v < u ? v : u + v))
BINARY(pow_kernel, pow(u, v))

// y = a where cond != 0, else b, one element per work-item: the host passes y's axes (outermost
// first) and each operand's element stride along them, 0 where it is broadcast.
typedef struct {
  int rank;
  int shape[8];
  int stride_c[8];
  int stride_a[8];
  int stride_b[8];
} Select;

__kernel void where_kernel(__global const float* c, int c_off, __global const float* a, int a_off,
                           __global const float* b, int b_off, __global float* y, int y_off, Select s,
                           int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  int rest = i, ic = c_off, ia = a_off, ib = b_off;
  for (int d = s.rank - 1; d >= 0; --d) {
    const int q = rest / s.shape[d], k = rest - q * s.shape[d];
    ic += k * s.stride_c[d];
    ia += k * s.stride_a[d];
    ib += k * s.stride_b[d];
    rest = q;
  }
  y[y_off + i] = c[ic] != 0.0f ? a[ia] : b[ib];
}
)CL";

// Must match the OpenCL C struct above: ints only, so the layouts agree on every device.
struct Broadcast {
  cl_int rank;
  cl_int shape[8];
  cl_int stride_a[8];
  cl_int stride_b[8];
};

struct Select {
  cl_int rank;
  cl_int shape[8];
  cl_int stride_c[8];
  cl_int stride_a[8];
  cl_int stride_b[8];
};

// Work-items per work-group: enough that a CPU device amortises its per-group cost, and a multiple
// of every GPU's wavefront.
constexpr size_t kGroup = 64;

// Elements per work-item: one vector, the last one of a range partial.
constexpr int kWidth = 8;

cl_kernel elementwise_kernel(Backend& b, const char* name) {
  return b.kernel("elementwise", kSource.c_str(), defines({{"VW", kWidth}}), name);
}

void unary(const sdk::KernelArgs& args, const char* kernel, float alpha = 0.0f, float beta = 0.0f) {
  // x is any shape, y is x's shape
  expect_arity(args, {"x"}, {"y"});
  expect_same_shape(args.inputs[0], "x", args.outputs[0], "y");
  Backend& b = backend_of(args);
  const cl_int n = as_int(sdk::view_size(args.outputs[0]));
  cl_kernel k = elementwise_kernel(b, kernel);
  set_args(k, device_tensor(args.inputs[0]), device_tensor(args.outputs[0]), n, alpha, beta);
  launch(b, k, {size_t((n + kWidth - 1) / kWidth)}, {kGroup});
}

void backward(const sdk::KernelArgs& args, const char* a_name, const char* kernel, float low = 0.0f,
              float high = 0.0f) {
  // a, dy and dx all have the same shape
  expect_arity(args, {a_name, "dy"}, {"dx"});
  expect_same_shape(args.inputs[0], a_name, args.inputs[1], "dy");
  expect_same_shape(args.inputs[1], "dy", args.outputs[0], "dx");
  Backend& b = backend_of(args);
  const cl_int n = as_int(sdk::view_size(args.outputs[0]));
  cl_kernel k = elementwise_kernel(b, kernel);
  set_args(k, device_tensor(args.inputs[0]), device_tensor(args.inputs[1]), device_tensor(args.outputs[0]), n,
           low, high);
  launch(b, k, {size_t((n + kWidth - 1) / kWidth)}, {kGroup});
}

void binary(const sdk::KernelArgs& args, const char* kernel) {
  // a and b have y's rank; each dim of a and b is y's or 1
  expect_arity(args, {"a", "b"}, {"y"});
  const lamina_view& av = args.inputs[0];
  const lamina_view& bv = args.inputs[1];
  const lamina_view& yv = args.outputs[0];
  expect_broadcast_shapes(av, bv, yv);

  // Axes from the innermost out, with a's and b's element strides (0 where broadcast); an axis
  // merges into the one inside it when both a and b step across the pair as across one axis.
  Broadcast s{};
  int64_t step_a = 1, step_b = 1;
  int64_t shape[LAMINA_MAX_DIMS], stride_a[LAMINA_MAX_DIMS], stride_b[LAMINA_MAX_DIMS];
  int rank = 0;  // axes kept so far, innermost first
  for (int32_t d = yv.ndim - 1; d >= 0; --d) {
    const int64_t extent = yv.shape[d];
    const int64_t sa = av.shape[d] == 1 ? 0 : step_a, sb = bv.shape[d] == 1 ? 0 : step_b;
    step_a *= av.shape[d];
    step_b *= bv.shape[d];
    if (extent == 1) continue;
    if (rank > 0 && sa == stride_a[rank - 1] * shape[rank - 1] &&
        sb == stride_b[rank - 1] * shape[rank - 1]) {
      shape[rank - 1] *= extent;
      continue;
    }
    shape[rank] = extent, stride_a[rank] = sa, stride_b[rank] = sb;
    ++rank;
  }
  // At least two axes (the kernel reads two), unused ones of size 1.
  for (; rank < 2; ++rank) shape[rank] = 1, stride_a[rank] = 0, stride_b[rank] = 0;
  s.rank = rank;
  int64_t outer = 1;
  for (int i = 0; i < rank; ++i) {
    s.shape[i] = as_int(shape[i]);
    s.stride_a[i] = as_int(stride_a[i]);
    s.stride_b[i] = as_int(stride_b[i]);
    if (i >= 2) outer *= shape[i];
  }

  Backend& b = backend_of(args);
  cl_kernel k = elementwise_kernel(b, kernel);
  set_args(k, device_tensor(av), device_tensor(bv), device_tensor(yv), s, as_int(outer));
  const size_t vectors = size_t((shape[0] + kWidth - 1) / kWidth);
  const auto [l0, l1] = groups_of(vectors, size_t(shape[1]), kGroup);
  launch(b, k, {vectors, size_t(shape[1]), size_t(outer)}, {l0, l1, 1});
}

void where_launch(const sdk::KernelArgs& args) {
  // cond, a and b have y's rank; each of their dims is y's or 1
  expect_arity(args, {"cond", "a", "b"}, {"y"});
  const lamina_view& yv = args.outputs[0];
  const char* names[3] = {"cond", "a", "b"};
  Select s{};
  s.rank = yv.ndim;
  cl_int* strides[3] = {s.stride_c, s.stride_a, s.stride_b};
  for (int k = 0; k < 3; ++k) {
    const lamina_view& v = args.inputs[k];
    if (v.ndim != yv.ndim)
      throw sdk::Error(std::string(names[k]) + " " + shape_string(v) + " is not at y " + shape_string(yv) +
                       "'s rank");
    int64_t step = 1;
    for (int32_t d = yv.ndim - 1; d >= 0; --d) {
      if (v.shape[d] != yv.shape[d] && v.shape[d] != 1)
        throw sdk::Error("cannot broadcast " + std::string(names[k]) + " " + shape_string(v) + " to y " +
                         shape_string(yv));
      strides[k][d] = v.shape[d] == 1 ? 0 : as_int(step);
      step *= v.shape[d];
    }
  }
  for (int32_t d = 0; d < yv.ndim; ++d) s.shape[d] = as_int(yv.shape[d]);
  const cl_int n = as_int(sdk::view_size(yv));
  Backend& b = backend_of(args);
  cl_kernel k = elementwise_kernel(b, "where_kernel");
  set_args(k, device_tensor(args.inputs[0]), device_tensor(args.inputs[1]), device_tensor(args.inputs[2]),
           device_tensor(yv), s, n);
  launch(b, k, {size_t(n)}, {kGroup});
}

// The smallest float at least `bound`, and the largest at most `bound`: a float x compares with
// them as it does with the double bound (x >= low, x <= high).
float float_at_least(double bound) {
  const float f = float(bound);
  return double(f) < bound ? std::nextafter(f, std::numeric_limits<float>::infinity()) : f;
}
float float_at_most(double bound) {
  const float f = float(bound);
  return double(f) > bound ? std::nextafter(f, -std::numeric_limits<float>::infinity()) : f;
}

}  // namespace

OPENCL_KERNEL(copy) {
  // x and y have the same number of elements; y = x, element by element in row-major order
  expect_arity(args, {"x"}, {"y"});
  const lamina_view& xv = args.inputs[0];
  const lamina_view& yv = args.outputs[0];
  const int64_t n = sdk::view_size(yv);
  if (sdk::view_size(xv) != n)
    throw sdk::Error("x " + shape_string(xv) + " and y " + shape_string(yv) + " differ in size");
  Backend& b = backend_of(args);
  const size_t bytes = size_t(n) * sizeof(float);
  cl_mem x = static_cast<cl_mem>(xv.data), y = static_cast<cl_mem>(yv.data);
  if (bytes == 0 || (x == y && xv.offset == yv.offset)) return;  // the queue refuses empty copies
  if (x == y && xv.offset < yv.offset + bytes && yv.offset < xv.offset + bytes) {
    // The queue refuses overlapping copies within one buffer; go through scratch memory.
    cl_mem tmp = b.scratch(0, bytes);
    check_cl(clEnqueueCopyBuffer(b.queue, x, tmp, xv.offset, 0, bytes, 0, nullptr, nullptr),
             "clEnqueueCopyBuffer");
    check_cl(clEnqueueCopyBuffer(b.queue, tmp, y, 0, yv.offset, bytes, 0, nullptr, nullptr),
             "clEnqueueCopyBuffer");
    return;
  }
  check_cl(clEnqueueCopyBuffer(b.queue, x, y, xv.offset, yv.offset, bytes, 0, nullptr, nullptr),
           "clEnqueueCopyBuffer");
}

OPENCL_KERNEL(fill) {
  // y is any shape; callers may pass a tensor whose shape y has, which is not read
  if (args.n_inputs == 1)
    expect_arity(args, {"like"}, {"y"});
  else
    expect_arity(args, {}, {"y"});
  args.attrs.need("value");
  const cl_float value = float(args.attrs.get_float("value", 0.0));
  const lamina_view& yv = args.outputs[0];
  if (sdk::view_size(yv) == 0) return;
  Backend& b = backend_of(args);
  check_cl(clEnqueueFillBuffer(b.queue, static_cast<cl_mem>(yv.data), &value, sizeof(value), yv.offset,
                               size_t(sdk::view_size(yv)) * sizeof(float), 0, nullptr, nullptr),
           "clEnqueueFillBuffer");
}

OPENCL_KERNEL(neg) {
  unary(args, "neg_kernel");
}
OPENCL_KERNEL(exp) {
  unary(args, "exp_kernel");
}
OPENCL_KERNEL(log) {
  unary(args, "log_kernel");
}
OPENCL_KERNEL(sqrt) {
  unary(args, "sqrt_kernel");
}
OPENCL_KERNEL(square) {
  unary(args, "square_kernel");
}
OPENCL_KERNEL(relu) {
  unary(args, "relu_kernel");
}
OPENCL_KERNEL(sigmoid) {
  unary(args, "sigmoid_kernel");
}
OPENCL_KERNEL(tanh) {
  unary(args, "tanh_kernel");
}
OPENCL_KERNEL(erf) {
  unary(args, "erf_kernel");
}

OPENCL_KERNEL(scale) {
  unary(args, "scale_kernel", float(args.attrs.get_float("alpha", 1.0)),
        float(args.attrs.get_float("beta", 0.0)));
}

OPENCL_KERNEL(clip) {
  args.attrs.need("low");
  args.attrs.need("high");
  unary(args, "clip_kernel", float(args.attrs.get_float("low", 0.0)),
        float(args.attrs.get_float("high", 0.0)));
}

OPENCL_KERNEL(relu_backward) {
  backward(args, "x", "relu_backward_kernel");
}
OPENCL_KERNEL(sigmoid_backward) {
  backward(args, "y", "sigmoid_backward_kernel");
}
OPENCL_KERNEL(tanh_backward) {
  backward(args, "y", "tanh_backward_kernel");
}

OPENCL_KERNEL(clip_backward) {
  args.attrs.need("low");
  args.attrs.need("high");
  const double low = args.attrs.get_float("low", 0.0), high = args.attrs.get_float("high", 0.0);
  backward(args, "x", "clip_backward_kernel", float_at_least(low), float_at_most(high));
}

OPENCL_KERNEL(add) {
  binary(args, "add_kernel");
}
OPENCL_KERNEL(sub) {
  binary(args, "sub_kernel");
}
OPENCL_KERNEL(mul) {
  binary(args, "mul_kernel");
}
OPENCL_KERNEL(div) {
  binary(args, "div_kernel");
}

OPENCL_KERNEL(sign) {
  unary(args, "sign_kernel");
}
OPENCL_KERNEL(abs) {
  unary(args, "abs_kernel");
}
OPENCL_KERNEL(floor) {
  unary(args, "floor_kernel");
}
OPENCL_KERNEL(round) {
  unary(args, "round_kernel");
}
OPENCL_KERNEL(greater) {
  binary(args, "greater_kernel");
}
OPENCL_KERNEL(greater_equal) {
  binary(args, "greater_equal_kernel");
}
OPENCL_KERNEL(less) {
  binary(args, "less_kernel");
}
OPENCL_KERNEL(less_equal) {
  binary(args, "less_equal_kernel");
}
OPENCL_KERNEL(equal) {
  binary(args, "equal_kernel");
}
OPENCL_KERNEL(not_equal) {
  binary(args, "not_equal_kernel");
}
OPENCL_KERNEL(maximum) {
  binary(args, "maximum_kernel");
}
OPENCL_KERNEL(minimum) {
  binary(args, "minimum_kernel");
}
OPENCL_KERNEL(pow) {
  binary(args, "pow_kernel");
}
OPENCL_KERNEL(where) {
  where_launch(args);
}

}  // namespace lamina::opencl
