// Element-wise ops: copy, fill, the unary functions and their backward passes, and the four
// broadcasting binaries (OpenMP loops, like copy and fill; see broadcast_loop for why).
//
// Functions with fixed parameters run as oneDNN eltwise primitives over the flat buffer (one
// cached primitive per op and element count). scale, clip and clip_backward take their
// parameters per call, and oneDNN 2.x bakes alpha/beta into its generated code, so a learning
// rate that changes every step would rebuild a primitive every call; they are OpenMP loops, which
// are memory-bound like the primitive would be. clip_backward is a loop anyway: oneDNN's clip
// backward excludes the lower bound, where lamina includes both. log is a loop for accuracy
// (see log_kernel), erf, sign, abs, floor and round for want of a primitive (or, for abs, to keep
// NaN's sign). Tensors under kParallelThreshold elements skip the primitives for plain loops (see
// unary_small). The comparisons, maximum, minimum and pow are broadcasting binaries like add; where
// is a loop of its own (where_kernel).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "kernels.hpp"
#include "loops.hpp"

namespace lamina::onednn {
namespace {

using dnnl::algorithm;
using dnnl::memory;

// ---------------------------------------------------------------------------------------------
// oneDNN eltwise

struct EltwiseEntry {
  dnnl::primitive primitive;
  // forward: a = src, out = dst; backward: a = src or dst (as a_arg says), b = diff_dst,
  // out = diff_src
  memory a, b, out;
  int a_arg = DNNL_ARG_SRC;
};

memory::desc flat_desc(int64_t n) {
  return memory::desc({n}, memory::data_type::f32, memory::format_tag::a);
}

// Tensors below kParallelThreshold elements run as the loops below instead of a primitive: a
// oneDNN call costs a microsecond or two before it touches the data, more than the loop takes.
enum class Unary { neg, exp, sqrt, square, relu, sigmoid, tanh };
enum class Backward { relu, sigmoid, tanh };  // from x (relu) or y (sigmoid, tanh), and dy

LAMINA_INLINE void unary_small_body(Unary f, const float* __restrict x, float* __restrict y, int64_t n) {
  switch (f) {
    case Unary::neg:
      for (int64_t i = 0; i < n; ++i) y[i] = -x[i];
      break;
    case Unary::exp:
      for (int64_t i = 0; i < n; ++i) y[i] = vector_exp(x[i]);
      break;
    case Unary::sqrt:
      for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]);
      break;
    case Unary::square:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * x[i];
      break;
    case Unary::relu:
      for (int64_t i = 0; i < n; ++i) y[i] = std::max(x[i], 0.f);
      break;
    case Unary::sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = vector_sigmoid(x[i]);
      break;
    case Unary::tanh:
      for (int64_t i = 0; i < n; ++i) y[i] = vector_tanh(x[i]);
      break;
  }
}
LAMINA_VECTOR_DISPATCH(void, unary_small,
                       (Unary f, const float* __restrict x, float* __restrict y, int64_t n), (f, x, y, n))

LAMINA_INLINE void backward_small_body(Backward f, const float* __restrict a, const float* __restrict dy,
                                       float* __restrict dx, int64_t n) {
  switch (f) {
    case Backward::relu:
      for (int64_t i = 0; i < n; ++i) dx[i] = a[i] > 0.f ? dy[i] : 0.f;
      break;
    case Backward::sigmoid:
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * a[i] * (1.f - a[i]);
      break;
    case Backward::tanh:
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.f - a[i] * a[i]);
      break;
  }
}
LAMINA_VECTOR_DISPATCH(void, backward_small,
                       (Backward f, const float* __restrict a, const float* __restrict dy,
                        float* __restrict dx, int64_t n),
                       (f, a, dy, dx, n))

// y = f(x) for x → y.
void eltwise_forward(const sdk::KernelArgs& args, const char* op, algorithm alg, float alpha, float beta,
                     Unary f) {
  expect_views(args, 1, 1);
  const lamina_view& x = args.inputs[0];
  const lamina_view& y = args.outputs[0];
  expect_same_size(x, "x", y, "y");
  int64_t n = sdk::view_size(y);
  if (n == 0) return;
  if (n < kParallelThreshold) {
    unary_small(f, in_data(x), out_data(y), n);
    return;
  }
  Backend& be = backend_of(args);
  std::lock_guard lock(be.mutex);
  with_dnnl(args, [&] {
    auto entry = be.cache.get<EltwiseEntry>(CacheKey(op).add(n), [&] {
      memory::desc md = flat_desc(n);
      dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, alg, md, alpha, beta);
      dnnl::eltwise_forward::primitive_desc pd(desc, be.engine);
      auto e = std::make_shared<EltwiseEntry>();
      e->primitive = dnnl::eltwise_forward(pd);
      e->a = unbound_memory(md, be.engine);
      e->out = unbound_memory(md, be.engine);
      return e;
    });
    bind(entry->a, x.data);
    bind(entry->out, y.data);
    entry->primitive.execute(be.stream, {{DNNL_ARG_SRC, entry->a}, {DNNL_ARG_DST, entry->out}});
    be.stream.wait();
  });
}

// dx = f'(·) · dy for (x or y), dy → dx. `alg` decides whether the first input is the forward's
// source (relu) or its result (the *_use_dst_for_bwd algorithms).
void eltwise_backward(const sdk::KernelArgs& args, const char* op, algorithm alg, bool first_is_dst,
                      Backward f) {
  expect_views(args, 2, 1);
  const lamina_view& data = args.inputs[0];
  const lamina_view& dy = args.inputs[1];
  const lamina_view& dx = args.outputs[0];
  expect_same_size(data, "x", dx, "dx");
  expect_same_size(dy, "dy", dx, "dx");
  int64_t n = sdk::view_size(dx);
  if (n == 0) return;
  if (n < kParallelThreshold) {
    backward_small(f, in_data(data), in_data(dy), out_data(dx), n);
    return;
  }
  Backend& be = backend_of(args);
  std::lock_guard lock(be.mutex);
  with_dnnl(args, [&] {
    auto entry = be.cache.get<EltwiseEntry>(CacheKey(op).add(n), [&] {
      memory::desc md = flat_desc(n);
      dnnl::eltwise_forward::desc hint_desc(dnnl::prop_kind::forward_training, alg, md, 0.f, 0.f);
      dnnl::eltwise_forward::primitive_desc hint(hint_desc, be.engine);
      dnnl::eltwise_backward::desc desc(alg, md, md, 0.f, 0.f);
      dnnl::eltwise_backward::primitive_desc pd(desc, be.engine, hint);
      auto e = std::make_shared<EltwiseEntry>();
      e->primitive = dnnl::eltwise_backward(pd);
      e->a = unbound_memory(md, be.engine);
      e->b = unbound_memory(md, be.engine);
      e->out = unbound_memory(md, be.engine);
      e->a_arg = first_is_dst ? DNNL_ARG_DST : DNNL_ARG_SRC;
      return e;
    });
    bind(entry->a, data.data);
    bind(entry->b, dy.data);
    bind(entry->out, dx.data);
    entry->primitive.execute(
        be.stream,
        {{entry->a_arg, entry->a}, {DNNL_ARG_DIFF_DST, entry->b}, {DNNL_ARG_DIFF_SRC, entry->out}});
    be.stream.wait();
  });
}

ONEDNN_KERNEL(neg_kernel, "neg") {
  eltwise_forward(args, "neg", algorithm::eltwise_linear, -1.f, 0.f, Unary::neg);
}
ONEDNN_KERNEL(exp_kernel, "exp") {
  eltwise_forward(args, "exp", algorithm::eltwise_exp, 0.f, 0.f, Unary::exp);
}
ONEDNN_KERNEL(sqrt_kernel, "sqrt") {
  eltwise_forward(args, "sqrt", algorithm::eltwise_sqrt, 0.f, 0.f, Unary::sqrt);
}
ONEDNN_KERNEL(square_kernel, "square") {
  eltwise_forward(args, "square", algorithm::eltwise_square, 0.f, 0.f, Unary::square);
}
ONEDNN_KERNEL(relu_kernel, "relu") {
  eltwise_forward(args, "relu", algorithm::eltwise_relu, 0.f, 0.f, Unary::relu);
}
ONEDNN_KERNEL(sigmoid_kernel, "sigmoid") {
  eltwise_forward(args, "sigmoid", algorithm::eltwise_logistic, 0.f, 0.f, Unary::sigmoid);
}
ONEDNN_KERNEL(tanh_kernel, "tanh") {
  eltwise_forward(args, "tanh", algorithm::eltwise_tanh, 0.f, 0.f, Unary::tanh);
}

ONEDNN_KERNEL(relu_backward_kernel, "relu_backward") {
  eltwise_backward(args, "relu_backward", algorithm::eltwise_relu, /*first_is_dst=*/false, Backward::relu);
}
ONEDNN_KERNEL(sigmoid_backward_kernel, "sigmoid_backward") {
  eltwise_backward(args, "sigmoid_backward", algorithm::eltwise_logistic_use_dst_for_bwd,
                   /*first_is_dst=*/true, Backward::sigmoid);
}
ONEDNN_KERNEL(tanh_backward_kernel, "tanh_backward") {
  eltwise_backward(args, "tanh_backward", algorithm::eltwise_tanh_use_dst_for_bwd, /*first_is_dst=*/true,
                   Backward::tanh);
}

// ---------------------------------------------------------------------------------------------
// Plain loops

// y = f(x), one element at a time.
template <class F>
void unary_loop(const sdk::KernelArgs& args, const char* op, F f) {
  expect_views(args, 1, 1);
  expect_same_size(args.inputs[0], "x", args.outputs[0], "y");
  const float* x = in_data(args.inputs[0]);
  float* y = out_data(args.outputs[0]);
  int64_t n = sdk::view_size(args.outputs[0]);
  parallel_chunks(n, kParallelThreshold / 8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = f(x[i]);
  });
}

// oneDNN's vectorised log is off by tens of ulp for arguments near 1 (8e-7 absolute at
// log(x) = 0.22), which is where cross-entropy losses live; glibc's logf is within an ulp.
ONEDNN_KERNEL(log_kernel, "log") {
  unary_loop(args, "log", [](float v) { return std::log(v); });
}

// oneDNN has erf only inside its GELU, not as an eltwise algorithm of its own.
ONEDNN_KERNEL(erf_kernel, "erf") {
  unary_loop(args, "erf", [](float v) { return std::erf(v); });
}

// sign(NaN) is NaN, as on the reference backend.
ONEDNN_KERNEL(sign_kernel, "sign") {
  unary_loop(args, "sign", [](float v) { return v > 0.f ? 1.f : v < 0.f ? -1.f : v == 0.f ? 0.f : v; });
}
ONEDNN_KERNEL(abs_kernel, "abs") {
  unary_loop(args, "abs", [](float v) { return std::fabs(v); });
}
ONEDNN_KERNEL(floor_kernel, "floor") {
  unary_loop(args, "floor", [](float v) { return std::floor(v); });
}
// nearbyint in the default rounding mode: halves to even, as Keras rounds
ONEDNN_KERNEL(round_kernel, "round") {
  unary_loop(args, "round", [](float v) { return std::nearbyint(v); });
}

ONEDNN_KERNEL(copy_kernel, "copy") {
  expect_views(args, 1, 1);
  expect_same_size(args.inputs[0], "x", args.outputs[0], "y");
  const float* x = in_data(args.inputs[0]);
  float* y = out_data(args.outputs[0]);
  int64_t n = sdk::view_size(args.outputs[0]);
  if (n == 0 || x == y) return;
  // Large copies go in blocks so that every thread shares the bandwidth.
  constexpr int64_t kBlock = 1 << 16;
  int64_t blocks = (n + kBlock - 1) / kBlock;
  for_each_index(blocks, n > kParallelThreshold, [&](int64_t b) {
    int64_t begin = b * kBlock;
    std::memcpy(y + begin, x + begin, size_t(std::min(kBlock, n - begin)) * sizeof(float));
  });
}

ONEDNN_KERNEL(fill_kernel, "fill") {
  expect_views(args, 0, 1, /*extra_inputs_ok=*/true);
  const float value = float(args.attrs.get_float("value", 0.0));
  float* y = out_data(args.outputs[0]);
  int64_t n = sdk::view_size(args.outputs[0]);
  parallel_chunks(n, kParallelThreshold, [&](int64_t b, int64_t e) { std::fill(y + b, y + e, value); });
}

ONEDNN_KERNEL(scale_kernel, "scale") {
  expect_views(args, 1, 1);
  expect_same_size(args.inputs[0], "x", args.outputs[0], "y");
  const double alpha = args.attrs.get_float("alpha", 1.0);
  const double beta = args.attrs.get_float("beta", 0.0);
  const float* x = in_data(args.inputs[0]);
  float* y = out_data(args.outputs[0]);
  int64_t n = sdk::view_size(args.outputs[0]);
  // In double, like the reference, so rounding agrees for any alpha and beta.
  parallel_chunks(n, kParallelThreshold, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = float(alpha * double(x[i]) + beta);
  });
}

void read_clip_bounds(const sdk::KernelArgs& args, const char* op, double& low, double& high) {
  low = args.attrs.get_float("low", 0.0);
  high = args.attrs.get_float("high", 0.0);
  if (!args.attrs.find("low") || !args.attrs.find("high"))
    throw sdk::Error("needs float attributes 'low' and 'high'");
}

ONEDNN_KERNEL(clip_kernel, "clip") {
  expect_views(args, 1, 1);
  expect_same_size(args.inputs[0], "x", args.outputs[0], "y");
  double low, high;
  read_clip_bounds(args, "clip", low, high);
  const float* x = in_data(args.inputs[0]);
  float* y = out_data(args.outputs[0]);
  int64_t n = sdk::view_size(args.outputs[0]);
  parallel_chunks(n, kParallelThreshold, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = float(std::min(std::max(double(x[i]), low), high));
  });
}

ONEDNN_KERNEL(clip_backward_kernel, "clip_backward") {
  expect_views(args, 2, 1);
  expect_same_size(args.inputs[0], "x", args.outputs[0], "dx");
  expect_same_size(args.inputs[1], "dy", args.outputs[0], "dx");
  double low, high;
  read_clip_bounds(args, "clip_backward", low, high);
  const float* x = in_data(args.inputs[0]);
  const float* dy = in_data(args.inputs[1]);
  float* dx = out_data(args.outputs[0]);
  int64_t n = sdk::view_size(args.outputs[0]);
  parallel_chunks(n, kParallelThreshold, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      double v = x[i];
      dx[i] = low <= v && v <= high ? dy[i] : 0.f;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Broadcasting binaries

// a and b against y with size-1 output dims dropped and neighbouring dims that broadcast the same
// way merged, e.g. (N,H,W,C)+(1,1,1,C) becomes (N·H·W, C)+(1, C), so the loop below runs over as
// few, as long, rows as the shapes allow.
struct Broadcast {
  std::vector<int64_t> y, a, b;
};

Broadcast collapse(const char* op, const lamina_view& va, const lamina_view& vb, const lamina_view& vy) {
  expect_broadcast_shapes(va, vb, vy);
  Broadcast out;
  int last_kind = -1;
  for (int32_t i = 0; i < vy.ndim; ++i) {
    int64_t dy = vy.shape[i], da = va.shape[i], db = vb.shape[i];
    if (dy == 1) continue;
    int kind = (da == dy ? 1 : 0) | (db == dy ? 2 : 0);
    if (kind == last_kind) {
      out.y.back() *= dy;
      out.a.back() *= da;
      out.b.back() *= db;
    } else {
      out.y.push_back(dy);
      out.a.push_back(da);
      out.b.push_back(db);
      last_kind = kind;
    }
  }
  if (out.y.empty()) out.y = out.a = out.b = {1};
  return out;
}

// y = f(a, b) over the collapsed shapes. The rows of the last collapsed dim are cut into blocks so
// that a single long row still spreads over every thread; within a block each operand is either a
// contiguous run or one repeated value, which the compiler vectorises.
//
// A loop rather than oneDNN's binary primitive: measured on the dev machine (AVX-512, one
// thread, 2.4M elements) oneDNN 2.6's jit:uni binary took 1.18 ms for the bias add
// (73728,32)+(1,32) and 1.17 ms for (73728,32)+(73728,1), this loop 0.76 ms for each; for equal
// shapes, scalar and wide-row broadcasts the two were within 10%. The loop also handles a
// broadcast first operand, which oneDNN's binary does not.
template <class F>
void broadcast_loop(const Broadcast& c, const float* a, const float* b, float* y, F f) {
  const int r = int(c.y.size());
  std::vector<int64_t> sa(r), sb(r);
  int64_t stride_a = 1, stride_b = 1, total = 1;
  for (int i = r - 1; i >= 0; --i) {
    sa[i] = c.a[i] == 1 ? 0 : stride_a;
    sb[i] = c.b[i] == 1 ? 0 : stride_b;
    stride_a *= c.a[i];
    stride_b *= c.b[i];
    total *= c.y[i];
  }
  const int64_t inner = c.y[r - 1];
  const int64_t rows = total / inner;
  constexpr int64_t kBlock = 4096;
  const int64_t blocks_per_row = (inner + kBlock - 1) / kBlock;
  const int64_t blocks = rows * blocks_per_row;
  const int64_t ia = sa[r - 1], ib = sb[r - 1];
  for_each_index(blocks, total > kParallelThreshold, [&](int64_t blk) {
    int64_t row = blk / blocks_per_row;
    int64_t begin = (blk % blocks_per_row) * kBlock;
    int64_t end = std::min(inner, begin + kBlock);
    int64_t oa = 0, ob = 0, rest = row;
    for (int d = r - 2; d >= 0; --d) {
      int64_t idx = rest % c.y[d];
      rest /= c.y[d];
      oa += idx * sa[d];
      ob += idx * sb[d];
    }
    const float* pa = a + oa;
    const float* pb = b + ob;
    float* py = y + row * inner;
    if (ia && ib) {
#pragma omp simd
      for (int64_t j = begin; j < end; ++j) py[j] = f(pa[j], pb[j]);
    } else if (ia) {
      const float vb = *pb;
#pragma omp simd
      for (int64_t j = begin; j < end; ++j) py[j] = f(pa[j], vb);
    } else if (ib) {
      const float va = *pa;
#pragma omp simd
      for (int64_t j = begin; j < end; ++j) py[j] = f(va, pb[j]);
    } else {
      const float v = f(*pa, *pb);
      for (int64_t j = begin; j < end; ++j) py[j] = v;
    }
  });
}

// a, b → y with broadcasting.
template <class F>
void binary_kernel(const sdk::KernelArgs& args, const char* op, F f) {
  expect_views(args, 2, 1);
  const lamina_view& va = args.inputs[0];
  const lamina_view& vb = args.inputs[1];
  const lamina_view& vy = args.outputs[0];
  Broadcast c = collapse(op, va, vb, vy);
  if (sdk::view_size(vy) == 0) return;
  broadcast_loop(c, in_data(va), in_data(vb), out_data(vy), f);
}

ONEDNN_KERNEL(add_kernel, "add") {
  binary_kernel(args, "add", [](float p, float q) { return p + q; });
}
ONEDNN_KERNEL(sub_kernel, "sub") {
  binary_kernel(args, "sub", [](float p, float q) { return p - q; });
}
ONEDNN_KERNEL(mul_kernel, "mul") {
  binary_kernel(args, "mul", [](float p, float q) { return p * q; });
}
ONEDNN_KERNEL(div_kernel, "div") {
  binary_kernel(args, "div", [](float p, float q) { return p / q; });
}

ONEDNN_KERNEL(greater_kernel, "greater") {
  binary_kernel(args, "greater", [](float p, float q) { return p > q ? 1.f : 0.f; });
}
ONEDNN_KERNEL(greater_equal_kernel, "greater_equal") {
  binary_kernel(args, "greater_equal", [](float p, float q) { return p >= q ? 1.f : 0.f; });
}
ONEDNN_KERNEL(less_kernel, "less") {
  binary_kernel(args, "less", [](float p, float q) { return p < q ? 1.f : 0.f; });
}
ONEDNN_KERNEL(less_equal_kernel, "less_equal") {
  binary_kernel(args, "less_equal", [](float p, float q) { return p <= q ? 1.f : 0.f; });
}
ONEDNN_KERNEL(equal_kernel, "equal") {
  binary_kernel(args, "equal", [](float p, float q) { return p == q ? 1.f : 0.f; });
}
ONEDNN_KERNEL(not_equal_kernel, "not_equal") {
  binary_kernel(args, "not_equal", [](float p, float q) { return p != q ? 1.f : 0.f; });
}
// a on a tie; NaN in either gives NaN (p + q), as on the reference backend
ONEDNN_KERNEL(maximum_kernel, "maximum") {
  binary_kernel(args, "maximum", [](float p, float q) { return p >= q ? p : q > p ? q : p + q; });
}
ONEDNN_KERNEL(minimum_kernel, "minimum") {
  binary_kernel(args, "minimum", [](float p, float q) { return p <= q ? p : q < p ? q : p + q; });
}
ONEDNN_KERNEL(pow_kernel, "pow") {
  binary_kernel(args, "pow", [](float p, float q) { return std::pow(p, q); });
}

// y = a where cond ≠ 0, else b; cond, a and b at y's rank, each dim y's or 1. Rows along y's last
// axis, each operand stepping 1 or 0 along it.
ONEDNN_KERNEL(where_kernel, "where") {
  expect_views(args, 3, 1);
  const lamina_view& vy = args.outputs[0];
  const char* names[3] = {"cond", "a", "b"};
  const int32_t rank = vy.ndim;
  std::vector<int64_t> stride[3];
  for (int k = 0; k < 3; ++k) {
    const lamina_view& v = args.inputs[k];
    if (v.ndim != rank)
      throw sdk::Error(std::string(names[k]) + " " + shape_string(v) + " is not at y's rank");
    stride[k].assign(size_t(rank), 0);
    int64_t step = 1;
    for (int32_t d = rank - 1; d >= 0; --d) {
      if (v.shape[d] != vy.shape[d] && v.shape[d] != 1)
        throw sdk::Error("cannot broadcast " + std::string(names[k]) + " " + shape_string(v) + " to y " +
                         shape_string(vy));
      stride[k][size_t(d)] = v.shape[d] == 1 ? 0 : step;
      step *= v.shape[d];
    }
  }
  const int64_t n = sdk::view_size(vy);
  if (n == 0) return;
  const float* c = in_data(args.inputs[0]);
  const float* a = in_data(args.inputs[1]);
  const float* b = in_data(args.inputs[2]);
  float* y = out_data(vy);
  const int64_t inner = rank == 0 ? 1 : vy.shape[rank - 1];
  const int64_t ic = rank == 0 ? 0 : stride[0][size_t(rank - 1)],
                ia = rank == 0 ? 0 : stride[1][size_t(rank - 1)],
                ib = rank == 0 ? 0 : stride[2][size_t(rank - 1)];
  for_each_index(n / inner, n > kParallelThreshold, [&](int64_t row) {
    int64_t oc = 0, oa = 0, ob = 0, rest = row;
    for (int32_t d = rank - 2; d >= 0; --d) {
      const int64_t idx = rest % vy.shape[d];
      rest /= vy.shape[d];
      oc += idx * stride[0][size_t(d)];
      oa += idx * stride[1][size_t(d)];
      ob += idx * stride[2][size_t(d)];
    }
    float* py = y + row * inner;
    for (int64_t j = 0; j < inner; ++j) py[j] = c[oc + j * ic] != 0.f ? a[oa + j * ia] : b[ob + j * ib];
  });
}

}  // namespace
}  // namespace lamina::onednn
