// Dropout masks and normal draws from a counter-based hash, so that every backend draws the same
// values for a seed.
#include "kernels.hpp"

namespace lamina::opencl {
namespace {

// y (n elements): y[i] = keep where u(seed, i) >= rate, else 0, with u(seed, i) = (z >> 40) / 2^24
// and z splitmix64's finaliser over seed + (i+1)·golden (docs/ops.md; sdk/dropout.hpp, which OpenCL C
// cannot include). The host turns `u >= rate` into the exact integer test `(z >> 40) >= threshold`
// (sdk::dropout_threshold), so no double precision is needed here.
const char* const kSource = R"CL(
// The 24 random bits of element i (sdk::dropout_bits).
ulong hash_bits(ulong seed, ulong i) {
  ulong z = seed + (i + 1) * 0x9E3779B97F4A7C15UL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
  z ^= z >> 31;
  return z >> 40;
}

__kernel void dropout_mask_kernel(__global float* y, int y_off, int n, ulong seed, ulong threshold, float keep) {
  const int i = get_global_id(0);
  if (i >= n) return;
  y[y_off + i] = hash_bits(seed, (ulong)i) >= threshold ? keep : 0.0f;
}

// u(seed, i) as a float: 24 bits, exact.
float uniform24(ulong seed, ulong i) { return (float)hash_bits(seed, i) * (1.0f / 16777216.0f); }

// y[i] = mean + stddev · n(seed, i): Box–Muller over u(seed, 2i) and u(seed, 2i+1), in single
// precision (devices need not have doubles).
__kernel void random_normal_kernel(__global float* y, int y_off, int n, ulong seed, float mean, float stddev) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float u1 = uniform24(seed, 2 * (ulong)i), u2 = uniform24(seed, 2 * (ulong)i + 1);
  y[y_off + i] = mean + stddev * (sqrt(-2.0f * log(1.0f - u1)) * cos(6.28318530718f * u2));
}
)CL";

}  // namespace

OPENCL_KERNEL(dropout_mask) {
  // y is any shape; y[i] = 1/(1-rate) where u(seed, i) >= rate, else 0, i the row-major index
  const DropoutArgs d = dropout_args(args);
  Backend& b = backend_of(args);
  cl_kernel k = b.kernel("random", kSource, "", "dropout_mask_kernel");
  const cl_int n = as_int(sdk::view_size(args.outputs[0]));
  set_args(k, device_tensor(args.outputs[0]), n, cl_ulong(d.seed), cl_ulong(d.threshold), cl_float(d.keep));
  launch(b, k, {size_t(n)}, {128});
}

OPENCL_KERNEL(random_normal) {
  // y is any shape; y[i] = mean + stddev · n(seed, i), i the row-major index
  const RandomNormalArgs r = random_normal_args(args);
  Backend& b = backend_of(args);
  cl_kernel k = b.kernel("random", kSource, "", "random_normal_kernel");
  const cl_int n = as_int(sdk::view_size(args.outputs[0]));
  set_args(k, device_tensor(args.outputs[0]), n, cl_ulong(r.seed), cl_float(r.mean), cl_float(r.stddev));
  launch(b, k, {size_t(n)}, {128});
}

}  // namespace lamina::opencl
