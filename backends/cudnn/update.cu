// Optimizer updates: each writes the parameter and its slots in place from the gradient, one
// thread per element, in double as the reference backend computes them (the kernels are bound by
// memory, so the wider arithmetic costs nothing measurable). Inputs are (param, grad, slots...)
// and the outputs are the same buffers as (param, slots...); every element is read before it is
// written.
#include "kernels.hpp"

namespace lamina::cudnn {
namespace {

// p -= lr·g; with a velocity v: v = momentum·v − lr·g, p += v (nesterov: p += momentum·v − lr·g)
__global__ void sgd_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ v,
                           int64_t n, double lr, double momentum, bool nesterov) {
  GRID_STRIDE_LOOP(i, n) {
    if (!v) {
      p[i] = float(double(p[i]) - lr * double(g[i]));
      continue;
    }
    const double velocity = momentum * double(v[i]) - lr * double(g[i]);
    const double step = nesterov ? momentum * velocity - lr * double(g[i]) : velocity;
    v[i] = float(velocity);
    p[i] = float(double(p[i]) + step);
  }
}

// a = rho·a + (1−rho)·g²; delta = g·sqrt(d + eps)/sqrt(a + eps); d = rho·d + (1−rho)·delta²; p −= lr·delta
__global__ void adadelta_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ a,
                                float* __restrict__ d, int64_t n, double lr, double rho, double eps) {
  GRID_STRIDE_LOOP(i, n) {
    const double gi = g[i];
    const double acc = rho * double(a[i]) + (1.0 - rho) * gi * gi;
    const double delta = gi * sqrt(double(d[i]) + eps) / sqrt(acc + eps);
    a[i] = float(acc);
    d[i] = float(rho * double(d[i]) + (1.0 - rho) * delta * delta);
    p[i] = float(double(p[i]) - lr * delta);
  }
}

// m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²; [v̂ = max(v̂, v)]; p −= alpha·m/(sqrt(v or v̂) + eps)
__global__ void adam_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                            float* __restrict__ v, float* __restrict__ v_hat, int64_t n, double alpha,
                            double b1, double b2, double eps) {
  GRID_STRIDE_LOOP(i, n) {
    const double gi = g[i];
    const double mi = b1 * double(m[i]) + (1.0 - b1) * gi;
    const double vi = b2 * double(v[i]) + (1.0 - b2) * gi * gi;
    m[i] = float(mi);
    v[i] = float(vi);
    double denominator = vi;
    if (v_hat) {
      denominator = fmax(double(v_hat[i]), vi);
      v_hat[i] = float(denominator);
    }
    p[i] = float(double(p[i]) - alpha * mi / (sqrt(denominator) + eps));
  }
}

// v = rho·v + (1−rho)·g²; step = lr·g/(sqrt(v) + eps); [m = momentum·m + step; step = m]; p −= step
__global__ void rmsprop_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ v,
                               float* __restrict__ m, int64_t n, double lr, double rho, double eps,
                               double momentum) {
  GRID_STRIDE_LOOP(i, n) {
    const double gi = g[i];
    const double vi = rho * double(v[i]) + (1.0 - rho) * gi * gi;
    v[i] = float(vi);
    double step = lr * gi / (sqrt(vi) + eps);
    if (m) {
      step = momentum * double(m[i]) + step;
      m[i] = float(step);
    }
    p[i] = float(double(p[i]) - step);
  }
}

CUDNN_KERNEL(op_sgd_update, "sgd_update") {
  const int slots = expect_update(args, 0, 1);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const Launch l = launch_for(be, n);
  sgd_kernel<<<l.blocks, l.threads, 0, be.stream>>>(
      dev(args.outputs[0]), dev(args.inputs[1]), slots ? dev(args.outputs[1]) : nullptr, n,
      args.attrs.get_float("lr", 0.01), args.attrs.get_float("momentum", 0.0),
      args.attrs.get_int("nesterov", 0) != 0);
}

CUDNN_KERNEL(op_adadelta_update, "adadelta_update") {
  expect_update(args, 2, 2);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const Launch l = launch_for(be, n);
  adadelta_kernel<<<l.blocks, l.threads, 0, be.stream>>>(
      dev(args.outputs[0]), dev(args.inputs[1]), dev(args.outputs[1]), dev(args.outputs[2]), n,
      args.attrs.get_float("lr", 1.0), args.attrs.get_float("rho", 0.95),
      args.attrs.get_float("epsilon", 1e-7));
}

CUDNN_KERNEL(op_adam_update, "adam_update") {
  const int slots = expect_update(args, 2, 3);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const Launch l = launch_for(be, n);
  adam_kernel<<<l.blocks, l.threads, 0, be.stream>>>(
      dev(args.outputs[0]), dev(args.inputs[1]), dev(args.outputs[1]), dev(args.outputs[2]),
      slots == 3 ? dev(args.outputs[3]) : nullptr, n, args.attrs.get_float("alpha", 0.001),
      args.attrs.get_float("beta_1", 0.9), args.attrs.get_float("beta_2", 0.999),
      args.attrs.get_float("epsilon", 1e-7));
}

CUDNN_KERNEL(op_rmsprop_update, "rmsprop_update") {
  const int slots = expect_update(args, 1, 2);
  const int64_t n = sdk::view_size(args.inputs[0]);
  const Launch l = launch_for(be, n);
  rmsprop_kernel<<<l.blocks, l.threads, 0, be.stream>>>(
      dev(args.outputs[0]), dev(args.inputs[1]), dev(args.outputs[1]),
      slots == 2 ? dev(args.outputs[2]) : nullptr, n, args.attrs.get_float("lr", 0.001),
      args.attrs.get_float("rho", 0.9), args.attrs.get_float("epsilon", 1e-7),
      args.attrs.get_float("momentum", 0.0));
}

}  // namespace
}  // namespace lamina::cudnn
