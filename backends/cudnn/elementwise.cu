// Element-wise kernels: copy, fill, unary maps, their backward rules, broadcasting binaries
// (arithmetic, comparisons, maximum, minimum, pow) and where.
// relu / sigmoid / tanh run on cuDNN's activation forward; everything else is a grid-stride CUDA
// kernel over the flat, contiguous buffers.
//
// The backward rules stay on lamina's kernels: each receives exactly one of the forward's input or
// output (relu_backward and clip_backward x, sigmoid_backward and tanh_backward y), while cuDNN's
// activation backward wants both.
#include <climits>
#include <cmath>

#include "kernels.hpp"

namespace lamina::cudnn {
namespace {

// ------------------------------------------------------------------------------------------------
// Device kernels. n is the element count; i runs over all of them in grid-stride steps.

// y[i] = f(x[i])
template <class F>
__global__ void map_unary(const float* __restrict__ x, float* __restrict__ y, int64_t n, F f) {
  GRID_STRIDE_LOOP(i, n) y[i] = f(x[i]);
}

// y[i] = f(a[i], b[i])
template <class F>
__global__ void map_binary(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y,
                           int64_t n, F f) {
  GRID_STRIDE_LOOP(i, n) y[i] = f(a[i], b[i]);
}

// y[i] = f(a[i], b[0])
template <class F>
__global__ void map_scalar_b(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y,
                             int64_t n, F f) {
  const float b0 = b[0];
  GRID_STRIDE_LOOP(i, n) y[i] = f(a[i], b0);
}

// y[i] = f(a[offset_a(i)], b[offset_b(i)]): i is split into coordinates over the plan's merged axes,
// and each operand's offset sums coordinate × stride (0 along its broadcast axes).
struct BroadcastStrides {
  int rank;
  int64_t dims[LAMINA_MAX_DIMS];
  int64_t a[LAMINA_MAX_DIMS];
  int64_t b[LAMINA_MAX_DIMS];
};

template <class F>
__global__ void map_broadcast(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y,
                              int64_t n, BroadcastStrides s, F f) {
  GRID_STRIDE_LOOP(i, n) {
    int64_t rest = i, offset_a = 0, offset_b = 0;
    for (int d = s.rank - 1; d >= 0; --d) {
      const int64_t coordinate = rest % s.dims[d];
      rest /= s.dims[d];
      offset_a += coordinate * s.a[d];
      offset_b += coordinate * s.b[d];
    }
    y[i] = f(a[offset_a], b[offset_b]);
  }
}

// y[i] = cond[offset_c(i)] != 0 ? a[offset_a(i)] : b[offset_b(i)], offsets as in map_broadcast.
struct SelectStrides {
  int rank;
  int64_t dims[LAMINA_MAX_DIMS];
  int64_t c[LAMINA_MAX_DIMS];
  int64_t a[LAMINA_MAX_DIMS];
  int64_t b[LAMINA_MAX_DIMS];
};

__global__ void select_kernel(const float* __restrict__ c, const float* __restrict__ a,
                              const float* __restrict__ b, float* __restrict__ y, int64_t n,
                              SelectStrides s) {
  GRID_STRIDE_LOOP(i, n) {
    int64_t rest = i, offset_c = 0, offset_a = 0, offset_b = 0;
    for (int d = s.rank - 1; d >= 0; --d) {
      const int64_t coordinate = rest % s.dims[d];
      rest /= s.dims[d];
      offset_c += coordinate * s.c[d];
      offset_a += coordinate * s.a[d];
      offset_b += coordinate * s.b[d];
    }
    y[i] = c[offset_c] != 0.0f ? a[offset_a] : b[offset_b];
  }
}

__global__ void fill_kernel(float* __restrict__ y, int64_t n, float value) {
  GRID_STRIDE_LOOP(i, n) y[i] = value;
}

// y[i] = activation(y[i] + bias[i mod length]), in place: the epilogue of conv2d_bias and
// matmul_bias, whose rows (pixels or samples) end in one value per output channel.
template <sdk::Activation A>
__global__ void bias_activation_kernel(float* __restrict__ y, const float* __restrict__ bias, int64_t n,
                                       int64_t length) {
  GRID_STRIDE_LOOP(i, n) {
    const float z = y[i] + bias[i % length];
    if (A == sdk::Activation::relu)
      y[i] = z > 0.0f ? z : 0.0f;
    else if (A == sdk::Activation::sigmoid)
      y[i] = 1.0f / (1.0f + expf(-z));
    else if (A == sdk::Activation::tanh)
      y[i] = tanhf(z);
    else
      y[i] = z;
  }
}

__global__ void probe_kernel(int* out) {
  *out = 42;
}

// ------------------------------------------------------------------------------------------------
// The maps. Arithmetic is float, as on every GPU framework; comparisons against attributes are in
// double, as the reference backend makes them (a float bound may lie on the other side of x).

struct Neg {
  __device__ float operator()(float x) const { return -x; }
};
struct Exp {
  __device__ float operator()(float x) const { return expf(x); }
};
struct Log {
  __device__ float operator()(float x) const { return logf(x); }
};
struct Sqrt {
  __device__ float operator()(float x) const { return sqrtf(x); }
};
struct Square {
  __device__ float operator()(float x) const { return x * x; }
};
struct Relu {
  __device__ float operator()(float x) const { return x > 0.0f ? x : 0.0f; }
};
struct Sigmoid {
  __device__ float operator()(float x) const { return 1.0f / (1.0f + expf(-x)); }
};
struct Tanh {
  __device__ float operator()(float x) const { return tanhf(x); }
};
struct Erf {
  __device__ float operator()(float x) const { return erff(x); }
};
// sign(NaN) is NaN, as on the reference backend
struct Sign {
  __device__ float operator()(float x) const {
    return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x == 0.0f ? 0.0f : x;
  }
};
struct Abs {
  __device__ float operator()(float x) const { return fabsf(x); }
};
struct Floor {
  __device__ float operator()(float x) const { return floorf(x); }
};
// rintf rounds to nearest, halves to even, as Keras rounds
struct Round {
  __device__ float operator()(float x) const { return rintf(x); }
};
struct Scale {
  float alpha, beta;
  __device__ float operator()(float x) const { return fmaf(alpha, x, beta); }
};
struct Clip {
  double low, high;
  __device__ float operator()(float x) const { return float(fmin(fmax(double(x), low), high)); }
};
struct ReluBackward {
  __device__ float operator()(float x, float dy) const { return x > 0.0f ? dy : 0.0f; }
};
struct SigmoidBackward {
  __device__ float operator()(float y, float dy) const { return dy * y * (1.0f - y); }
};
struct TanhBackward {
  __device__ float operator()(float y, float dy) const { return dy * (1.0f - y * y); }
};
struct ClipBackward {
  double low, high;
  __device__ float operator()(float x, float dy) const {
    return low <= double(x) && double(x) <= high ? dy : 0.0f;
  }
};
struct Add {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Sub {
  __device__ float operator()(float a, float b) const { return a - b; }
};
struct Mul {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct Div {
  __device__ float operator()(float a, float b) const { return a / b; }
};
struct Greater {
  __device__ float operator()(float a, float b) const { return a > b ? 1.0f : 0.0f; }
};
struct GreaterEqual {
  __device__ float operator()(float a, float b) const { return a >= b ? 1.0f : 0.0f; }
};
struct Less {
  __device__ float operator()(float a, float b) const { return a < b ? 1.0f : 0.0f; }
};
struct LessEqual {
  __device__ float operator()(float a, float b) const { return a <= b ? 1.0f : 0.0f; }
};
struct Equal {
  __device__ float operator()(float a, float b) const { return a == b ? 1.0f : 0.0f; }
};
struct NotEqual {
  __device__ float operator()(float a, float b) const { return a != b ? 1.0f : 0.0f; }
};
// a on a tie; NaN in either gives NaN (a + b), as on the reference backend
struct Maximum {
  __device__ float operator()(float a, float b) const { return a >= b ? a : b > a ? b : a + b; }
};
struct Minimum {
  __device__ float operator()(float a, float b) const { return a <= b ? a : b < a ? b : a + b; }
};
struct Pow {
  __device__ float operator()(float a, float b) const { return powf(a, b); }
};

// ------------------------------------------------------------------------------------------------
// Host side

// x any shape → y, x's shape
template <class F>
void unary(const sdk::KernelArgs& args, Backend& be, F f) {
  expect_views(args, 1, 1);
  expect_same_shape(args.inputs[0], "x", args.outputs[0], "y");
  const int64_t n = sdk::view_size(args.outputs[0]);
  const Launch l = launch_for(be, n);
  map_unary<<<l.blocks, l.threads, 0, be.stream>>>(dev(args.inputs[0]), dev(args.outputs[0]), n, f);
}

// relu / sigmoid / tanh: cuDNN's activation over the buffer as one (1, n, 1, 1) tensor, in slices
// of at most INT_MAX elements; lamina's map when cuDNN refuses the call.
template <class F>
void activation(const sdk::KernelArgs& args, Backend& be, cudnnActivationMode_t mode, F f) {
  expect_views(args, 1, 1);
  expect_same_shape(args.inputs[0], "x", args.outputs[0], "y");
  const int64_t n = sdk::view_size(args.outputs[0]);
  const float* x = dev(args.inputs[0]);
  float* y = dev(args.outputs[0]);
  if (be.cudnn_activation_ok) {
    check_cudnn(cudnnSetActivationDescriptor(be.activation, mode, CUDNN_NOT_PROPAGATE_NAN, 0.0),
                "describing the activation");
    const float one = 1.0f, zero = 0.0f;
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
    for (int64_t begin = 0; begin < n && status == CUDNN_STATUS_SUCCESS;) {
      const int64_t count = std::min<int64_t>(n - begin, INT_MAX);
      set_rows(be.tensor_a, 1, count);
      status = cudnnActivationForward(be.cudnn, be.activation, &one, be.tensor_a, x + begin, &zero,
                                      be.tensor_a, y + begin);
      begin += count;
    }
    if (status == CUDNN_STATUS_SUCCESS) return;
    if (status != CUDNN_STATUS_NOT_SUPPORTED && status != CUDNN_STATUS_BAD_PARAM)
      check_cudnn(status, "cudnnActivationForward");
    be.cudnn_activation_ok = false;  // remembered: later calls go straight to the map
  }
  const Launch l = launch_for(be, n);
  map_unary<<<l.blocks, l.threads, 0, be.stream>>>(x, y, n, f);
}

// a (forward's x or y), dy → dx, all one shape
template <class F>
void backward(const sdk::KernelArgs& args, Backend& be, const char* a_name, F f) {
  expect_views(args, 2, 1);
  expect_same_shape(args.inputs[0], a_name, args.inputs[1], "dy");
  expect_same_shape(args.inputs[1], "dy", args.outputs[0], "dx");
  const int64_t n = sdk::view_size(args.outputs[0]);
  const Launch l = launch_for(be, n);
  map_binary<<<l.blocks, l.threads, 0, be.stream>>>(dev(args.inputs[0]), dev(args.inputs[1]),
                                                    dev(args.outputs[0]), n, f);
}

// a, b → y with broadcasting (see plan_broadcast)
template <class F>
void binary(const sdk::KernelArgs& args, Backend& be, F f) {
  expect_views(args, 2, 1);
  const BroadcastPlan p = plan_broadcast(args.inputs[0], args.inputs[1], args.outputs[0]);
  const float* a = dev(args.inputs[0]);
  const float* b = dev(args.inputs[1]);
  float* y = dev(args.outputs[0]);
  const Launch l = launch_for(be, p.size);
  switch (p.kind) {
    case BroadcastPlan::Kind::same:
      map_binary<<<l.blocks, l.threads, 0, be.stream>>>(a, b, y, p.size, f);
      break;
    case BroadcastPlan::Kind::scalar_b:
      map_scalar_b<<<l.blocks, l.threads, 0, be.stream>>>(a, b, y, p.size, f);
      break;
    case BroadcastPlan::Kind::general: {
      BroadcastStrides s{};
      s.rank = p.rank;
      for (int d = 0; d < p.rank; ++d) s.dims[d] = p.dims[d], s.a[d] = p.stride_a[d], s.b[d] = p.stride_b[d];
      map_broadcast<<<l.blocks, l.threads, 0, be.stream>>>(a, b, y, p.size, s, f);
      break;
    }
  }
}

// cond, a, b → y, each input at y's rank with every dim y's or 1
void where_launch(const sdk::KernelArgs& args, Backend& be) {
  expect_views(args, 3, 1);
  const lamina_view& yv = args.outputs[0];
  const char* names[3] = {"cond", "a", "b"};
  SelectStrides s{};
  s.rank = yv.ndim;
  int64_t* strides[3] = {s.c, s.a, s.b};
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
      strides[k][d] = v.shape[d] == 1 ? 0 : step;
      step *= v.shape[d];
    }
  }
  for (int32_t d = 0; d < yv.ndim; ++d) s.dims[d] = yv.shape[d];
  const int64_t n = sdk::view_size(yv);
  if (n == 0) return;
  const Launch l = launch_for(be, n);
  select_kernel<<<l.blocks, l.threads, 0, be.stream>>>(dev(args.inputs[0]), dev(args.inputs[1]),
                                                       dev(args.inputs[2]), dev(yv), n, s);
}

double need_float(const sdk::KernelArgs& args, const char* name) {
  args.attrs.need(name);
  return args.attrs.get_float(name, 0.0);
}

CUDNN_KERNEL(op_copy, "copy") {
  // x and y have the same number of elements; y = x in row-major order
  expect_views(args, 1, 1);
  const int64_t n = sdk::view_size(args.outputs[0]);
  if (sdk::view_size(args.inputs[0]) != n)
    throw sdk::Error("x " + shape_string(args.inputs[0]) + " and y " + shape_string(args.outputs[0]) +
                     " differ in size");
  if (dev(args.inputs[0]) == dev(args.outputs[0])) return;
  check_cuda(cudaMemcpyAsync(dev(args.outputs[0]), dev(args.inputs[0]), size_t(n) * sizeof(float),
                             cudaMemcpyDeviceToDevice, be.stream),
             "copying on the device");
}

}  // namespace

void fill_device(Backend& be, float* y, int64_t n, float value) {
  if (n == 0) return;
  if (value == 0.0f && !std::signbit(value)) {
    check_cuda(cudaMemsetAsync(y, 0, size_t(n) * sizeof(float), be.stream), "zeroing on the device");
    return;
  }
  const Launch l = launch_for(be, n);
  fill_kernel<<<l.blocks, l.threads, 0, be.stream>>>(y, n, value);
}

namespace {

CUDNN_KERNEL(op_fill, "fill") {
  // y any shape, y = value
  expect_views(args, 0, 1, /*extra_inputs_ok=*/true);
  const float value = float(need_float(args, "value"));
  fill_device(be, dev(args.outputs[0]), sdk::view_size(args.outputs[0]), value);
}

CUDNN_KERNEL(op_neg, "neg") {
  unary(args, be, Neg{});
}
CUDNN_KERNEL(op_exp, "exp") {
  unary(args, be, Exp{});
}
CUDNN_KERNEL(op_log, "log") {
  unary(args, be, Log{});
}
CUDNN_KERNEL(op_sqrt, "sqrt") {
  unary(args, be, Sqrt{});
}
CUDNN_KERNEL(op_square, "square") {
  unary(args, be, Square{});
}
CUDNN_KERNEL(op_relu, "relu") {
  activation(args, be, CUDNN_ACTIVATION_RELU, Relu{});
}
CUDNN_KERNEL(op_sigmoid, "sigmoid") {
  activation(args, be, CUDNN_ACTIVATION_SIGMOID, Sigmoid{});
}
CUDNN_KERNEL(op_tanh, "tanh") {
  activation(args, be, CUDNN_ACTIVATION_TANH, Tanh{});
}
CUDNN_KERNEL(op_erf, "erf") {
  unary(args, be, Erf{});
}

CUDNN_KERNEL(op_scale, "scale") {
  const float alpha = float(args.attrs.get_float("alpha", 1.0));
  const float beta = float(args.attrs.get_float("beta", 0.0));
  unary(args, be, Scale{alpha, beta});
}

CUDNN_KERNEL(op_clip, "clip") {
  const double low = need_float(args, "low"), high = need_float(args, "high");
  unary(args, be, Clip{low, high});
}

CUDNN_KERNEL(op_relu_backward, "relu_backward") {
  backward(args, be, "x", ReluBackward{});
}
CUDNN_KERNEL(op_sigmoid_backward, "sigmoid_backward") {
  backward(args, be, "y", SigmoidBackward{});
}
CUDNN_KERNEL(op_tanh_backward, "tanh_backward") {
  backward(args, be, "y", TanhBackward{});
}

CUDNN_KERNEL(op_clip_backward, "clip_backward") {
  const double low = need_float(args, "low"), high = need_float(args, "high");
  backward(args, be, "x", ClipBackward{low, high});
}

CUDNN_KERNEL(op_add, "add") {
  binary(args, be, Add{});
}
CUDNN_KERNEL(op_sub, "sub") {
  binary(args, be, Sub{});
}
CUDNN_KERNEL(op_mul, "mul") {
  binary(args, be, Mul{});
}
CUDNN_KERNEL(op_div, "div") {
  binary(args, be, Div{});
}
CUDNN_KERNEL(op_sign, "sign") {
  unary(args, be, Sign{});
}
CUDNN_KERNEL(op_abs, "abs") {
  unary(args, be, Abs{});
}
CUDNN_KERNEL(op_floor, "floor") {
  unary(args, be, Floor{});
}
CUDNN_KERNEL(op_round, "round") {
  unary(args, be, Round{});
}
CUDNN_KERNEL(op_greater, "greater") {
  binary(args, be, Greater{});
}
CUDNN_KERNEL(op_greater_equal, "greater_equal") {
  binary(args, be, GreaterEqual{});
}
CUDNN_KERNEL(op_less, "less") {
  binary(args, be, Less{});
}
CUDNN_KERNEL(op_less_equal, "less_equal") {
  binary(args, be, LessEqual{});
}
CUDNN_KERNEL(op_equal, "equal") {
  binary(args, be, Equal{});
}
CUDNN_KERNEL(op_not_equal, "not_equal") {
  binary(args, be, NotEqual{});
}
CUDNN_KERNEL(op_maximum, "maximum") {
  binary(args, be, Maximum{});
}
CUDNN_KERNEL(op_minimum, "minimum") {
  binary(args, be, Minimum{});
}
CUDNN_KERNEL(op_pow, "pow") {
  binary(args, be, Pow{});
}
CUDNN_KERNEL(op_where, "where") {
  where_launch(args, be);
}

}  // namespace

void add_bias_activation(Backend& be, float* y, const float* bias, int64_t rows, int64_t length,
                         sdk::Activation activation) {
  const int64_t n = rows * length;
  if (n == 0) return;
  const Launch l = launch_for(be, n);
  switch (activation) {
    case sdk::Activation::linear:
      bias_activation_kernel<sdk::Activation::linear>
          <<<l.blocks, l.threads, 0, be.stream>>>(y, bias, n, length);
      break;
    case sdk::Activation::relu:
      bias_activation_kernel<sdk::Activation::relu>
          <<<l.blocks, l.threads, 0, be.stream>>>(y, bias, n, length);
      break;
    case sdk::Activation::sigmoid:
      bias_activation_kernel<sdk::Activation::sigmoid>
          <<<l.blocks, l.threads, 0, be.stream>>>(y, bias, n, length);
      break;
    case sdk::Activation::tanh:
      bias_activation_kernel<sdk::Activation::tanh>
          <<<l.blocks, l.threads, 0, be.stream>>>(y, bias, n, length);
      break;
  }
}

std::string probe_device(int device) {
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) return cudaGetErrorString(e);
  int* p = nullptr;
  if (cudaError_t e = cudaMalloc(&p, sizeof(int)); e != cudaSuccess) return cudaGetErrorString(e);
  probe_kernel<<<1, 1>>>(p);
  int value = 0;
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaMemcpy(&value, p, sizeof(int), cudaMemcpyDeviceToHost);
  (void)cudaFree(p);
  if (e != cudaSuccess) return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
  if (value != 42) return "a test kernel ran but wrote " + std::to_string(value) + " instead of 42";
  return "";
}

}  // namespace lamina::cudnn
