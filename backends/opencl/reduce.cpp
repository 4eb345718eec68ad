// Reductions: reduce_sum, and softmax / log_softmax over the last axis. Sums accumulate in double
// where the device has it (as the reference backend does), else in float.
#include <string>
#include <vector>

#include "kernels.hpp"

namespace lamina::opencl {
namespace {

// Built with VW = 8 (sum_rows' vectors). Sums accumulate in ACC: double where the device has it.
const std::string kSource = std::string(kVectorPreamble) + kAccumulatorPreamble + R"CL(

// reduce_sum. The host merges x's axes into runs that are all kept or all summed; `kept` lists the
// kept runs (sizes and x strides, outermost first), which are y's axes in order, and `summed` the
// summed runs. One work-item per element of y (ny elements).
typedef struct {
  int n_kept;
  int kept_size[8];
  int kept_stride[8];
  int n_summed;
  int summed_size[8];
  int summed_stride[8];
} Reduction;

__kernel void reduce_sum_kernel(__global const float* x, int x_off, __global float* y, int y_off, int ny,
                                Reduction s) {
  const int j = get_global_id(0);
  if (j >= ny) return;
  int base = x_off, rest = j;
  for (int d = s.n_kept - 1; d >= 0; --d) {
    const int q = rest / s.kept_size[d];
    base += (rest - q * s.kept_size[d]) * s.kept_stride[d];
    rest = q;
  }
  if (s.n_summed == 0) {
    y[y_off + j] = x[base];
    return;
  }
  // The innermost summed run is a plain loop; the outer ones advance like an odometer.
  const int inner = s.n_summed - 1, inner_size = s.summed_size[inner], inner_stride = s.summed_stride[inner];
  int index[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  acc_t sum = 0;
  for (;;) {
    int at = base;
    for (int d = 0; d < inner; ++d) at += index[d] * s.summed_stride[d];
    for (int k = 0; k < inner_size; ++k) sum += x[at + k * inner_stride];
    int d = inner - 1;
    while (d >= 0 && ++index[d] == s.summed_size[d]) index[d--] = 0;
    if (d < 0) break;
  }
  y[y_off + j] = (float)sum;
}

// softmax and log_softmax: x and y are (rows, length); one work-item per row.
__kernel void softmax_kernel(__global const float* x, int x_off, __global float* y, int y_off, int rows,
                             int length, int take_log) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  __global const float* xr = x + x_off + r * length;
  __global float* yr = y + y_off + r * length;
  acc_t max = xr[0];
  for (int j = 1; j < length; ++j) max = max < xr[j] ? (acc_t)xr[j] : max;
  acc_t sum = 0;
  for (int j = 0; j < length; ++j) sum += exp((acc_t)xr[j] - max);
  if (take_log) {
    const acc_t log_sum = log(sum);
    for (int j = 0; j < length; ++j) yr[j] = (float)((acc_t)xr[j] - max - log_sum);
  } else {
    for (int j = 0; j < length; ++j) yr[j] = (float)(exp((acc_t)xr[j] - max) / sum);
  }
}

// The common case of reduce_sum, and the bias gradients: y (cols) = Σ over rows of x (rows, cols).
// One work-item per vector of VW columns, the last one possibly partial.
__kernel void sum_rows(__global const float* x, int x_off, __global float* y, int y_off, int rows, int cols) {
  const int c0 = get_global_id(0) * VW;
  if (c0 >= cols) return;
  const int count = min(cols - c0, VW);
  x += x_off + c0;
  CAT(ACC, VW) sum = (CAT(ACC, VW))(0);
  for (int r = 0; r < rows; ++r) sum += CAT(CAT(convert_, ACC), VW)(LOAD_SOME(x + r * cols, count));
  STORE_SOME(CAT(convert_float, VW)(sum), y + y_off + c0, count);
}
)CL";

// sum_rows' vectors: 8 columns per work-item.
constexpr int kWidth = 8;

cl_kernel reduce_kernel(Backend& b, const char* name) {
  return b.kernel("reduce", kSource.c_str(), defines({{"VW", kWidth}}), name);
}

// Must match the OpenCL C struct above.
struct Reduction {
  cl_int n_kept;
  cl_int kept_size[8];
  cl_int kept_stride[8];
  cl_int n_summed;
  cl_int summed_size[8];
  cl_int summed_stride[8];
};

void softmax_rows(const sdk::KernelArgs& args, bool take_log) {
  // x is (..., L), y is x's shape; each row of L elements is normalised on its own
  expect_arity(args, {"x"}, {"y"});
  const Rows r = last_axis_rows(args.inputs[0], args.outputs[0]);
  if (r.length == 0) return;
  Backend& b = backend_of(args);
  cl_kernel k = reduce_kernel(b, "softmax_kernel");
  set_args(k, device_tensor(args.inputs[0]), device_tensor(args.outputs[0]), as_int(r.rows), as_int(r.length),
           cl_int(take_log));
  launch(b, k, {size_t(r.rows)}, {b.is_cpu ? size_t(8) : size_t(64)});
}

}  // namespace

void sum_rows(Backend& b, DeviceTensor x, int64_t rows, int64_t cols, DeviceTensor y) {
  cl_kernel k = reduce_kernel(b, "sum_rows");
  set_args(k, x, y, as_int(rows), as_int(cols));
  launch(b, k, {size_t((cols + kWidth - 1) / kWidth)}, {1});
}

OPENCL_KERNEL(reduce_sum) {
  // x is any shape, y has x's rank; axes where y is 1 and x is not are summed, the others match
  expect_arity(args, {"x"}, {"y"});
  const lamina_view& xv = args.inputs[0];
  const lamina_view& yv = args.outputs[0];
  expect_reduce_shapes(xv, yv);

  // Runs of neighbouring axes that are all summed or all kept, innermost first. Axes of size 1
  // take no part; x is contiguous, so a run's stride is that of its innermost axis.
  struct Run {
    bool summed;
    int64_t size, stride;
  };
  std::vector<Run> runs;
  int64_t stride = 1;
  for (int32_t d = xv.ndim - 1; d >= 0; --d) {
    const int64_t extent = xv.shape[d];
    const bool summed = yv.shape[d] == 1;
    if (extent != 1) {
      if (!runs.empty() && runs.back().summed == summed)
        runs.back().size *= extent;
      else
        runs.push_back({summed, extent, stride});
    }
    stride *= extent;
  }
  Reduction s{};
  for (auto r = runs.rbegin(); r != runs.rend(); ++r) {
    if (r->summed) {
      s.summed_size[s.n_summed] = as_int(r->size);
      s.summed_stride[s.n_summed++] = as_int(r->stride);
    } else {
      s.kept_size[s.n_kept] = as_int(r->size);
      s.kept_stride[s.n_kept++] = as_int(r->stride);
    }
  }

  Backend& b = backend_of(args);
  const cl_int ny = as_int(sdk::view_size(yv));
  if (sdk::view_size(xv) == 0) {  // sums of nothing
    const cl_float zero = 0.0f;
    check_cl(clEnqueueFillBuffer(b.queue, static_cast<cl_mem>(yv.data), &zero, sizeof(zero), yv.offset,
                                 size_t(ny) * sizeof(float), 0, nullptr, nullptr),
             "clEnqueueFillBuffer");
    return;
  }
  // Sums over leading axes into the trailing ones (bias gradients), or over everything: one pass
  // down the rows, vectorised across the kept columns.
  if (s.n_summed == 1 && (s.n_kept == 0 || (s.n_kept == 1 && !runs.front().summed))) {
    sum_rows(b, device_tensor(xv), s.summed_size[0], s.n_kept ? s.kept_size[0] : 1, device_tensor(yv));
    return;
  }
  cl_kernel k = reduce_kernel(b, "reduce_sum_kernel");
  set_args(k, device_tensor(xv), device_tensor(yv), ny, s);
  launch(b, k, {size_t(ny)}, {b.is_cpu ? size_t(8) : size_t(64)});
}

OPENCL_KERNEL(softmax) {
  softmax_rows(args, false);
}

OPENCL_KERNEL(log_softmax) {
  softmax_rows(args, true);
}

}  // namespace lamina::opencl
