// Optimizer updates (sgd_update, adadelta_update, adam_update, rmsprop_update): one pass over the
// parameter, its gradient and its slots, written in place, where the same rule composed of
// element-wise ops makes a dozen passes and as many temporaries.
//
// Inputs are (param, grad, slots...) and the outputs are the same tensors as (param, slots...), so
// kernels read each element before writing it. Arithmetic is in float, as the composed rule's ops
// and the other backends' kernels do it.
#include <string>

#include "kernels.hpp"

namespace lamina::opencl {
namespace {

// A work-item updates VW consecutive elements of n, the last vector possibly partial. Slots a rule
// may lack (sgd's velocity, adam's v̂, rmsprop's momentum) are flagged by an int and, when absent,
// stand in as the parameter itself, never read.
const std::string kSource = std::string(kVectorPreamble) + R"CL(
#define IN(p) LOAD_SOME((p), count)
#define OUT(v, p) STORE_SOME((v), (p), count)
#define BEGIN                          \
  const int i = get_global_id(0) * VW; \
  if (i >= n) return;                  \
  const int count = min(n - i, VW);    \
  p += p_off + i;                      \
  g += g_off + i;

// p −= lr·g; with a velocity v: v = momentum·v − lr·g, p += v (nesterov: p += momentum·v − lr·g)
__kernel void sgd(__global float* p, int p_off, __global const float* g, int g_off, __global float* v, int v_off,
                  int n, int has_velocity, float lr, float momentum, int nesterov) {
  BEGIN
  const vec_t gi = IN(g);
  if (!has_velocity) {
    OUT(IN(p) - lr * gi, p);
    return;
  }
  v += v_off + i;
  const vec_t velocity = momentum * IN(v) - lr * gi;
  const vec_t step = nesterov ? momentum * velocity - lr * gi : velocity;
  OUT(velocity, v);
  OUT(IN(p) + step, p);
}

// a = rho·a + (1−rho)·g²; delta = g·sqrt(d + eps)/sqrt(a + eps); d = rho·d + (1−rho)·delta²; p −= lr·delta
__kernel void adadelta(__global float* p, int p_off, __global const float* g, int g_off, __global float* a,
                       int a_off, __global float* d, int d_off, int n, float lr, float rho, float eps) {
  BEGIN
  a += a_off + i;
  d += d_off + i;
  const vec_t gi = IN(g), di = IN(d);
  const vec_t acc = rho * IN(a) + (1 - rho) * gi * gi;
  const vec_t delta = gi * sqrt(di + eps) / sqrt(acc + eps);
  OUT(acc, a);
  OUT(rho * di + (1 - rho) * delta * delta, d);
  OUT(IN(p) - lr * delta, p);
}

// m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²; [v̂ = max(v̂, v)]; p −= alpha·m/(sqrt(v or v̂) + eps)
__kernel void adam(__global float* p, int p_off, __global const float* g, int g_off, __global float* m, int m_off,
                   __global float* v, int v_off, __global float* v_hat, int v_hat_off, int n, int has_v_hat,
                   float alpha, float b1, float b2, float eps) {
  BEGIN
  m += m_off + i;
  v += v_off + i;
  const vec_t gi = IN(g);
  const vec_t mi = b1 * IN(m) + (1 - b1) * gi;
  const vec_t vi = b2 * IN(v) + (1 - b2) * gi * gi;
  OUT(mi, m);
  OUT(vi, v);
  vec_t denominator = vi;
  if (has_v_hat) {
    v_hat += v_hat_off + i;
    denominator = fmax(IN(v_hat), vi);
    OUT(denominator, v_hat);
  }
  OUT(IN(p) - alpha * mi / (sqrt(denominator) + eps), p);
}

// v = rho·v + (1−rho)·g²; step = lr·g/(sqrt(v) + eps); [m = momentum·m + step; step = m]; p −= step
__kernel void rmsprop(__global float* p, int p_off, __global const float* g, int g_off, __global float* v,
                      int v_off, __global float* m, int m_off, int n, int has_momentum, float lr, float rho,
                      float eps, float momentum) {
  BEGIN
  v += v_off + i;
  const vec_t gi = IN(g);
  const vec_t vi = rho * IN(v) + (1 - rho) * gi * gi;
  OUT(vi, v);
  vec_t step = lr * gi / (sqrt(vi) + eps);
  if (has_momentum) {
    m += m_off + i;
    step = momentum * IN(m) + step;
    OUT(step, m);
  }
  OUT(IN(p) - step, p);
}
)CL";

// Runs update kernel `name` over the parameter's n elements; `args...` follow (param, grad).
template <class... Args>
void run(const sdk::KernelArgs& in, const char* name, Args... args) {
  constexpr int vw = 8;
  Backend& b = backend_of(in);
  const int64_t n = sdk::view_size(in.inputs[0]);
  cl_kernel k = b.kernel("update", kSource.c_str(), defines({{"VW", vw}}), name);
  set_args(k, device_tensor(in.outputs[0]), device_tensor(in.inputs[1]), args...);
  launch(b, k, {size_t((n + vw - 1) / vw)}, {64});
}

float value(const sdk::KernelArgs& args, const char* name, double fallback) {
  return float(args.attrs.get_float(name, fallback));
}

}  // namespace

OPENCL_KERNEL(sgd_update) {
  const int slots = expect_update(args, 0, 1);
  const DeviceTensor velocity = device_tensor(args.outputs[slots ? 1 : 0]);
  run(args, "sgd", velocity, as_int(sdk::view_size(args.inputs[0])), cl_int(slots), value(args, "lr", 0.01),
      value(args, "momentum", 0.0), cl_int(args.attrs.get_int("nesterov", 0) != 0));
}

OPENCL_KERNEL(adadelta_update) {
  expect_update(args, 2, 2);
  run(args, "adadelta", device_tensor(args.outputs[1]), device_tensor(args.outputs[2]),
      as_int(sdk::view_size(args.inputs[0])), value(args, "lr", 1.0), value(args, "rho", 0.95),
      value(args, "epsilon", 1e-7));
}

OPENCL_KERNEL(adam_update) {
  const int slots = expect_update(args, 2, 3);
  run(args, "adam", device_tensor(args.outputs[1]), device_tensor(args.outputs[2]),
      device_tensor(args.outputs[slots == 3 ? 3 : 0]), as_int(sdk::view_size(args.inputs[0])),
      cl_int(slots == 3), value(args, "alpha", 0.001), value(args, "beta_1", 0.9),
      value(args, "beta_2", 0.999), value(args, "epsilon", 1e-7));
}

OPENCL_KERNEL(rmsprop_update) {
  const int slots = expect_update(args, 1, 2);
  run(args, "rmsprop", device_tensor(args.outputs[1]), device_tensor(args.outputs[slots == 2 ? 2 : 0]),
      as_int(sdk::view_size(args.inputs[0])), cl_int(slots == 2), value(args, "lr", 0.001),
      value(args, "rho", 0.9), value(args, "epsilon", 1e-7), value(args, "momentum", 0.0));
}

}  // namespace lamina::opencl
