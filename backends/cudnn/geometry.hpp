// The cudnn backend's host-side logic that needs no GPU: reading kernel arguments into checked
// geometries, planning how a broadcast, a reduction or a GEMM maps onto the device kernels and
// cuBLAS, deciding when cuDNN's pooling matches lamina's contract, and ranking cuDNN's convolution
// algorithms. None of it touches CUDA, so tests/test_cudnn_host.cpp runs it on any machine.
#pragma once

#include <lamina/sdk/geometry.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lamina::cudnn {

// The SDK's pooling geometry and shape printing serve this backend as they are.
using sdk::pool_geometry;
using sdk::PoolGeometry;
using sdk::shape_string;

// cuDNN and cuBLAS take int sizes; larger extents are refused with the name of what overflowed.
int to_int(int64_t value, const char* what);

// ------------------------------------------------------------------------------------------------
// Convolution. x (N,H,W,C), w (KH,KW,C/G,O), y (N,OH,OW,O); pads [top,bottom,left,right],
// dilation [dh,dw] and groups G as cuDNN's convolution descriptor takes them (its dilation and
// group count; the filter descriptor then holds C/G inputs per output).
//
// cuDNN's convolution descriptor has one pad per axis, applied on both sides. Keras' "same" with an
// even kernel or a stride puts the odd row and column after (pads [0,1,0,1]), so asymmetric pads are
// applied explicitly: the input is copied into a zero-padded buffer and cuDNN runs unpadded.

struct ConvGeometry : sdk::ConvGeometry {
  bool explicit_padding() const { return !symmetric(); }
  // The input extent and pads cuDNN is told about.
  int64_t cudnn_h() const { return explicit_padding() ? h + top + bottom : h; }
  int64_t cudnn_w() const { return explicit_padding() ? w + left + right : w; }
  int64_t cudnn_pad_h() const { return explicit_padding() ? 0 : top; }
  int64_t cudnn_pad_w() const { return explicit_padding() ? 0 : left; }
};

// sdk::full_conv_geometry, and that cuDNN's int sizes hold every extent. `x`, `w` and `y` are the views
// shaped like the forward op's x, w and y, whichever of them is the kernel's output.
ConvGeometry cudnn_conv_geometry(const sdk::AttrReader& attrs, const lamina_view& x, const lamina_view& w,
                                 const lamina_view& y);

// ------------------------------------------------------------------------------------------------
// Pooling: sdk::PoolGeometry and sdk::pool_geometry.

// Which implementation runs a pooling op. lamina's own kernels implement the contract exactly for
// every geometry; cuDNN runs the forward passes where its documented semantics are lamina's:
//  - max pooling only without padding: cuDNN does not document what a padded cell holds;
//  - average pooling with symmetric pads (CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING divides by
//    the cells inside the input, as TensorFlow and lamina do), as cuDNN has no asymmetric pads;
//  - never when a window lies wholly in the padding (lamina: output 0; cuDNN: unspecified).
// The backward passes always run lamina's kernels: their inputs (x and dy, or dy alone) do not
// include the forward output cuDNN's backward wants, and max pooling's gradient goes to the first
// maximum of each window, a tie rule cuDNN does not promise.
enum class PoolPath { cudnn, own };
PoolPath choose_pool_path(const PoolGeometry& g, bool max, bool backward);

// ------------------------------------------------------------------------------------------------
// Broadcasting binaries. a, b and y have the same rank; each dim of a and b is y's or 1. The plan
// drops y's unit axes and merges neighbouring axes along which a and b each are either both
// broadcast or both full, so that the device kernel's index arithmetic runs over as few axes as
// possible (usually one or two).

struct BroadcastPlan {
  enum class Kind { same, scalar_b, general };  // same: a, b, y alike; scalar_b: b has one element
  Kind kind = Kind::general;
  int rank = 0;
  int64_t dims[LAMINA_MAX_DIMS] = {};
  int64_t stride_a[LAMINA_MAX_DIMS] = {};  // 0 along broadcast axes
  int64_t stride_b[LAMINA_MAX_DIMS] = {};
  int64_t size = 0;  // elements of y
};

BroadcastPlan plan_broadcast(const lamina_view& a, const lamina_view& b, const lamina_view& y);

// ------------------------------------------------------------------------------------------------
// reduce_sum. x any shape, y x's rank; an axis where y is 1 and x is not is summed. The plan drops
// x's unit axes and merges neighbouring axes that are both kept or both summed. The common shapes
// are then [kept, summed, kept] (bias gradients, row sums, everything), which one kernel covers as
// y(outer, inner) = Σ_r x(outer, r, inner); anything else runs a general kernel.

struct ReducePlan {
  enum class Kind { copy, outer_len_inner, general };
  Kind kind = Kind::copy;
  int64_t outer = 1, len = 1, inner = 1;  // outer_len_inner
  // general: x's merged axes (outermost first), whether each is summed, and its element stride.
  int rank = 0;
  int64_t dims[LAMINA_MAX_DIMS] = {};
  int64_t strides[LAMINA_MAX_DIMS] = {};
  bool summed[LAMINA_MAX_DIMS] = {};
  int64_t out_size = 0;  // elements of y
};

ReducePlan plan_reduce(const lamina_view& x, const lamina_view& y);

// ------------------------------------------------------------------------------------------------
// matmul on cuBLAS. lamina's matrices are row-major; cuBLAS is column-major, and a row-major
// (R,C) matrix is a column-major (C,R) one. So y = op(a)·op(b) is computed as the column-major
// yᵀ = op(b)ᵀ·op(a)ᵀ: cuBLAS' "A" is b and its "B" is a, with the same transpose flags.

struct GemmPlan {
  bool transpose_a = false, transpose_b = false;  // lamina's flags, passed to cuBLAS as opB, opA
  int m = 0, n = 0, k = 0;                        // y is (m,n), the shared dimension is k
  int lda = 0, ldb = 0, ldy = 0;                  // leading dimensions of a, b, y as cuBLAS sees them
};

GemmPlan plan_gemm(const lamina_view& a, const lamina_view& b, const lamina_view& y, bool transpose_a,
                   bool transpose_b);

// ------------------------------------------------------------------------------------------------
// Convolution algorithm choice. cuDNN proposes algorithms (its heuristics, or timed runs), each with
// a status, a workspace size, a math type and whether it is deterministic; the backend tries the
// ranked list in order until one runs, so a failure of the first choice falls back to the next.

// Mirrors cudnnMathType_t (checked against cuDNN's values in descriptors.cpp).
enum class Math : int { default_math = 0, tensor_op = 1, tensor_op_allow_conversion = 2, fma = 3 };

struct AlgoCandidate {
  int algo = 0;
  bool ok = true;  // status CUDNN_STATUS_SUCCESS
  size_t workspace = 0;
  Math math = Math::default_math;
  bool deterministic = true;
};

struct AlgoPolicy {
  size_t workspace_limit = size_t(256) << 20;
  // TF32 (tensor cores on float data) keeps about 10 mantissa bits: off unless asked for, so the
  // backend matches the reference backend to float precision.
  bool allow_tf32 = false;
  bool deterministic_only = false;
};

// The candidates worth trying, best first: cuDNN's order, without failed ones, ones over the
// workspace limit, non-deterministic ones when only deterministic ones are, and repeats of an
// algorithm (cuDNN lists an algorithm once per math type). `fallback` (an algorithm every layout
// supports) ends the list unless already in it, so there is always something to try. A candidate
// proposed with tensor-op math still runs, with FMA math, when TF32 is not allowed (math_for).
std::vector<AlgoCandidate> rank_algorithms(const std::vector<AlgoCandidate>& proposed,
                                           const AlgoPolicy& policy, int fallback);

// The math type an algorithm runs with: its own when TF32 is allowed, otherwise FMA (plain float
// arithmetic, no tensor cores).
Math math_for(const AlgoCandidate& candidate, const AlgoPolicy& policy);

// How many slices a reduction of `len` elements per output is split into, so that few outputs
// with long sums (a bias gradient sums 18,432 rows into 32 columns) still occupy the whole GPU: the
// slices are summed into a scratch buffer, which a second pass sums. 1 means a single pass.
// `blocks_per_slice` is the number of thread blocks one slice of all outputs takes.
int64_t reduce_splits(int64_t len, int64_t blocks_per_slice, int sm_count);

// Lowest compute capability in a CMAKE_CUDA_ARCHITECTURES list such as "80;90" or "80-real;90a";
// 0 when none is numeric ("native", "all").
int lowest_architecture(const std::string& list);

}  // namespace lamina::cudnn
