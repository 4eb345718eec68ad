// matmul on cuBLAS: y(M,N) = op(a)·op(b) for row-major matrices, computed as the column-major
// product yᵀ = op(b)ᵀ·op(a)ᵀ (see plan_gemm), so no matrix is ever transposed in memory.
// matmul_bias adds the bias and applies the activation in one pass over y afterwards.
#include "kernels.hpp"

namespace lamina::cudnn {
namespace {

// y = op(a)·op(b) for inputs 0 and 1; returns the plan.
GemmPlan gemm(const sdk::KernelArgs& args, Backend& be) {
  // a (M,K) or (K,M) with transpose_a; b (K,N) or (N,K) with transpose_b; y (M,N)
  const bool transpose_a = args.attrs.get_int("transpose_a", 0) != 0;
  const bool transpose_b = args.attrs.get_int("transpose_b", 0) != 0;
  const GemmPlan p = plan_gemm(args.inputs[0], args.inputs[1], args.outputs[0], transpose_a, transpose_b);
  float* y = dev(args.outputs[0]);
  if (p.k == 0) {  // an empty inner product is 0
    check_cuda(cudaMemsetAsync(y, 0, size_t(p.m) * size_t(p.n) * sizeof(float), be.stream),
               "zeroing on the device");
    return p;
  }
  const float one = 1.0f, zero = 0.0f;
  check_cublas(cublasSgemm(be.cublas, p.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                           p.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, p.n, p.m, p.k, &one,
                           dev(args.inputs[1]), p.ldb, dev(args.inputs[0]), p.lda, &zero, y, p.ldy),
               "cublasSgemm");
  return p;
}

CUDNN_KERNEL(op_matmul, "matmul") {
  expect_views(args, 2, 1);
  gemm(args, be);
}

CUDNN_KERNEL(op_matmul_bias, "matmul_bias") {
  // y (M,N) = activation(op(a)·op(b) + bias), bias (N) added to every row
  expect_views(args, 3, 1);
  const sdk::Activation activation = sdk::read_activation(args.attrs);
  const lamina_view& bias = args.inputs[2];
  const lamina_view& y = args.outputs[0];
  expect_vector(bias, "bias", matmul_geometry(args.attrs, args.inputs[0], args.inputs[1], y).n,
                "column of y");
  const GemmPlan p = gemm(args, be);
  add_bias_activation(be, dev(y), dev(bias), p.m, p.n, activation);
}

}  // namespace
}  // namespace lamina::cudnn
