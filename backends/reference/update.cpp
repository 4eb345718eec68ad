// Optimizer updates: each writes the parameter and its slots in place from the gradient, in double.
// Inputs are (param, grad, slots...) and the outputs are the same tensors as (param, slots...), so
// every element is read before it is written.
#include "kernels.hpp"

#include <algorithm>
#include <cmath>

namespace lamina::reference {

REFERENCE_KERNEL(sgd_update) {
  // p -= lr·g; with a velocity slot v: v = momentum·v − lr·g, p += v (nesterov: p += momentum·v − lr·g)
  const int slots = expect_update(args, 0, 1);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const double lr = args.attrs.get_float("lr", 0.01), momentum = args.attrs.get_float("momentum", 0.0);
  const bool nesterov = args.attrs.get_int("nesterov", 0) != 0;
  const float* g = input(args, 1);
  float* p = output(args, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (slots == 0) {
      p[i] = float(double(p[i]) - lr * double(g[i]));
      continue;
    }
    float* v = output(args, 1);
    double velocity = momentum * double(v[i]) - lr * double(g[i]);
    double step = nesterov ? momentum * velocity - lr * double(g[i]) : velocity;
    v[i] = float(velocity);
    p[i] = float(double(p[i]) + step);
  }
}

REFERENCE_KERNEL(adadelta_update) {
  // a = rho·a + (1−rho)·g²; delta = g·sqrt(d + eps)/sqrt(a + eps); d = rho·d + (1−rho)·delta²; p −= lr·delta
  expect_update(args, 2, 2);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const double lr = args.attrs.get_float("lr", 1.0), rho = args.attrs.get_float("rho", 0.95),
               eps = args.attrs.get_float("epsilon", 1e-7);
  const float* g = input(args, 1);
  float *p = output(args, 0), *a = output(args, 1), *d = output(args, 2);
  for (int64_t i = 0; i < n; ++i) {
    double gi = g[i];
    double acc = rho * double(a[i]) + (1.0 - rho) * gi * gi;
    double delta = gi * std::sqrt(double(d[i]) + eps) / std::sqrt(acc + eps);
    a[i] = float(acc);
    d[i] = float(rho * double(d[i]) + (1.0 - rho) * delta * delta);
    p[i] = float(double(p[i]) - lr * delta);
  }
}

REFERENCE_KERNEL(adam_update) {
  // m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²; [v̂ = max(v̂, v)]; p −= alpha·m/(sqrt(v or v̂) + eps)
  const int slots = expect_update(args, 2, 3);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const double alpha = args.attrs.get_float("alpha", 0.001), b1 = args.attrs.get_float("beta_1", 0.9),
               b2 = args.attrs.get_float("beta_2", 0.999), eps = args.attrs.get_float("epsilon", 1e-7);
  const float* g = input(args, 1);
  float *p = output(args, 0), *m = output(args, 1), *v = output(args, 2);
  float* v_hat = slots == 3 ? output(args, 3) : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    double gi = g[i];
    double mi = b1 * double(m[i]) + (1.0 - b1) * gi;
    double vi = b2 * double(v[i]) + (1.0 - b2) * gi * gi;
    m[i] = float(mi);
    v[i] = float(vi);
    double denominator = vi;
    if (v_hat) {
      denominator = std::max(double(v_hat[i]), vi);
      v_hat[i] = float(denominator);
    }
    p[i] = float(double(p[i]) - alpha * mi / (std::sqrt(denominator) + eps));
  }
}

REFERENCE_KERNEL(rmsprop_update) {
  // v = rho·v + (1−rho)·g²; step = lr·g/(sqrt(v) + eps); [m = momentum·m + step; step = m]; p −= step
  const int slots = expect_update(args, 1, 2);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const double lr = args.attrs.get_float("lr", 0.001), rho = args.attrs.get_float("rho", 0.9),
               eps = args.attrs.get_float("epsilon", 1e-7), momentum = args.attrs.get_float("momentum", 0.0);
  const float* g = input(args, 1);
  float *p = output(args, 0), *v = output(args, 1);
  float* m = slots == 2 ? output(args, 2) : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    double gi = g[i];
    double vi = rho * double(v[i]) + (1.0 - rho) * gi * gi;
    v[i] = float(vi);
    double step = lr * gi / (std::sqrt(vi) + eps);
    if (m) {
      step = momentum * double(m[i]) + step;
      m[i] = float(step);
    }
    p[i] = float(double(p[i]) - step);
  }
}

}  // namespace lamina::reference
