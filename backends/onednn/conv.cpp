// conv2d and its two backward passes on oneDNN convolution primitives.
//
// Shapes: x (N,H,W,C), w (KH,KW,C/G,O), y (N,OH,OW,O); attrs strides [sh,sw], pads
// [top,bottom,left,right], dilation [dh,dw], groups G. oneDNN names the same tensors (N,C,H,W) in
// nhwc, (O,C,KH,KW) in hwio — with groups (G,O/G,C/G,KH,KW) in hwigo, which is lamina's
// (KH,KW,C/G,O) read with O split into (G, O/G) — and (N,O,OH,OW) in nhwc, so lamina's buffers are
// used as they are. oneDNN counts dilation from 0 (a dense kernel has dilates 0): dilation − 1.
//
// Layouts: fully plain descriptors make oneDNN fall back to its gemm convolution (3-9x slower), so
// the weights are always `any` and reordered from HWIO on each call (they are small). For the
// activations, oneDNN 2.6 has direct JIT/brgemm kernels for channels-last on AVX-512, as fast as its
// blocked layouts and without reordering the large activation tensors at every call; those are
// used when oneDNN offers them, and `any` everywhere (with reorders) otherwise. Whichever is chosen
// is decided once per shape and cached with its reorders and staging buffers.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "kernels.hpp"

namespace lamina::onednn {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

// The SDK's geometry, as oneDNN describes it.
struct ConvGeometry : sdk::ConvGeometry {
  memory::dims src() const { return {n, c, h, w}; }
  memory::dims weights() const {
    if (groups == 1) return {o, c, kh, kw};
    return {groups, og, cg, kh, kw};
  }
  memory::format_tag weights_tag() const { return groups == 1 ? tag::hwio : tag::hwigo; }
  memory::dims dst() const { return {n, o, oh, ow}; }
  memory::dims strides() const { return {sh, sw}; }
  memory::dims dilates() const { return {dh - 1, dw - 1}; }
  memory::dims pad_l() const { return {top, left}; }
  memory::dims pad_r() const { return {bottom, right}; }
  CacheKey key(const char* op) const {
    CacheKey k(op);
    for (int64_t v : {n, h, w, c, kh, kw, o, oh, ow, sh, sw, top, bottom, left, right, dh, dw, groups})
      k.add(v);
    return k;
  }
};

// A tensor as the primitive reads or writes it: the caller's plain buffer, plus, when the chosen
// layout differs, a buffer in that layout and the cached reorder between the two. Reorders of small
// tensors (the weights, every call) run on the calling thread: created and executed under the same
// SerialScope, as oneDNN requires.
class Staged {
 public:
  Staged() = default;
  Staged(const memory::desc& plain, const memory::desc& chosen, const dnnl::engine& engine, bool is_input)
      : user_(unbound_memory(plain, engine)) {
    if (chosen == plain) {
      internal_ = user_;
      return;
    }
    internal_ = memory(chosen, engine);
    serial_ = int64_t(plain.get_size() / sizeof(float)) < kParallelThreshold;
    SerialScope serial(serial_);
    reorder_ = is_input ? dnnl::reorder(user_, internal_) : dnnl::reorder(internal_, user_);
    reordered_ = true;
  }
  void bind_to(const void* data) { bind(user_, data); }
  const memory& arg() const { return internal_; }
  void stage_in(const dnnl::stream& s) {
    if (!reordered_) return;
    SerialScope serial(serial_);
    reorder_.execute(s, user_, internal_);
  }
  void stage_out(const dnnl::stream& s) {
    if (!reordered_) return;
    SerialScope serial(serial_);
    reorder_.execute(s, internal_, user_);
  }

 private:
  memory user_, internal_;
  dnnl::reorder reorder_;
  bool reordered_ = false;
  bool serial_ = false;
};

memory::desc plain_src(const ConvGeometry& g) {
  return {g.src(), memory::data_type::f32, tag::nhwc};
}
memory::desc plain_weights(const ConvGeometry& g) {
  return {g.weights(), memory::data_type::f32, g.weights_tag()};
}
memory::desc plain_dst(const ConvGeometry& g) {
  return {g.dst(), memory::data_type::f32, tag::nhwc};
}
memory::desc any(const memory::dims& dims) {
  return {dims, memory::data_type::f32, tag::any};
}

// Activation descriptors for one layout policy: plain channels-last, or oneDNN's choice.
struct ActivationLayout {
  memory::desc src, dst;
};
ActivationLayout activation_layout(const ConvGeometry& g, bool channels_last) {
  if (channels_last) return {plain_src(g), plain_dst(g)};
  return {any(g.src()), any(g.dst())};
}

bool is_fast(const char* impl) {
  return std::strstr(impl, "gemm") == nullptr && std::strncmp(impl, "ref", 3) != 0;
}

// Builds the primitive descriptor with channels-last activations if oneDNN has a fast kernel for
// them, else with every layout left to oneDNN.
template <class Make>
auto choose_layout(Make&& make) {
  try {
    auto pd = make(true);
    if (is_fast(pd.impl_info_str())) return pd;
  } catch (const dnnl::error&) {
    // no channels-last implementation for this shape: fall through
  }
  return make(false);
}

memory::desc bias_desc(const ConvGeometry& g) {
  return {{g.o}, memory::data_type::f32, tag::a};
}

// Multiply-adds of one pass: below kParallelMacs the pass runs on one thread.
bool small(const ConvGeometry& g) {
  return g.n * g.oh * g.ow * g.o * g.kh * g.kw * g.cg < kParallelMacs;
}

dnnl::convolution_forward::primitive_desc forward_pd(const ConvGeometry& g, const dnnl::engine& engine,
                                                     dnnl::prop_kind prop, bool channels_last,
                                                     bool with_bias = false,
                                                     sdk::Activation act = sdk::Activation::linear) {
  ActivationLayout a = activation_layout(g, channels_last);
  auto desc = with_bias ? dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, a.src,
                                                          any(g.weights()), bias_desc(g), a.dst, g.strides(),
                                                          g.dilates(), g.pad_l(), g.pad_r())
                        : dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, a.src,
                                                          any(g.weights()), a.dst, g.strides(), g.dilates(),
                                                          g.pad_l(), g.pad_r());
  return dnnl::convolution_forward::primitive_desc(desc, user_scratchpad(activation_attr(act)), engine);
}

// Runs `run(algorithm)` with the algorithm for this shape and pass: 0 for oneDNN's direct
// convolution, m for Winograd with m×m output tiles (winograd.hpp). In automatic mode the first
// call of a shape runs every candidate once to warm it up, then twice more in turn, and keeps the
// one with the shortest time; the last run is the chosen one, so its outputs are the call's.
template <class Run>
void with_algorithm(Backend& be, const CacheKey& key, const ConvGeometry& g, Run&& run) {
  const std::vector<int> tiles = winograd::tiles(g);
  const winograd::Mode mode = winograd::mode();
  if (tiles.empty() || mode == winograd::Mode::off) return run(0);
  if (mode == winograd::Mode::on) return run(winograd::forced_tile(tiles));
  if (auto it = be.conv_algorithm.find(key); it != be.conv_algorithm.end()) return run(it->second);
  std::vector<int> candidates{0};
  candidates.insert(candidates.end(), tiles.begin(), tiles.end());
  std::vector<double> best(candidates.size(), 1e300);
  for (int round = 0; round < 3; ++round)
    for (size_t i = 0; i < candidates.size(); ++i) {
      const auto start = std::chrono::steady_clock::now();
      run(candidates[i]);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (round > 0) best[i] = std::min(best[i], seconds);
    }
  const int chosen = candidates[size_t(std::min_element(best.begin(), best.end()) - best.begin())];
  be.conv_algorithm.emplace(key, chosen);
  if (chosen != candidates.back()) run(chosen);
}

// ---------------------------------------------------------------------------------------------

struct ForwardEntry {
  dnnl::convolution_forward primitive;
  Scratchpad scratchpad;
  Staged src, weights, dst;
  memory bias;  // plain (O), bound to the caller's bias; empty without one
};

// conv2d (x, w → y) and conv2d_bias (x, w, b → y = activation(conv2d(x, w) + b)): the bias and the
// activation run inside the convolution's own loop (oneDNN bias and eltwise post-op), so the output
// is written once instead of three times.
void direct_forward(const sdk::KernelArgs& args, Backend& be, const ConvGeometry& g, const CacheKey& key,
                    bool with_bias, sdk::Activation act);

void conv_forward(const sdk::KernelArgs& args, const char* op, bool with_bias) {
  expect_views(args, with_bias ? 3 : 2, 1);
  const lamina_view& x = args.inputs[0];
  const lamina_view& w = args.inputs[1];
  const lamina_view& y = args.outputs[0];
  ConvGeometry g{sdk::full_conv_geometry(args.attrs, x, w, y)};
  sdk::Activation act = with_bias ? sdk::read_activation(args.attrs) : sdk::Activation::linear;
  if (with_bias) expect_vector(args.inputs[2], "b", g.o, "output channel");
  if (sdk::view_size(y) == 0) return;
  if (sdk::view_size(x) == 0) {  // no channels: every sum is empty, leaving the bias
    float* out = out_data(y);
    int64_t pixels = sdk::view_size(y) / g.o;
    for (int64_t i = 0; i < pixels; ++i)
      for (int64_t o = 0; o < g.o; ++o) {
        float z = with_bias ? in_data(args.inputs[2])[o] : 0.f;
        switch (act) {
          case sdk::Activation::relu:
            z = z > 0.f ? z : 0.f;
            break;
          case sdk::Activation::sigmoid:
            z = 1.f / (1.f + std::exp(-z));
            break;
          case sdk::Activation::tanh:
            z = std::tanh(z);
            break;
          case sdk::Activation::linear:
            break;
        }
        out[i * g.o + o] = z;
      }
    return;
  }
  Backend& be = backend_of(args);
  std::lock_guard lock(be.mutex);
  CacheKey key = g.key(op);
  key.add(int64_t(act));
  const float* bias = with_bias ? in_data(args.inputs[2]) : nullptr;
  with_algorithm(be, key, g, [&](int algorithm) {
    if (algorithm)
      winograd::forward(g, algorithm, in_data(x), in_data(w), bias, act, out_data(y), be.winograd_workspace);
    else
      direct_forward(args, be, g, key, with_bias, act);
  });
}

void direct_forward(const sdk::KernelArgs& args, Backend& be, const ConvGeometry& g, const CacheKey& key,
                    bool with_bias, sdk::Activation act) {
  const lamina_view& x = args.inputs[0];
  const lamina_view& w = args.inputs[1];
  const lamina_view& y = args.outputs[0];
  SerialScope serial(small(g));
  with_dnnl(args, [&] {
    auto entry = be.cache.get<ForwardEntry>(key, [&] {
      auto pd = choose_layout([&](bool channels_last) {
        return forward_pd(g, be.engine, dnnl::prop_kind::forward_inference, channels_last, with_bias, act);
      });
      auto e = std::make_shared<ForwardEntry>();
      e->primitive = dnnl::convolution_forward(pd);
      e->scratchpad = Scratchpad(pd.scratchpad_desc(), be.engine);
      e->src = Staged(plain_src(g), pd.src_desc(), be.engine, true);
      e->weights = Staged(plain_weights(g), pd.weights_desc(), be.engine, true);
      e->dst = Staged(plain_dst(g), pd.dst_desc(), be.engine, false);
      if (with_bias) e->bias = unbound_memory(bias_desc(g), be.engine);
      return e;
    });
    entry->src.bind_to(x.data);
    entry->weights.bind_to(w.data);
    entry->dst.bind_to(y.data);
    entry->src.stage_in(be.stream);
    entry->weights.stage_in(be.stream);
    std::unordered_map<int, memory> exec_args{{DNNL_ARG_SRC, entry->src.arg()},
                                              {DNNL_ARG_WEIGHTS, entry->weights.arg()},
                                              {DNNL_ARG_DST, entry->dst.arg()}};
    if (with_bias) {
      bind(entry->bias, args.inputs[2].data);
      exec_args.emplace(DNNL_ARG_BIAS, entry->bias);
    }
    entry->scratchpad.add_to(be, exec_args);
    entry->primitive.execute(be.stream, exec_args);
    entry->dst.stage_out(be.stream);
    be.stream.wait();
  });
}

ONEDNN_KERNEL(conv2d_kernel, "conv2d") {
  conv_forward(args, "conv2d", false);
}
ONEDNN_KERNEL(conv2d_bias_kernel, "conv2d_bias") {
  conv_forward(args, "conv2d_bias", true);
}

struct BackwardDataEntry {
  dnnl::convolution_backward_data primitive;
  Scratchpad scratchpad;
  Staged diff_dst, weights, diff_src;
};

void direct_backward_data(const sdk::KernelArgs& args, Backend& be, const ConvGeometry& g,
                          const CacheKey& key);

// conv2d_backward_data: dy, w → dx
ONEDNN_KERNEL(conv2d_backward_data_kernel, "conv2d_backward_data") {
  const char* op = "conv2d_backward_data";
  expect_views(args, 2, 1);
  const lamina_view& dy = args.inputs[0];
  const lamina_view& w = args.inputs[1];
  const lamina_view& dx = args.outputs[0];
  ConvGeometry g{sdk::full_conv_geometry(args.attrs, dx, w, dy, "dx", "w", "dy")};
  if (sdk::view_size(dx) == 0) return;
  if (sdk::view_size(dy) == 0) {  // no output cells or channels: nothing flows back
    std::memset(dx.data, 0, size_t(sdk::view_size(dx)) * sizeof(float));
    return;
  }
  std::lock_guard lock(be.mutex);
  const CacheKey key = g.key(op);
  with_algorithm(be, key, g, [&](int algorithm) {
    if (algorithm)
      winograd::backward_data(g, algorithm, in_data(dy), in_data(w), out_data(dx), be.winograd_workspace);
    else
      direct_backward_data(args, be, g, key);
  });
}

void direct_backward_data(const sdk::KernelArgs& args, Backend& be, const ConvGeometry& g,
                          const CacheKey& key) {
  const lamina_view& dy = args.inputs[0];
  const lamina_view& w = args.inputs[1];
  const lamina_view& dx = args.outputs[0];
  SerialScope serial(small(g));
  with_dnnl(args, [&] {
    auto entry = be.cache.get<BackwardDataEntry>(key, [&] {
      auto pd = choose_layout([&](bool channels_last) {
        auto hint = forward_pd(g, be.engine, dnnl::prop_kind::forward_training, channels_last);
        ActivationLayout a = activation_layout(g, channels_last);
        dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, a.src,
                                                   any(g.weights()), a.dst, g.strides(), g.dilates(),
                                                   g.pad_l(), g.pad_r());
        return dnnl::convolution_backward_data::primitive_desc(desc, user_scratchpad(), be.engine, hint);
      });
      auto e = std::make_shared<BackwardDataEntry>();
      e->primitive = dnnl::convolution_backward_data(pd);
      e->scratchpad = Scratchpad(pd.scratchpad_desc(), be.engine);
      e->diff_dst = Staged(plain_dst(g), pd.diff_dst_desc(), be.engine, true);
      e->weights = Staged(plain_weights(g), pd.weights_desc(), be.engine, true);
      e->diff_src = Staged(plain_src(g), pd.diff_src_desc(), be.engine, false);
      return e;
    });
    entry->diff_dst.bind_to(dy.data);
    entry->weights.bind_to(w.data);
    entry->diff_src.bind_to(dx.data);
    entry->diff_dst.stage_in(be.stream);
    entry->weights.stage_in(be.stream);
    std::unordered_map<int, memory> exec_args{{DNNL_ARG_DIFF_DST, entry->diff_dst.arg()},
                                              {DNNL_ARG_WEIGHTS, entry->weights.arg()},
                                              {DNNL_ARG_DIFF_SRC, entry->diff_src.arg()}};
    entry->scratchpad.add_to(be, exec_args);
    entry->primitive.execute(be.stream, exec_args);
    entry->diff_src.stage_out(be.stream);
    be.stream.wait();
  });
}

// conv2d_transpose: x, w → y is conv2d_backward_data with x in dy's place (docs/ops.md).
ONEDNN_KERNEL(conv2d_transpose_kernel, "conv2d_transpose") {
  conv2d_backward_data_kernel_body(args, be);
}

struct BackwardWeightsEntry {
  dnnl::convolution_backward_weights primitive;
  Scratchpad scratchpad;
  Staged src, diff_dst, diff_weights;
  memory diff_bias;  // plain (O), bound to the caller's db; empty without one
};

// conv2d_backward_filter (x, dy → dw) and conv2d_backward_filter_bias (x, dy → dw, db): oneDNN
// sums db in the same pass over dy.
void direct_backward_filter(const sdk::KernelArgs& args, Backend& be, const ConvGeometry& g,
                            const CacheKey& key, bool with_bias);

void conv_backward_filter(const sdk::KernelArgs& args, const char* op, bool with_bias) {
  expect_views(args, 2, with_bias ? 2 : 1);
  const lamina_view& x = args.inputs[0];
  const lamina_view& dy = args.inputs[1];
  const lamina_view& dw = args.outputs[0];
  ConvGeometry g{sdk::full_conv_geometry(args.attrs, x, dw, dy, "x", "dw", "dy")};
  if (with_bias) expect_vector(args.outputs[1], "db", g.o, "output channel");
  if (sdk::view_size(dw) == 0 && !with_bias) return;
  if (sdk::view_size(x) == 0 || sdk::view_size(dy) == 0 || sdk::view_size(dw) == 0) {
    // an empty batch (or no input channels) contributes nothing to dw; db is still Σ dy
    std::memset(dw.data, 0, size_t(sdk::view_size(dw)) * sizeof(float));
    if (with_bias) {
      float* db = out_data(args.outputs[1]);
      std::fill(db, db + g.o, 0.f);
      const float* d = in_data(dy);
      int64_t pixels = g.o ? sdk::view_size(dy) / g.o : 0;
      for (int64_t i = 0; i < pixels; ++i)
        for (int64_t o = 0; o < g.o; ++o) db[o] += d[i * g.o + o];
    }
    return;
  }
  Backend& be = backend_of(args);
  std::lock_guard lock(be.mutex);
  const CacheKey key = g.key(op);
  with_algorithm(be, key, g, [&](int algorithm) {
    if (algorithm)
      winograd::backward_filter(g, algorithm, in_data(x), in_data(dy), out_data(dw),
                                with_bias ? out_data(args.outputs[1]) : nullptr, be.winograd_workspace);
    else
      direct_backward_filter(args, be, g, key, with_bias);
  });
}

void direct_backward_filter(const sdk::KernelArgs& args, Backend& be, const ConvGeometry& g,
                            const CacheKey& key, bool with_bias) {
  const lamina_view& x = args.inputs[0];
  const lamina_view& dy = args.inputs[1];
  const lamina_view& dw = args.outputs[0];
  SerialScope serial(small(g));
  with_dnnl(args, [&] {
    auto entry = be.cache.get<BackwardWeightsEntry>(key, [&] {
      auto pd = choose_layout([&](bool channels_last) {
        auto hint = forward_pd(g, be.engine, dnnl::prop_kind::forward_training, channels_last, with_bias);
        ActivationLayout a = activation_layout(g, channels_last);
        auto desc = with_bias ? dnnl::convolution_backward_weights::desc(
                                    dnnl::algorithm::convolution_direct, a.src, any(g.weights()),
                                    bias_desc(g), a.dst, g.strides(), g.dilates(), g.pad_l(), g.pad_r())
                              : dnnl::convolution_backward_weights::desc(
                                    dnnl::algorithm::convolution_direct, a.src, any(g.weights()), a.dst,
                                    g.strides(), g.dilates(), g.pad_l(), g.pad_r());
        return dnnl::convolution_backward_weights::primitive_desc(desc, user_scratchpad(), be.engine, hint);
      });
      auto e = std::make_shared<BackwardWeightsEntry>();
      e->primitive = dnnl::convolution_backward_weights(pd);
      e->scratchpad = Scratchpad(pd.scratchpad_desc(), be.engine);
      e->src = Staged(plain_src(g), pd.src_desc(), be.engine, true);
      e->diff_dst = Staged(plain_dst(g), pd.diff_dst_desc(), be.engine, true);
      e->diff_weights = Staged(plain_weights(g), pd.diff_weights_desc(), be.engine, false);
      if (with_bias) e->diff_bias = unbound_memory(bias_desc(g), be.engine);
      return e;
    });
    entry->src.bind_to(x.data);
    entry->diff_dst.bind_to(dy.data);
    entry->diff_weights.bind_to(dw.data);
    entry->src.stage_in(be.stream);
    entry->diff_dst.stage_in(be.stream);
    std::unordered_map<int, memory> exec_args{{DNNL_ARG_SRC, entry->src.arg()},
                                              {DNNL_ARG_DIFF_DST, entry->diff_dst.arg()},
                                              {DNNL_ARG_DIFF_WEIGHTS, entry->diff_weights.arg()}};
    if (with_bias) {
      bind(entry->diff_bias, args.outputs[1].data);
      exec_args.emplace(DNNL_ARG_DIFF_BIAS, entry->diff_bias);
    }
    entry->scratchpad.add_to(be, exec_args);
    entry->primitive.execute(be.stream, exec_args);
    entry->diff_weights.stage_out(be.stream);
    be.stream.wait();
  });
}

ONEDNN_KERNEL(conv2d_backward_filter_kernel, "conv2d_backward_filter") {
  conv_backward_filter(args, "conv2d_backward_filter", false);
}
ONEDNN_KERNEL(conv2d_backward_filter_bias_kernel, "conv2d_backward_filter_bias") {
  conv_backward_filter(args, "conv2d_backward_filter_bias", true);
}

}  // namespace
}  // namespace lamina::onednn
