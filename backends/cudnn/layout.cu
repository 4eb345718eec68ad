// Layout ops (concat, slice, slice_backward, pad, transpose): the SDK's copy plan, with the fill on
// the stream and each region one launch of a strided-copy kernel.
#include <lamina/sdk/layout.hpp>

#include "kernels.hpp"

namespace lamina::cudnn {
namespace {

// A region as the kernel takes it, by value.
struct Region {
  int32_t rank;
  int64_t extent[LAMINA_MAX_DIMS];
  int64_t src_stride[LAMINA_MAX_DIMS];
  int64_t dst_stride[LAMINA_MAX_DIMS];
};

// Each element's index, decomposed over the region's extents (the last fastest), gives its source
// and destination; x and y already point at the region's first elements.
__global__ void strided_copy_kernel(const float* __restrict__ x, float* __restrict__ y, Region r, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t s = 0, d = 0, rest = i;
    for (int32_t k = r.rank - 1; k > 0; --k) {
      const int64_t q = rest / r.extent[k], c = rest - q * r.extent[k];
      s += c * r.src_stride[k];
      d += c * r.dst_stride[k];
      rest = q;
    }
    y[d + rest * r.dst_stride[0]] = x[s + rest * r.src_stride[0]];
  }
}

void run_layout(const char* op, const sdk::KernelArgs& args, Backend& be) {
  expect_views(args, args.n_inputs, 1);
  const sdk::layout::CopyPlan plan =
      sdk::layout::plan_copy(op, args.inputs, args.n_inputs, args.outputs[0], args.attrs.raw());
  float* y = dev(args.outputs[0]);
  if (plan.fill) fill_device(be, y, sdk::view_size(args.outputs[0]), plan.value);
  for (const sdk::layout::CopyRegion& r : plan.regions) {
    Region c{};
    c.rank = r.rank;
    for (int32_t k = 0; k < r.rank; ++k) {
      c.extent[k] = r.extent[k];
      c.src_stride[k] = r.src_stride[k];
      c.dst_stride[k] = r.dst_stride[k];
    }
    const int64_t n = r.elements();
    const Launch l = launch_for(be, n);
    strided_copy_kernel<<<l.blocks, l.threads, 0, be.stream>>>(dev(args.inputs[r.input]) + r.src_offset,
                                                               y + r.dst_offset, c, n);
  }
}

CUDNN_KERNEL(op_concat, "concat") {
  run_layout("concat", args, be);
}
CUDNN_KERNEL(op_slice, "slice") {
  run_layout("slice", args, be);
}
CUDNN_KERNEL(op_slice_backward, "slice_backward") {
  run_layout("slice_backward", args, be);
}
CUDNN_KERNEL(op_pad, "pad") {
  run_layout("pad", args, be);
}
CUDNN_KERNEL(op_transpose, "transpose") {
  run_layout("transpose", args, be);
}

}  // namespace

}  // namespace lamina::cudnn
