// Dropout masks from a counter-based hash, so that every backend draws the same mask for a seed.
#include <cmath>

#include "kernels.hpp"

namespace lamina::opencl {
namespace {

// y (n elements): y[i] = keep where u(seed, i) >= rate, else 0, with u(seed, i) = (z >> 40) / 2^24
// and z splitmix64's finaliser over seed + (i+1)·golden (docs/ops.md). The host turns `u >= rate`
// into the exact integer test `(z >> 40) >= threshold`, so no double precision is needed here.
const char* const kSource = R"CL(
__kernel void dropout_mask_kernel(__global float* y, int y_off, int n, ulong seed, ulong threshold, float keep) {
  const int i = get_global_id(0);
  if (i >= n) return;
  ulong z = seed + (ulong)(i + 1) * 0x9E3779B97F4A7C15UL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
  z ^= z >> 31;
  y[y_off + i] = (z >> 40) >= threshold ? keep : 0.0f;
}
)CL";

}  // namespace

OPENCL_KERNEL(dropout_mask) {
  // y is any shape; y[i] = 1/(1-rate) where u(seed, i) >= rate, else 0, i the row-major index.
  // The op takes no inputs, but callers may pass the tensor the mask is for; its shape must be y's.
  if (args.n_inputs == 1) {
    expect_arity(args, {"like"}, {"y"});
    expect_same_shape(args.inputs[0], "like", args.outputs[0], "y");
  } else {
    expect_arity(args, {}, {"y"});
  }
  args.attrs.need("rate");
  args.attrs.need("seed");
  const double rate = args.attrs.get_float("rate", 0.0);
  if (!(rate >= 0.0 && rate <= 1.0)) throw sdk::Error("rate must be in [0, 1], got " + std::to_string(rate));
  const cl_ulong seed = cl_ulong(args.attrs.get_int("seed", 0));
  // u >= rate  ⇔  (z >> 40) >= rate·2^24  ⇔  (z >> 40) >= ceil(rate·2^24); the product is exact.
  const cl_ulong threshold = cl_ulong(std::ceil(rate * 16777216.0));
  // With rate 1 nothing is kept, and the scale is never used.
  const cl_float keep = rate < 1.0 ? float(1.0 / (1.0 - rate)) : 0.0f;
  Backend& b = backend_of(args);
  cl_kernel k = b.kernel("random", kSource, "", "dropout_mask_kernel");
  const cl_int n = as_int(sdk::view_size(args.outputs[0]));
  set_args(k, device_tensor(args.outputs[0]), n, seed, threshold, keep);
  launch(b, k, {size_t(n)}, {128});
}

}  // namespace lamina::opencl
