// Optimizer updates (sgd_update, adadelta_update, adam_update, rmsprop_update): one pass over the
// parameter, its gradient and its slots, written in place, where the same rule composed of
// element-wise ops makes a dozen passes and as many temporaries. OpenMP loops in float: the
// updates are memory-bound, and oneDNN has no primitive for them.
//
// Inputs are (param, grad, slots...), the outputs are the same buffers as (param, slots...): each
// element is read before it is written, so the aliasing is safe.
#include <algorithm>
#include <cmath>
#include <string>

#include "kernels.hpp"
#include "loops.hpp"

namespace lamina::onednn {
namespace {

float attr(const sdk::KernelArgs& args, const char* name, double fallback) {
  return float(args.attrs.get_float(name, fallback));
}

// The loops, over one thread's part [0, n) of the tensors; restrict (the aliasing is only between
// an input and the output it becomes, through the same pointer) lets them vectorise.
LAMINA_INLINE void sgd_body(float* __restrict p, const float* __restrict g, int64_t n, float lr) {
  for (int64_t i = 0; i < n; ++i) p[i] -= lr * g[i];
}
LAMINA_VECTOR_DISPATCH(void, sgd, (float* __restrict p, const float* __restrict g, int64_t n, float lr),
                       (p, g, n, lr))
LAMINA_INLINE void sgd_momentum_body(float* __restrict p, const float* __restrict g, float* __restrict v,
                                     int64_t n, float lr, float momentum, bool nesterov) {
  for (int64_t i = 0; i < n; ++i) {
    float velocity = momentum * v[i] - lr * g[i];
    v[i] = velocity;
    p[i] += nesterov ? momentum * velocity - lr * g[i] : velocity;
  }
}
LAMINA_VECTOR_DISPATCH(void, sgd_momentum,
                       (float* __restrict p, const float* __restrict g, float* __restrict v, int64_t n,
                        float lr, float momentum, bool nesterov),
                       (p, g, v, n, lr, momentum, nesterov))
LAMINA_INLINE void adadelta_body(float* __restrict p, const float* __restrict g, float* __restrict a,
                                 float* __restrict d, int64_t n, float lr, float rho, float eps) {
  for (int64_t i = 0; i < n; ++i) {
    float acc = rho * a[i] + (1.f - rho) * g[i] * g[i];
    float delta = g[i] * std::sqrt(d[i] + eps) / std::sqrt(acc + eps);
    a[i] = acc;
    d[i] = rho * d[i] + (1.f - rho) * delta * delta;
    p[i] -= lr * delta;
  }
}
LAMINA_VECTOR_DISPATCH(void, adadelta,
                       (float* __restrict p, const float* __restrict g, float* __restrict a,
                        float* __restrict d, int64_t n, float lr, float rho, float eps),
                       (p, g, a, d, n, lr, rho, eps))
LAMINA_INLINE void adam_body(float* __restrict p, const float* __restrict g, float* __restrict m,
                             float* __restrict v, float* __restrict v_hat, int64_t n, float alpha, float b1,
                             float b2, float eps) {
  for (int64_t i = 0; i < n; ++i) {
    float mi = b1 * m[i] + (1.f - b1) * g[i];
    float vi = b2 * v[i] + (1.f - b2) * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    if (v_hat) {
      vi = std::max(v_hat[i], vi);
      v_hat[i] = vi;
    }
    p[i] -= alpha * mi / (std::sqrt(vi) + eps);
  }
}
LAMINA_VECTOR_DISPATCH(void, adam,
                       (float* __restrict p, const float* __restrict g, float* __restrict m,
                        float* __restrict v, float* __restrict v_hat, int64_t n, float alpha, float b1,
                        float b2, float eps),
                       (p, g, m, v, v_hat, n, alpha, b1, b2, eps))
LAMINA_INLINE void rmsprop_body(float* __restrict p, const float* __restrict g, float* __restrict v,
                                float* __restrict m, int64_t n, float lr, float rho, float momentum,
                                float eps) {
  for (int64_t i = 0; i < n; ++i) {
    float vi = rho * v[i] + (1.f - rho) * g[i] * g[i];
    v[i] = vi;
    float step = lr * g[i] / (std::sqrt(vi) + eps);
    if (m) {
      step += momentum * m[i];
      m[i] = step;
    }
    p[i] -= step;
  }
}
LAMINA_VECTOR_DISPATCH(void, rmsprop,
                       (float* __restrict p, const float* __restrict g, float* __restrict v,
                        float* __restrict m, int64_t n, float lr, float rho, float momentum, float eps),
                       (p, g, v, m, n, lr, rho, momentum, eps))

ONEDNN_KERNEL(sgd_update_kernel, "sgd_update") {
  const int slots = expect_update(args, 0, 1);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const float lr = attr(args, "lr", 0.01), momentum = attr(args, "momentum", 0.0);
  const bool nesterov = args.attrs.get_int("nesterov", 0) != 0;
  const float* g = in_data(args.inputs[1]);
  float* p = out_data(args.outputs[0]);
  float* v = slots ? out_data(args.outputs[1]) : nullptr;
  parallel_chunks(n, kParallelThreshold, [&](int64_t b, int64_t e) {
    if (v)
      sgd_momentum(p + b, g + b, v + b, e - b, lr, momentum, nesterov);
    else
      sgd(p + b, g + b, e - b, lr);
  });
}

ONEDNN_KERNEL(adadelta_update_kernel, "adadelta_update") {
  expect_update(args, 2, 2);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const float lr = attr(args, "lr", 1.0), rho = attr(args, "rho", 0.95), eps = attr(args, "epsilon", 1e-7);
  const float* g = in_data(args.inputs[1]);
  float* p = out_data(args.outputs[0]);
  float* a = out_data(args.outputs[1]);
  float* d = out_data(args.outputs[2]);
  parallel_chunks(n, kParallelThreshold,
                  [&](int64_t b, int64_t e) { adadelta(p + b, g + b, a + b, d + b, e - b, lr, rho, eps); });
}

ONEDNN_KERNEL(adam_update_kernel, "adam_update") {
  const int slots = expect_update(args, 2, 3);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const float alpha = attr(args, "alpha", 0.001), b1 = attr(args, "beta_1", 0.9),
              b2 = attr(args, "beta_2", 0.999), eps = attr(args, "epsilon", 1e-7);
  const float* g = in_data(args.inputs[1]);
  float* p = out_data(args.outputs[0]);
  float* m = out_data(args.outputs[1]);
  float* v = out_data(args.outputs[2]);
  float* v_hat = slots == 3 ? out_data(args.outputs[3]) : nullptr;
  parallel_chunks(n, kParallelThreshold, [&](int64_t b, int64_t e) {
    adam(p + b, g + b, m + b, v + b, v_hat ? v_hat + b : nullptr, e - b, alpha, b1, b2, eps);
  });
}

ONEDNN_KERNEL(rmsprop_update_kernel, "rmsprop_update") {
  const int slots = expect_update(args, 1, 2);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const float lr = attr(args, "lr", 0.001), rho = attr(args, "rho", 0.9), eps = attr(args, "epsilon", 1e-7),
              momentum = attr(args, "momentum", 0.0);
  const float* g = in_data(args.inputs[1]);
  float* p = out_data(args.outputs[0]);
  float* v = out_data(args.outputs[1]);
  float* m = slots == 2 ? out_data(args.outputs[2]) : nullptr;
  parallel_chunks(n, kParallelThreshold, [&](int64_t b, int64_t e) {
    rmsprop(p + b, g + b, v + b, m ? m + b : nullptr, e - b, lr, rho, momentum, eps);
  });
}

}  // namespace
}  // namespace lamina::onednn
