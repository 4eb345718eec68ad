// reduce_sum on CUDA kernels; softmax and log_softmax on cuDNN.
//
// reduce_sum: plan_reduce merges x's axes into [outer, len, inner] for the common shapes, and
// y(o, i) = Σ_r x(o, r, i) then runs one of two kernels: rows (inner = 1: one block sums each
// contiguous row) or columns (inner > 1: 32 neighbouring columns per block, so that each row of a
// tile is one coalesced read). When few outputs have long sums, the sums are split into slices that
// a second pass of the same kernel adds up (reduce_splits). Other axis patterns run a general,
// slower kernel. Sums are float, in a different order from the reference backend's double sums.
#include <climits>

#include "kernels.hpp"

namespace lamina::cudnn {
namespace {

constexpr int kRowThreads = 256;
constexpr int kTileColumns = 32, kTileRows = 8;

// The sum of `value` over the block's threads, valid in thread 0. blockDim.x is a multiple of 32.
__device__ float block_sum(float value) {
  __shared__ float warp_sums[32];
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  const int warps = blockDim.x / 32;
  value = threadIdx.x < warps ? warp_sums[threadIdx.x] : 0.0f;
  if (warp == 0)
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  __syncthreads();  // warp_sums is reused by the caller's next row
  return value;
}

// x (outer, len) → y (outer, splits): y[o, s] = Σ of x[o, r] for r in slice s = [s·chunk, (s+1)·chunk).
// Grid: x over rows (grid-stride), y over slices.
__global__ void sum_rows(const float* __restrict__ x, float* __restrict__ y, int64_t outer, int64_t len,
                         int64_t chunk) {
  const int64_t begin = blockIdx.y * chunk;
  const int64_t end = min(len, begin + chunk);
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const float* x_row = x + row * len;
    float acc = 0.0f;
    for (int64_t r = begin + threadIdx.x; r < end; r += blockDim.x) acc += x_row[r];
    acc = block_sum(acc);
    if (threadIdx.x == 0) y[row * gridDim.y + blockIdx.y] = acc;
  }
}

// x (outer, len, inner) → y (outer, splits, inner): y[o, s, i] = Σ of x[o, r, i] for r in slice s.
// Block (32, 8): threadIdx.x picks a column of the block's tile, threadIdx.y a stride-8 subset of the
// rows; the eight partial sums of each column meet in shared memory. Grid: x over column tiles,
// y over outer (grid-stride), z over slices.
__global__ void sum_columns(const float* __restrict__ x, float* __restrict__ y, int64_t outer, int64_t len,
                            int64_t inner, int64_t chunk) {
  __shared__ float partial[kTileRows][kTileColumns + 1];
  const int64_t column = int64_t(blockIdx.x) * kTileColumns + threadIdx.x;
  const int64_t begin = blockIdx.z * chunk;
  const int64_t end = min(len, begin + chunk);
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
    float acc = 0.0f;
    if (column < inner)
      for (int64_t r = begin + threadIdx.y; r < end; r += kTileRows) acc += x[(o * len + r) * inner + column];
    partial[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && column < inner) {
      float sum = 0.0f;
      for (int k = 0; k < kTileRows; ++k) sum += partial[k][threadIdx.x];
      y[(o * gridDim.z + blockIdx.z) * inner + column] = sum;
    }
    __syncthreads();
  }
}

// Any other pattern: one thread per output; its kept coordinates give a base offset, and it walks
// every combination of the summed axes.
struct GeneralSum {
  int rank;
  int64_t dims[LAMINA_MAX_DIMS];
  int64_t strides[LAMINA_MAX_DIMS];
  bool summed[LAMINA_MAX_DIMS];
  int64_t terms;  // elements summed into each output
};

__global__ void sum_general(const float* __restrict__ x, float* __restrict__ y, int64_t outputs,
                            GeneralSum p) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < outputs;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rest = i, base = 0;
    for (int d = p.rank - 1; d >= 0; --d)
      if (!p.summed[d]) {
        base += rest % p.dims[d] * p.strides[d];
        rest /= p.dims[d];
      }
    float acc = 0.0f;
    for (int64_t t = 0; t < p.terms; ++t) {
      int64_t r = t, offset = base;
      for (int d = p.rank - 1; d >= 0; --d)
        if (p.summed[d]) {
          offset += r % p.dims[d] * p.strides[d];
          r /= p.dims[d];
        }
      acc += x[offset];
    }
    y[i] = acc;
  }
}

// One pass of y(outer, splits, inner) = slices of Σ_r x(outer, len, inner).
void sum_pass(Backend& be, const float* x, float* y, int64_t outer, int64_t len, int64_t inner,
              int64_t splits) {
  const int64_t chunk = (len + splits - 1) / splits;
  if (inner == 1) {
    const dim3 grid(unsigned(std::min<int64_t>(outer, int64_t(be.sm_count) * 32)), unsigned(splits));
    sum_rows<<<grid, kRowThreads, 0, be.stream>>>(x, y, outer, len, chunk);
  } else {
    const int64_t tiles = (inner + kTileColumns - 1) / kTileColumns;
    if (tiles > INT_MAX) throw sdk::Error("reduce_sum: too many columns (" + std::to_string(inner) + ")");
    const dim3 grid(unsigned(tiles), unsigned(std::min<int64_t>(outer, 65535)), unsigned(splits));
    sum_columns<<<grid, dim3(kTileColumns, kTileRows), 0, be.stream>>>(x, y, outer, len, inner, chunk);
  }
}

// y(outer, inner) = Σ_r x(outer, len, inner), in one pass or, for few long sums, two.
void sum_middle(Backend& be, const float* x, float* y, int64_t outer, int64_t len, int64_t inner) {
  const int64_t blocks = inner == 1 ? outer : outer * ((inner + kTileColumns - 1) / kTileColumns);
  const int64_t splits = reduce_splits(len, blocks, be.sm_count);
  if (splits == 1) {
    sum_pass(be, x, y, outer, len, inner, 1);
    return;
  }
  Scratch slices(be, outer * splits * inner);  // (outer, splits, inner)
  sum_pass(be, x, slices.data(), outer, len, inner, splits);
  sum_pass(be, slices.data(), y, outer, splits, inner, 1);
}

CUDNN_KERNEL(op_reduce_sum, "reduce_sum") {
  // x any shape, y x's rank; axes where y is 1 and x is not are summed
  expect_views(args, 1, 1);
  const lamina_view& xv = args.inputs[0];
  const lamina_view& yv = args.outputs[0];
  const ReducePlan p = plan_reduce(xv, yv);
  const float* x = dev(xv);
  float* y = dev(yv);
  if (sdk::view_size(xv) == 0) {  // an empty sum is 0
    check_cuda(cudaMemsetAsync(y, 0, size_t(p.out_size) * sizeof(float), be.stream), "zeroing on the device");
    return;
  }
  switch (p.kind) {
    case ReducePlan::Kind::copy:
      check_cuda(
          cudaMemcpyAsync(y, x, size_t(p.out_size) * sizeof(float), cudaMemcpyDeviceToDevice, be.stream),
          "copying on the device");
      return;
    case ReducePlan::Kind::outer_len_inner:
      sum_middle(be, x, y, p.outer, p.len, p.inner);
      return;
    case ReducePlan::Kind::general: {
      GeneralSum g{};
      g.rank = p.rank;
      g.terms = 1;
      for (int d = 0; d < p.rank; ++d) {
        g.dims[d] = p.dims[d], g.strides[d] = p.strides[d], g.summed[d] = p.summed[d];
        if (p.summed[d]) g.terms *= p.dims[d];
      }
      const Launch l = launch_for(be, p.out_size);
      sum_general<<<l.blocks, l.threads, 0, be.stream>>>(x, y, p.out_size, g);
      return;
    }
  }
}

// softmax / log_softmax over the last axis: cuDNN's instance softmax over (rows, length, 1, 1),
// max-subtracted (CUDNN_SOFTMAX_ACCURATE) or its log (CUDNN_SOFTMAX_LOG), in blocks of rows that
// keep every index an int.
void softmax_rows(const sdk::KernelArgs& args, Backend& be, cudnnSoftmaxAlgorithm_t algorithm) {
  // x (..., L), y x's shape
  expect_views(args, 1, 1);
  const lamina_view& xv = args.inputs[0];
  const auto [rows, length] = last_axis_rows(xv, args.outputs[0]);
  if (length == 0) return;
  const int64_t block = std::max<int64_t>(1, INT_MAX / length);
  const float* x = dev(xv);
  float* y = dev(args.outputs[0]);
  const float one = 1.0f, zero = 0.0f;
  for (int64_t begin = 0; begin < rows; begin += block) {
    const int64_t count = std::min(block, rows - begin);
    set_rows(be.tensor_a, count, length);
    check_cudnn(cudnnSoftmaxForward(be.cudnn, algorithm, CUDNN_SOFTMAX_MODE_INSTANCE, &one, be.tensor_a,
                                    x + begin * length, &zero, be.tensor_a, y + begin * length),
                "cudnnSoftmaxForward");
  }
}

CUDNN_KERNEL(op_softmax, "softmax") {
  softmax_rows(args, be, CUDNN_SOFTMAX_ACCURATE);
}
CUDNN_KERNEL(op_log_softmax, "log_softmax") {
  softmax_rows(args, be, CUDNN_SOFTMAX_LOG);
}

}  // namespace

void sum_rows_into(Backend& be, const float* x, float* y, int64_t rows, int64_t length) {
  if (rows == 0) {
    check_cuda(cudaMemsetAsync(y, 0, size_t(length) * sizeof(float), be.stream), "zeroing on the device");
    return;
  }
  sum_middle(be, x, y, 1, rows, length);
}

}  // namespace lamina::cudnn
