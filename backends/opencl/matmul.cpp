// 2-D matrix product with optional transposes, through CLBlast's SGEMM; matmul_bias adds the bias
// and applies the activation in one more pass over y.
//
// CLBlast picks kernel parameters per device from its tuning database, and has no entry for PoCL's
// CPU device, whose generic defaults run its GEMM kernels at a few GFLOPS. On a CPU, OpenCL "local"
// memory is ordinary cache and every barrier makes PoCL spill each work-item's registers, so the
// parameters tune_clblast installs for PoCL use no local memory and large per-work-item register
// tiles of wide vectors. They were measured on PoCL 3.1 (2-core AVX-512 host) on the seed CNN's
// dense-layer products.
#include <clblast.h>

#include <string>
#include <unordered_map>

#include "kernels.hpp"

namespace lamina::opencl {
namespace {

std::string clblast_error(clblast::StatusCode status) {
  const int code = int(status);
  if (code > -1000) return cl_error_name(code);  // CLBlast passes OpenCL's codes through
  switch (status) {
    case clblast::StatusCode::kInvalidDimension:
      return "CLBlast: invalid dimension";
    case clblast::StatusCode::kInvalidLeadDimA:
    case clblast::StatusCode::kInvalidLeadDimB:
    case clblast::StatusCode::kInvalidLeadDimC:
      return "CLBlast: leading dimension too small";
    case clblast::StatusCode::kInsufficientMemoryA:
    case clblast::StatusCode::kInsufficientMemoryB:
    case clblast::StatusCode::kInsufficientMemoryC:
      return "CLBlast: a matrix extends past the end of its buffer";
    case clblast::StatusCode::kInvalidLocalMemUsage:
      return "CLBlast: the device has too little local memory for its kernel";
    case clblast::StatusCode::kDatabaseError:
      return "CLBlast: no kernel parameters for this device";
    case clblast::StatusCode::kNotImplemented:
      return "CLBlast: not implemented";
    default:
      return "CLBlast status " + std::to_string(code);
  }
}

}  // namespace

void tune_clblast(const Backend& backend) {
  if (!(backend.is_pocl && backend.is_cpu)) return;
  using Params = std::unordered_map<std::string, size_t>;
  // The indirect kernel (after CLBlast pads and transposes the operands into tiles): 32x64 tiles,
  // 16x8 per work-item, no local memory, hence no barriers.
  const Params indirect = {{"MWG", 32},  {"NWG", 64}, {"KWG", 16},  {"MDIMC", 2}, {"NDIMC", 8}, {"MDIMA", 2},
                           {"NDIMB", 8}, {"KWI", 1},  {"VWM", 16},  {"VWN", 8},   {"STRM", 0},  {"STRN", 0},
                           {"SA", 0},    {"SB", 0},   {"GEMMK", 0}, {"KREG", 1}};
  // The direct kernel always stages tiles through local memory, which PoCL runs slowly; it serves
  // only products too small to repay the indirect kernel's copies (below 64³ multiply-adds).
  const Params direct = {{"WGD", 16}, {"MDIMCD", 2}, {"NDIMCD", 2}, {"MDIMAD", 2}, {"NDIMBD", 2},
                         {"KWID", 1}, {"VWMD", 8},   {"VWND", 8},   {"PADA", 0},   {"PADB", 0}};
  const Params routine = {{"XGEMM_MIN_INDIRECT_SIZE", 64}};
  // Failure only means CLBlast keeps its defaults: slower, still correct.
  for (auto& [kernel, params] : {std::pair{"Xgemm", &indirect}, std::pair{"XgemmDirect", &direct},
                                 std::pair{"GemmRoutine", &routine}}) {
    auto status = clblast::OverrideParameters(backend.device, kernel, clblast::Precision::kSingle, *params);
    if (status != clblast::StatusCode::kSuccess && sdk::host_table())
      sdk::host().log(2, ("opencl: CLBlast refused the " + std::string(kernel) +
                          " parameters for PoCL; its defaults are slower: " + clblast_error(status))
                             .c_str());
  }
}

namespace {

// matmul_bias's epilogue, in place: y (rows, cols) = activation(y + bias[col]), the activation a
// code (0 linear, 1 relu, 2 sigmoid, 3 tanh; the same for every work-item). Work-items (cols/VW,
// rows), built with VW = 8, the last vector of a row possibly partial.
const std::string kBiasSource = std::string(kVectorPreamble) + R"CL(
__kernel void bias_activation(__global float* y, int y_off, __global const float* bias, int bias_off, int rows,
                              int cols, int activation) {
  const int c0 = get_global_id(0) * VW, r = get_global_id(1);
  if (c0 >= cols || r >= rows) return;
  const int count = min(cols - c0, VW);
  __global float* at = y + y_off + r * cols + c0;
  vec_t z = LOAD_SOME(at, count) + LOAD_SOME(bias + bias_off + c0, count);
  if (activation == 1) z = z > (vec_t)(0.0f) ? z : (vec_t)(0.0f);
  if (activation == 2) z = (vec_t)(1.0f) / ((vec_t)(1.0f) + exp(-z));
  if (activation == 3) z = tanh(z);
  STORE_SOME(z, at, count);
}
)CL";

// y = op(a)·op(b), and with a bias (N), y = activation(y + bias).
void matmul_forward(const sdk::KernelArgs& args, const lamina_view* bias, sdk::Activation activation) {
  const lamina_view& av = args.inputs[0];
  const lamina_view& bv = args.inputs[1];
  const lamina_view& yv = args.outputs[0];
  const MatmulGeometry g = matmul_geometry(args.attrs, av, bv, yv);
  if (bias) expect_vector(*bias, "bias", g.n, "column of y");
  const int64_t M = g.m, K = g.k, N = g.n;
  const bool transpose_a = g.transpose_a, transpose_b = g.transpose_b;

  Backend& b = backend_of(args);
  const DeviceTensor a = device_tensor(av), bt = device_tensor(bv), y = device_tensor(yv);
  clblast::StatusCode status = clblast::StatusCode::kSuccess;
  if (K == 0) {  // an empty sum: CLBlast refuses K = 0, and y must still be written
    const cl_float zero = 0.0f;
    check_cl(clEnqueueFillBuffer(b.queue, y.buffer, &zero, sizeof(zero), yv.offset,
                                 size_t(M * N) * sizeof(float), 0, nullptr, nullptr),
             "clEnqueueFillBuffer");
  } else {
    // Row-major storage: the leading dimension is the stored matrix's row length. CLBlast's own
    // temporary buffers (padded copies of the operands) would be allocated and freed on every call;
    // scratch memory is kept.
    const auto layout = clblast::Layout::kRowMajor;
    const auto op_a = transpose_a ? clblast::Transpose::kYes : clblast::Transpose::kNo;
    const auto op_b = transpose_b ? clblast::Transpose::kYes : clblast::Transpose::kNo;
    size_t temp_bytes = 0;
    status = clblast::GemmTempBufferSize<float>(
        layout, op_a, op_b, size_t(M), size_t(N), size_t(K), size_t(a.offset), size_t(av.shape[1]),
        size_t(bt.offset), size_t(bv.shape[1]), size_t(y.offset), size_t(N), &b.queue, temp_bytes);
    if (status == clblast::StatusCode::kSuccess)
      status = clblast::Gemm<float>(layout, op_a, op_b, size_t(M), size_t(N), size_t(K), 1.0f, a.buffer,
                                    size_t(a.offset), size_t(av.shape[1]), bt.buffer, size_t(bt.offset),
                                    size_t(bv.shape[1]), 0.0f, y.buffer, size_t(y.offset), size_t(N),
                                    &b.queue, nullptr, temp_bytes ? b.scratch(2, temp_bytes) : nullptr);
  }
  if (status != clblast::StatusCode::kSuccess)
    throw sdk::Error("CLBlast's SGEMM (" + std::to_string(M) + "x" + std::to_string(N) + "x" +
                     std::to_string(K) + ") failed: " + clblast_error(status));
  if (!bias) return;
  constexpr int vw = 8;
  cl_kernel k = b.kernel("matmul_bias", kBiasSource.c_str(), defines({{"VW", vw}}), "bias_activation");
  set_args(k, y, device_tensor(*bias), as_int(M), as_int(N), cl_int(activation_code(activation)));
  const size_t vectors = size_t((N + vw - 1) / vw);
  const auto [l0, l1] = groups_of(vectors, size_t(M), 64);
  launch(b, k, {vectors, size_t(M)}, {l0, l1});
}

}  // namespace

OPENCL_KERNEL(matmul) {
  // a is (M,K), or (K,M) with transpose_a; b is (K,N), or (N,K) with transpose_b; y is (M,N)
  expect_arity(args, {"a", "b"}, {"y"});
  matmul_forward(args, nullptr, sdk::Activation::linear);
}

OPENCL_KERNEL(matmul_bias) {
  // as matmul, and bias is (N); y = activation(op(a)·op(b) + bias), the bias added to every row
  expect_arity(args, {"a", "b", "bias"}, {"y"});
  matmul_forward(args, &args.inputs[2], sdk::read_activation(args.attrs));
}

}  // namespace lamina::opencl
