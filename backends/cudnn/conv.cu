// conv2d and its two gradients on cuDNN, with the layout kernels they need.
//
// lamina: x (N,H,W,C), w (KH,KW,C,O) "HWIO", y (N,OH,OW,O), pads [top,bottom,left,right].
// cuDNN runs NHWC activations in place with the filter transposed to (O,KH,KW,C) for each call
// (the weights change every step, and the transpose costs one pass over a small tensor). Two
// things need extra buffers:
//  - asymmetric pads (Keras' "same" with a stride or an even kernel): cuDNN has one pad per axis,
//    so x is copied into a zero-padded buffer and cuDNN runs unpadded (dx is computed padded and
//    cropped);
//  - the NCHW fallback: if no algorithm accepts a geometry in NHWC, activations are transposed to
//    NCHW and filters to (O,C,KH,KW), the layout every cuDNN algorithm supports.
//
// The algorithm for each (op, geometry) is chosen on its first call: cuDNN proposes candidates
// (cudnnGet*Algorithm_v7, or timed cudnnFind* with LAMINA_CUDNN_FIND=1), rank_algorithms orders
// them, and they are run in order until one succeeds; the winner, its layout and math type are
// cached. Without LAMINA_CUDNN_TF32 every algorithm runs with FMA math: float products, as the
// reference backend computes them, instead of TF32 tensor cores.
//
// The fused conv2d_bias adds the bias and applies its activation in one pass over y after cuDNN;
// conv2d_backward_filter_bias sums dy over (N,OH,OW) for db with the reduction kernels.
#include <array>

#include "kernels.hpp"

namespace lamina::cudnn {
namespace {

// ------------------------------------------------------------------------------------------------
// Layout kernels

// y = x with its four axes permuted: y's axis k is x's axis perm[k]. y is written in order; x_strides
// holds, for each of y's axes, the element stride of that axis in x.
struct Permutation {
  int64_t y_dims[4];
  int64_t x_strides[4];
};

__global__ void permute4_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n,
                                Permutation p) {
  GRID_STRIDE_LOOP(i, n) {
    int64_t rest = i, offset = 0;
    for (int k = 3; k >= 0; --k) {
      offset += rest % p.y_dims[k] * p.x_strides[k];
      rest /= p.y_dims[k];
    }
    y[i] = x[offset];
  }
}

// x (N,H,W,C) → y (N,Hp,Wp,C), x placed at row `top`, column `left`, zeros around it.
struct Padding {
  int64_t h, w, c;  // x
  int64_t hp, wp;   // y
  int64_t top, left;
};

__global__ void pad_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n, Padding p) {
  GRID_STRIDE_LOOP(i, n) {
    const int64_t c = i % p.c;
    int64_t rest = i / p.c;
    const int64_t col = rest % p.wp - p.left;
    rest /= p.wp;
    const int64_t row = rest % p.hp - p.top;
    const int64_t image = rest / p.hp;
    y[i] = row >= 0 && row < p.h && col >= 0 && col < p.w ? x[((image * p.h + row) * p.w + col) * p.c + c]
                                                          : 0.0f;
  }
}

// The inverse: y (N,Hp,Wp,C) → x (N,H,W,C), the window at (top, left).
__global__ void crop_kernel(const float* __restrict__ y, float* __restrict__ x, int64_t n, Padding p) {
  GRID_STRIDE_LOOP(i, n) {
    const int64_t c = i % p.c;
    int64_t rest = i / p.c;
    const int64_t col = rest % p.w;
    rest /= p.w;
    const int64_t row = rest % p.h;
    const int64_t image = rest / p.h;
    x[i] = y[((image * p.hp + row + p.top) * p.wp + col + p.left) * p.c + c];
  }
}

using Axes = std::array<int, 4>;
constexpr Axes kHwioToOhwi{3, 0, 1, 2};  // (KH,KW,C,O) → (O,KH,KW,C)
constexpr Axes kOhwiToHwio{1, 2, 3, 0};  // (O,KH,KW,C) → (KH,KW,C,O)
constexpr Axes kHwioToOihw{3, 2, 0, 1};  // (KH,KW,C,O) → (O,C,KH,KW)
constexpr Axes kOihwToHwio{2, 3, 1, 0};  // (O,C,KH,KW) → (KH,KW,C,O)
constexpr Axes kNhwcToNchw{0, 3, 1, 2};
constexpr Axes kNchwToNhwc{0, 2, 3, 1};

void permute4(Backend& be, const float* x, float* y, std::array<int64_t, 4> x_dims, Axes perm) {
  int64_t strides[4];
  int64_t step = 1;
  for (int d = 3; d >= 0; --d) strides[d] = step, step *= x_dims[d];
  Permutation p{};
  for (int k = 0; k < 4; ++k) p.y_dims[k] = x_dims[perm[k]], p.x_strides[k] = strides[perm[k]];
  const Launch l = launch_for(be, step);
  permute4_kernel<<<l.blocks, l.threads, 0, be.stream>>>(x, y, step, p);
}

Padding padding_of(const ConvGeometry& g) {
  return {g.h, g.w, g.c, g.cudnn_h(), g.cudnn_w(), g.top, g.left};
}

// ------------------------------------------------------------------------------------------------
// One convolution call

// Device buffers in lamina's layout. forward: x, w → out (y); backward_data: dy, w → out (dx);
// backward_filter: x, dy → out (dw).
struct ConvCall {
  ConvOp op = ConvOp::forward;
  ConvGeometry g;
  const float* x = nullptr;
  const float* w = nullptr;
  const float* dy = nullptr;
  float* out = nullptr;
};

// The call's tensors as cuDNN reads and writes them in one layout, and the scratch that holds them.
struct Staged {
  const float* x = nullptr;
  const float* w = nullptr;
  const float* dy = nullptr;
  float* out = nullptr;
  std::vector<Scratch> buffers;

  float* scratch(Backend& be, int64_t floats) {
    buffers.emplace_back(be, floats);
    return buffers.back().data();
  }
};

Staged stage(Backend& be, const ConvCall& call, Layout layout) {
  const ConvGeometry& g = call.g;
  const int64_t hc = g.cudnn_h(), wc = g.cudnn_w();
  const bool nchw = layout == Layout::nchw;
  Staged s;
  if (call.op != ConvOp::backward_data) {  // x: padded, then transposed
    const float* x = call.x;
    if (g.explicit_padding()) {
      float* padded = s.scratch(be, g.n * hc * wc * g.c);
      const int64_t n = g.n * hc * wc * g.c;
      const Launch l = launch_for(be, n);
      pad_kernel<<<l.blocks, l.threads, 0, be.stream>>>(x, padded, n, padding_of(g));
      x = padded;
    }
    if (nchw) {
      float* t = s.scratch(be, g.n * g.c * hc * wc);
      permute4(be, x, t, {g.n, hc, wc, g.c}, kNhwcToNchw);
      x = t;
    }
    s.x = x;
  }
  if (call.op != ConvOp::backward_filter) {  // w: HWIO → OHWI or OIHW
    float* t = s.scratch(be, g.kh * g.kw * g.cg * g.o);
    permute4(be, call.w, t, {g.kh, g.kw, g.cg, g.o}, nchw ? kHwioToOihw : kHwioToOhwi);
    s.w = t;
  }
  if (call.op != ConvOp::forward) {  // dy
    s.dy = call.dy;
    if (nchw) {
      float* t = s.scratch(be, g.n * g.oh * g.ow * g.o);
      permute4(be, call.dy, t, {g.n, g.oh, g.ow, g.o}, kNhwcToNchw);
      s.dy = t;
    }
  }
  switch (call.op) {
    case ConvOp::forward:
      s.out = nchw ? s.scratch(be, g.n * g.o * g.oh * g.ow) : call.out;
      break;
    case ConvOp::backward_data:
      s.out = nchw || g.explicit_padding() ? s.scratch(be, g.n * hc * wc * g.c) : call.out;
      break;
    case ConvOp::backward_filter:
      s.out = s.scratch(be, g.o * g.kh * g.kw * g.cg);
      break;
  }
  return s;
}

// Brings cuDNN's result back into lamina's layout, in call.out.
void finish(Backend& be, const ConvCall& call, Layout layout, Staged& s) {
  const ConvGeometry& g = call.g;
  const bool nchw = layout == Layout::nchw;
  switch (call.op) {
    case ConvOp::forward:
      if (nchw) permute4(be, s.out, call.out, {g.n, g.o, g.oh, g.ow}, kNchwToNhwc);
      return;
    case ConvOp::backward_data: {
      const int64_t hc = g.cudnn_h(), wc = g.cudnn_w();
      float* nhwc = s.out;
      if (nchw) {
        nhwc = g.explicit_padding() ? s.scratch(be, g.n * hc * wc * g.c) : call.out;
        permute4(be, s.out, nhwc, {g.n, g.c, hc, wc}, kNchwToNhwc);
      }
      if (g.explicit_padding()) {
        const int64_t n = g.n * g.h * g.w * g.c;
        const Launch l = launch_for(be, n);
        crop_kernel<<<l.blocks, l.threads, 0, be.stream>>>(nhwc, call.out, n, padding_of(g));
      }
      return;
    }
    case ConvOp::backward_filter:
      if (nchw)
        permute4(be, s.out, call.out, {g.o, g.cg, g.kh, g.kw}, kOihwToHwio);
      else
        permute4(be, s.out, call.out, {g.o, g.kh, g.kw, g.cg}, kOhwiToHwio);
      return;
  }
}

// ------------------------------------------------------------------------------------------------
// cuDNN calls, on the backend's descriptors (be.conv: x or dx, w or dw, y or dy, the convolution)

const char* op_name(ConvOp op) {
  switch (op) {
    case ConvOp::forward:
      return "cudnnConvolutionForward";
    case ConvOp::backward_data:
      return "cudnnConvolutionBackwardData";
    case ConvOp::backward_filter:
      return "cudnnConvolutionBackwardFilter";
  }
  return "?";
}

int fallback_algorithm(ConvOp op) {
  switch (op) {
    case ConvOp::forward:
      return CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    case ConvOp::backward_data:
      return CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    case ConvOp::backward_filter:
      return CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  }
  return 0;
}

template <class Perf>
std::vector<AlgoCandidate> to_candidates(const Perf* perf, int count) {
  std::vector<AlgoCandidate> out;
  for (int i = 0; i < count; ++i)
    out.push_back({int(perf[i].algo), perf[i].status == CUDNN_STATUS_SUCCESS, perf[i].memory,
                   Math(int(perf[i].mathType)), perf[i].determinism == CUDNN_DETERMINISTIC});
  return out;
}

// cuDNN's candidates for the described convolution: its heuristics' ranking, or (find) every
// algorithm timed on the device, fastest first. `status` reports a failure of the query itself.
std::vector<AlgoCandidate> propose(Backend& be, ConvOp op, cudnnStatus_t& status) {
  const ConvDescriptors& d = be.conv;
  int returned = 0;
  switch (op) {
    case ConvOp::forward: {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      status = be.find_algorithms
                   ? cudnnFindConvolutionForwardAlgorithm(be.cudnn, d.x, d.w, d.conv, d.y,
                                                          CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf)
                   : cudnnGetConvolutionForwardAlgorithm_v7(
                         be.cudnn, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf);
      return status == CUDNN_STATUS_SUCCESS ? to_candidates(perf, returned) : std::vector<AlgoCandidate>{};
    }
    case ConvOp::backward_data: {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      status =
          be.find_algorithms
              ? cudnnFindConvolutionBackwardDataAlgorithm(
                    be.cudnn, d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, perf)
              : cudnnGetConvolutionBackwardDataAlgorithm_v7(
                    be.cudnn, d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, perf);
      return status == CUDNN_STATUS_SUCCESS ? to_candidates(perf, returned) : std::vector<AlgoCandidate>{};
    }
    case ConvOp::backward_filter: {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      status =
          be.find_algorithms
              ? cudnnFindConvolutionBackwardFilterAlgorithm(
                    be.cudnn, d.x, d.y, d.conv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, perf)
              : cudnnGetConvolutionBackwardFilterAlgorithm_v7(be.cudnn, d.x, d.y, d.conv, d.w,
                                                              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                              &returned, perf);
      return status == CUDNN_STATUS_SUCCESS ? to_candidates(perf, returned) : std::vector<AlgoCandidate>{};
    }
  }
  return {};
}

cudnnStatus_t workspace_size(Backend& be, ConvOp op, int algo, size_t& bytes) {
  const ConvDescriptors& d = be.conv;
  bytes = 0;
  switch (op) {
    case ConvOp::forward:
      return cudnnGetConvolutionForwardWorkspaceSize(be.cudnn, d.x, d.w, d.conv, d.y,
                                                     cudnnConvolutionFwdAlgo_t(algo), &bytes);
    case ConvOp::backward_data:
      return cudnnGetConvolutionBackwardDataWorkspaceSize(be.cudnn, d.w, d.y, d.conv, d.x,
                                                          cudnnConvolutionBwdDataAlgo_t(algo), &bytes);
    case ConvOp::backward_filter:
      return cudnnGetConvolutionBackwardFilterWorkspaceSize(be.cudnn, d.x, d.y, d.conv, d.w,
                                                            cudnnConvolutionBwdFilterAlgo_t(algo), &bytes);
  }
  return CUDNN_STATUS_BAD_PARAM;
}

cudnnStatus_t execute(Backend& be, ConvOp op, int algo, const Staged& s, void* ws, size_t ws_bytes) {
  const ConvDescriptors& d = be.conv;
  const float one = 1.0f, zero = 0.0f;
  switch (op) {
    case ConvOp::forward:
      return cudnnConvolutionForward(be.cudnn, &one, d.x, s.x, d.w, s.w, d.conv,
                                     cudnnConvolutionFwdAlgo_t(algo), ws, ws_bytes, &zero, d.y, s.out);
    case ConvOp::backward_data:
      return cudnnConvolutionBackwardData(be.cudnn, &one, d.w, s.w, d.y, s.dy, d.conv,
                                          cudnnConvolutionBwdDataAlgo_t(algo), ws, ws_bytes, &zero, d.x,
                                          s.out);
    case ConvOp::backward_filter:
      return cudnnConvolutionBackwardFilter(be.cudnn, &one, d.x, s.x, d.y, s.dy, d.conv,
                                            cudnnConvolutionBwdFilterAlgo_t(algo), ws, ws_bytes, &zero, d.w,
                                            s.out);
  }
  return CUDNN_STATUS_BAD_PARAM;
}

std::string describe(const ConvGeometry& g) {
  auto s = [](int64_t v) { return std::to_string(v); };
  return "x (" + s(g.n) + "," + s(g.h) + "," + s(g.w) + "," + s(g.c) + "), w (" + s(g.kh) + "," + s(g.kw) +
         "," + s(g.cg) + "," + s(g.o) + "), y (" + s(g.n) + "," + s(g.oh) + "," + s(g.ow) + "," + s(g.o) +
         "), strides [" + s(g.sh) + "," + s(g.sw) + "], pads [" + s(g.top) + "," + s(g.bottom) + "," +
         s(g.left) + "," + s(g.right) + "], dilation [" + s(g.dh) + "," + s(g.dw) + "], groups " +
         s(g.groups);
}

void run_conv(Backend& be, const ConvCall& call) {
  const ConvGeometry& g = call.g;
  const ConvKey key{
      int64_t(call.op), g.n,    g.h,     g.w,  g.c,  g.kh,    g.kw, g.o, g.oh, g.ow, g.sh, g.sw, g.top,
      g.bottom,         g.left, g.right, g.dh, g.dw, g.groups};

  if (auto it = be.conv_choices.find(key); it != be.conv_choices.end()) {
    const ConvChoice c = it->second;
    Staged s = stage(be, call, c.layout);
    describe_convolution(be.conv, g, c.layout, c.math);
    const size_t bytes = c.workspace_bytes;
    void* ws = workspace(be, bytes);
    if (bytes && !ws)
      throw sdk::Error("out of device memory for a " + std::to_string(bytes >> 20) + " MiB cuDNN workspace");
    check_cudnn(execute(be, call.op, c.algo, s, ws, bytes), std::string(op_name(call.op)) + " (algorithm " +
                                                                std::to_string(c.algo) + ", " +
                                                                layout_name(c.layout) + ")");
    finish(be, call, c.layout, s);
    return;
  }

  // First call with this geometry: try the candidates until one runs.
  std::string tried;
  for (Layout layout : {Layout::nhwc, Layout::nchw}) {
    Staged s = stage(be, call, layout);
    describe_convolution(be.conv, g, layout, be.policy.allow_tf32 ? Math::default_math : Math::fma);
    cudnnStatus_t query = CUDNN_STATUS_SUCCESS;
    const std::vector<AlgoCandidate> proposed = propose(be, call.op, query);
    if (query != CUDNN_STATUS_SUCCESS)
      tried += std::string("; ") + layout_name(layout) + ": asking for algorithms gave " +
               cudnn_status_string(query);
    for (const AlgoCandidate& c : rank_algorithms(proposed, be.policy, fallback_algorithm(call.op))) {
      const Math math = math_for(c, be.policy);
      set_convolution(be.conv.conv, g, math);
      const std::string name =
          std::string("; ") + layout_name(layout) + " algorithm " + std::to_string(c.algo);
      size_t bytes = 0;
      if (cudnnStatus_t st = workspace_size(be, call.op, c.algo, bytes); st != CUDNN_STATUS_SUCCESS) {
        tried += name + ": " + cudnn_status_string(st);
        continue;
      }
      void* ws = workspace(be, bytes);
      if (bytes && !ws) {
        tried += name + ": no memory for its " + std::to_string(bytes >> 20) + " MiB workspace";
        continue;
      }
      if (cudnnStatus_t st = execute(be, call.op, c.algo, s, ws, bytes); st != CUDNN_STATUS_SUCCESS) {
        tried += name + ": " + cudnn_status_string(st);
        (void)cudaGetLastError();  // a refused attempt must not fail the launch check of the next
        continue;
      }
      be.conv_choices[key] = {layout, c.algo, math, bytes};
      finish(be, call, layout, s);
      return;
    }
  }
  throw sdk::Error(std::string("no cuDNN algorithm ran ") + op_name(call.op) + " for " + describe(g) + tried);
}

// When x, w or dy is empty the sum behind every output element has no terms.
bool zero_if_empty(Backend& be, const sdk::KernelArgs& args) {
  for (int i = 0; i < 2; ++i)
    if (sdk::view_size(args.inputs[i]) == 0) {
      check_cuda(cudaMemsetAsync(dev(args.outputs[0]), 0,
                                 size_t(sdk::view_size(args.outputs[0])) * sizeof(float), be.stream),
                 "zeroing on the device");
      return true;
    }
  return false;
}

CUDNN_KERNEL(op_conv2d, "conv2d") {
  // x (N,H,W,C), w (KH,KW,C,O) → y (N,OH,OW,O)
  expect_views(args, 2, 1);
  ConvCall call;
  call.op = ConvOp::forward;
  call.g = cudnn_conv_geometry(args.attrs, args.inputs[0], args.inputs[1], args.outputs[0]);
  if (zero_if_empty(be, args)) return;
  call.x = dev(args.inputs[0]);
  call.w = dev(args.inputs[1]);
  call.out = dev(args.outputs[0]);
  run_conv(be, call);
}

CUDNN_KERNEL(op_conv2d_bias, "conv2d_bias") {
  // x (N,H,W,C), w (KH,KW,C,O), b (O) → y (N,OH,OW,O) = activation(conv2d(x, w) + b)
  expect_views(args, 3, 1);
  const sdk::Activation activation = sdk::read_activation(args.attrs);
  ConvCall call;
  call.op = ConvOp::forward;
  call.g = cudnn_conv_geometry(args.attrs, args.inputs[0], args.inputs[1], args.outputs[0]);
  const lamina_view& b = args.inputs[2];
  expect_vector(b, "b", call.g.o, "output channel");
  call.x = dev(args.inputs[0]);
  call.w = dev(args.inputs[1]);
  call.out = dev(args.outputs[0]);
  if (!zero_if_empty(be, args)) run_conv(be, call);
  add_bias_activation(be, call.out, dev(b), call.g.n * call.g.oh * call.g.ow, call.g.o, activation);
}

CUDNN_KERNEL(op_conv2d_backward_data, "conv2d_backward_data") {
  // dy (N,OH,OW,O), w (KH,KW,C,O) → dx (N,H,W,C)
  expect_views(args, 2, 1);
  ConvCall call;
  call.op = ConvOp::backward_data;
  call.g = cudnn_conv_geometry(args.attrs, args.outputs[0], args.inputs[1], args.inputs[0]);
  if (zero_if_empty(be, args)) return;
  call.dy = dev(args.inputs[0]);
  call.w = dev(args.inputs[1]);
  call.out = dev(args.outputs[0]);
  run_conv(be, call);
}

// conv2d_transpose: x, w → y is conv2d_backward_data with x in dy's place (docs/ops.md).
CUDNN_KERNEL(op_conv2d_transpose, "conv2d_transpose") {
  op_conv2d_backward_data_body(args, be);
}

CUDNN_KERNEL(op_conv2d_backward_filter, "conv2d_backward_filter") {
  // x (N,H,W,C), dy (N,OH,OW,O) → dw (KH,KW,C,O)
  expect_views(args, 2, 1);
  ConvCall call;
  call.op = ConvOp::backward_filter;
  call.g = cudnn_conv_geometry(args.attrs, args.inputs[0], args.outputs[0], args.inputs[1]);
  if (zero_if_empty(be, args)) return;
  call.x = dev(args.inputs[0]);
  call.dy = dev(args.inputs[1]);
  call.out = dev(args.outputs[0]);
  run_conv(be, call);
}

CUDNN_KERNEL(op_conv2d_backward_filter_bias, "conv2d_backward_filter_bias") {
  // x (N,H,W,C), dy (N,OH,OW,O) → dw (KH,KW,C,O), db (O) = Σ dy over (N,OH,OW)
  expect_views(args, 2, 2);
  ConvCall call;
  call.op = ConvOp::backward_filter;
  call.g = cudnn_conv_geometry(args.attrs, args.inputs[0], args.outputs[0], args.inputs[1]);
  const lamina_view& db = args.outputs[1];
  expect_vector(db, "db", call.g.o, "output channel");
  call.x = dev(args.inputs[0]);
  call.dy = dev(args.inputs[1]);
  call.out = dev(args.outputs[0]);
  if (!zero_if_empty(be, args)) run_conv(be, call);
  sum_rows_into(be, call.dy, dev(db), call.g.n * call.g.oh * call.g.ow, call.g.o);
}

}  // namespace
}  // namespace lamina::cudnn
