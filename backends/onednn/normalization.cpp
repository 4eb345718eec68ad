// Batch normalization over the last axis on oneDNN's batch_normalization primitives.
//
// x (..., C) is handed to oneDNN as (N, C, S, 1) in nhwc, N the first axis and S the product of the
// ones between: the same buffer, with statistics over N and S, which is lamina's "every axis but
// the last". gamma and beta are oneDNN's scale and shift (use_scale | use_shift); the statistics
// oneDNN computes in training are the batch's mean and biased variance, as the op's contract says.
#include <algorithm>
#include <initializer_list>
#include <memory>
#include <unordered_map>
#include <utility>

#include "kernels.hpp"

namespace lamina::onednn {
namespace {

using dnnl::memory;
using Flags = dnnl::normalization_flags;

memory::desc data_desc(const lamina_view& x) {
  int64_t between = 1;
  for (int32_t d = 1; d + 1 < x.ndim; ++d) between *= x.shape[d];
  return {{x.shape[0], x.shape[x.ndim - 1], between, 1}, memory::data_type::f32, memory::format_tag::nhwc};
}
memory::desc channel_desc(int64_t c) {
  return {{c}, memory::data_type::f32, memory::format_tag::a};
}

CacheKey key_of(const char* op, const lamina_view& x, const BatchNormArgs& b) {
  CacheKey k(op);
  k.add_all(dnnl::memory::dims(x.shape, x.shape + x.ndim)).add(b.epsilon);
  return k;
}

Flags scale_shift() {
  return Flags::use_scale | Flags::use_shift;
}

dnnl::batch_normalization_forward::primitive_desc forward_pd(const lamina_view& x, const BatchNormArgs& b,
                                                             const dnnl::engine& engine, dnnl::prop_kind prop,
                                                             Flags flags) {
  dnnl::batch_normalization_forward::desc desc(prop, data_desc(x), float(b.epsilon), flags);
  return dnnl::batch_normalization_forward::primitive_desc(desc, user_scratchpad(), engine);
}

// One cached primitive with its memory objects, bound to the call's buffers on every call.
struct Entry {
  dnnl::primitive primitive;
  Scratchpad scratchpad;
  std::unordered_map<int, memory> args;  // by DNNL_ARG_*, unbound
  void bind_arg(int arg, const void* data) { bind(args.at(arg), data); }
  void run(Backend& be) {
    std::unordered_map<int, memory> exec = args;
    scratchpad.add_to(be, exec);
    primitive.execute(be.stream, exec);
    be.stream.wait();
  }
};

bool small(const BatchNormArgs& b) {
  return b.rows * b.channels < kParallelThreshold;
}

// The forward primitive (training or inference) with its memory objects.
std::shared_ptr<Entry> forward_entry(const lamina_view& x, const BatchNormArgs& b, const dnnl::engine& engine,
                                     dnnl::prop_kind prop, Flags flags) {
  auto pd = forward_pd(x, b, engine, prop, flags);
  auto e = std::make_shared<Entry>();
  e->primitive = dnnl::batch_normalization_forward(pd);
  e->scratchpad = Scratchpad(pd.scratchpad_desc(), engine);
  e->args = {{DNNL_ARG_SRC, unbound_memory(pd.src_desc(), engine)},
             {DNNL_ARG_DST, unbound_memory(pd.dst_desc(), engine)},
             {DNNL_ARG_SCALE, unbound_memory(channel_desc(b.channels), engine)},
             {DNNL_ARG_SHIFT, unbound_memory(channel_desc(b.channels), engine)},
             {DNNL_ARG_MEAN, unbound_memory(pd.mean_desc(), engine)},
             {DNNL_ARG_VARIANCE, unbound_memory(pd.variance_desc(), engine)}};
  return e;
}

// An empty batch: its per-channel outputs 1 and 2 (statistics, or dgamma and dbeta) are 0, as the
// reference's.
void zero_channel_outputs(const sdk::KernelArgs& args, int64_t channels) {
  for (int i : {1, 2}) std::fill(out_data(args.outputs[i]), out_data(args.outputs[i]) + channels, 0.f);
}

// Binds the call's views to the entry's memory objects, as (DNNL_ARG_*, view index) pairs.
void bind_views(Entry& e, const sdk::KernelArgs& args, std::initializer_list<std::pair<int, int>> inputs,
                std::initializer_list<std::pair<int, int>> outputs) {
  for (auto [arg, i] : inputs) e.bind_arg(arg, args.inputs[i].data);
  for (auto [arg, i] : outputs) e.bind_arg(arg, args.outputs[i].data);
}

}  // namespace

// x, gamma, beta → y, mean, variance: the batch's statistics, computed by the primitive.
ONEDNN_KERNEL(batch_norm_train_kernel, "batch_norm_train") {
  const BatchNormArgs b = batch_norm_args(args, {"x", "gamma", "beta"}, {"y", "mean", "variance"});
  if (b.channels == 0) return;
  if (b.rows == 0) {
    zero_channel_outputs(args, b.channels);
    return;
  }
  const lamina_view& x = args.inputs[0];
  std::lock_guard lock(be.mutex);
  SerialScope serial(small(b));
  with_dnnl(args, [&] {
    auto entry = be.cache.get<Entry>(key_of("batch_norm_train", x, b), [&] {
      return forward_entry(x, b, be.engine, dnnl::prop_kind::forward_training, scale_shift());
    });
    bind_views(*entry, args, {{DNNL_ARG_SRC, 0}, {DNNL_ARG_SCALE, 1}, {DNNL_ARG_SHIFT, 2}},
               {{DNNL_ARG_DST, 0}, {DNNL_ARG_MEAN, 1}, {DNNL_ARG_VARIANCE, 2}});
    entry->run(be);
  });
}

// x, gamma, beta, mean, variance → y with the given statistics (use_global_stats).
ONEDNN_KERNEL(batch_norm_inference_kernel, "batch_norm_inference") {
  const BatchNormArgs b =
      batch_norm_args(args, {"x", "gamma", "beta", "moving_mean", "moving_variance"}, {"y"});
  if (b.channels == 0 || b.rows == 0) return;
  const lamina_view& x = args.inputs[0];
  std::lock_guard lock(be.mutex);
  SerialScope serial(small(b));
  with_dnnl(args, [&] {
    auto entry = be.cache.get<Entry>(key_of("batch_norm_inference", x, b), [&] {
      return forward_entry(x, b, be.engine, dnnl::prop_kind::forward_inference,
                           scale_shift() | Flags::use_global_stats);
    });
    bind_views(*entry, args,
               {{DNNL_ARG_SRC, 0},
                {DNNL_ARG_SCALE, 1},
                {DNNL_ARG_SHIFT, 2},
                {DNNL_ARG_MEAN, 3},
                {DNNL_ARG_VARIANCE, 4}},
               {{DNNL_ARG_DST, 0}});
    entry->run(be);
  });
}

// x, gamma, mean, variance, dy → dx, dgamma, dbeta (prop_kind::backward: data and scale/shift).
ONEDNN_KERNEL(batch_norm_train_backward_kernel, "batch_norm_train_backward") {
  const BatchNormArgs b =
      batch_norm_args(args, {"x", "gamma", "mean", "variance", "dy"}, {"dx", "dgamma", "dbeta"});
  if (b.channels == 0) return;
  if (b.rows == 0) {
    zero_channel_outputs(args, b.channels);
    return;
  }
  const lamina_view& x = args.inputs[0];
  std::lock_guard lock(be.mutex);
  SerialScope serial(small(b));
  with_dnnl(args, [&] {
    auto entry = be.cache.get<Entry>(key_of("batch_norm_train_backward", x, b), [&] {
      auto hint = forward_pd(x, b, be.engine, dnnl::prop_kind::forward_training, scale_shift());
      dnnl::batch_normalization_backward::desc desc(dnnl::prop_kind::backward, data_desc(x), data_desc(x),
                                                    float(b.epsilon), scale_shift());
      dnnl::batch_normalization_backward::primitive_desc pd(desc, user_scratchpad(), be.engine, hint);
      auto e = std::make_shared<Entry>();
      e->primitive = dnnl::batch_normalization_backward(pd);
      e->scratchpad = Scratchpad(pd.scratchpad_desc(), be.engine);
      e->args = {{DNNL_ARG_SRC, unbound_memory(pd.src_desc(), be.engine)},
                 {DNNL_ARG_DIFF_DST, unbound_memory(pd.diff_dst_desc(), be.engine)},
                 {DNNL_ARG_SCALE, unbound_memory(channel_desc(b.channels), be.engine)},
                 {DNNL_ARG_SHIFT, unbound_memory(channel_desc(b.channels), be.engine)},
                 {DNNL_ARG_MEAN, unbound_memory(pd.mean_desc(), be.engine)},
                 {DNNL_ARG_VARIANCE, unbound_memory(pd.variance_desc(), be.engine)},
                 {DNNL_ARG_DIFF_SRC, unbound_memory(pd.diff_src_desc(), be.engine)},
                 {DNNL_ARG_DIFF_SCALE, unbound_memory(channel_desc(b.channels), be.engine)},
                 {DNNL_ARG_DIFF_SHIFT, unbound_memory(channel_desc(b.channels), be.engine)}};
      return e;
    });
    // oneDNN counts the shift among the backward pass's inputs with use_shift, though dx, dgamma
    // and dbeta do not depend on beta: gamma's buffer stands in, read by nothing.
    bind_views(*entry, args,
               {{DNNL_ARG_SRC, 0},
                {DNNL_ARG_SCALE, 1},
                {DNNL_ARG_SHIFT, 1},
                {DNNL_ARG_MEAN, 2},
                {DNNL_ARG_VARIANCE, 3},
                {DNNL_ARG_DIFF_DST, 4}},
               {{DNNL_ARG_DIFF_SRC, 0}, {DNNL_ARG_DIFF_SCALE, 1}, {DNNL_ARG_DIFF_SHIFT, 2}});
    entry->run(be);
  });
}

}  // namespace lamina::onednn
