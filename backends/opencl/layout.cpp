// Layout ops (concat, slice, slice_backward, pad, transpose): the SDK's copy plan, with the fill
// as the queue's own command and each region one launch of a strided-copy kernel.
#include <lamina/sdk/layout.hpp>

#include "kernels.hpp"

namespace lamina::opencl {
namespace {

// One work-item per element of a region: its index, decomposed over the region's extents (the last
// fastest), gives the source and destination elements.
const char* const kSource = R"CL(
typedef struct {
  int rank;
  int extent[8];
  int src_stride[8];
  int dst_stride[8];
  int src_offset;
  int dst_offset;
} Region;

__kernel void strided_copy(__global const float* x, int x_off, __global float* y, int y_off, Region r, int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  int s = x_off + r.src_offset, d = y_off + r.dst_offset, rest = i;
  for (int k = r.rank - 1; k > 0; --k) {
    const int q = rest / r.extent[k], c = rest - q * r.extent[k];
    s += c * r.src_stride[k];
    d += c * r.dst_stride[k];
    rest = q;
  }
  y[d + rest * r.dst_stride[0]] = x[s + rest * r.src_stride[0]];
}
)CL";

// Must match the OpenCL C struct above: ints only, so the layouts agree on every device.
struct Region {
  cl_int rank;
  cl_int extent[8];
  cl_int src_stride[8];
  cl_int dst_stride[8];
  cl_int src_offset;
  cl_int dst_offset;
};

constexpr size_t kGroup = 64;

void run_layout(const char* op, const sdk::KernelArgs& args, Backend& b) {
  expect_views(args, args.n_inputs, 1);
  const sdk::layout::CopyPlan plan =
      sdk::layout::plan_copy(op, args.inputs, args.n_inputs, args.outputs[0], args.attrs.raw());
  const lamina_view& yv = args.outputs[0];
  if (plan.fill && sdk::view_size(yv) > 0) {
    const cl_float value = plan.value;
    check_cl(clEnqueueFillBuffer(b.queue, static_cast<cl_mem>(yv.data), &value, sizeof(value), yv.offset,
                                 size_t(sdk::view_size(yv)) * sizeof(float), 0, nullptr, nullptr),
             "clEnqueueFillBuffer");
  }
  if (plan.regions.empty()) return;
  cl_kernel k = b.kernel("layout", kSource, "", "strided_copy");
  for (const sdk::layout::CopyRegion& r : plan.regions) {
    // every index stays inside one of the checked views, which fit 32-bit integers
    Region c{};
    c.rank = r.rank;
    for (int32_t d = 0; d < r.rank; ++d) {
      c.extent[d] = as_int(r.extent[d]);
      c.src_stride[d] = as_int(r.src_stride[d]);
      c.dst_stride[d] = as_int(r.dst_stride[d]);
    }
    c.src_offset = as_int(r.src_offset);
    c.dst_offset = as_int(r.dst_offset);
    const cl_int n = as_int(r.elements());
    set_args(k, device_tensor(args.inputs[r.input]), device_tensor(yv), c, n);
    launch(b, k, {size_t(n)}, {kGroup});
  }
}

OPENCL_KERNEL(concat) {
  run_layout("concat", args, be);
}
OPENCL_KERNEL(slice) {
  run_layout("slice", args, be);
}
OPENCL_KERNEL(slice_backward) {
  run_layout("slice_backward", args, be);
}
OPENCL_KERNEL(pad) {
  run_layout("pad", args, be);
}
OPENCL_KERNEL(transpose) {
  run_layout("transpose", args, be);
}

}  // namespace

}  // namespace lamina::opencl
