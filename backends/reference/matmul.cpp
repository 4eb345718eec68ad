// 2-D matrix product with optional transposes.
#include "kernels.hpp"

#include <algorithm>
#include <vector>

namespace lamina::reference {

namespace {

// y = activation(op(a)·op(b) + bias), bias optional (null).
void matmul_forward(const sdk::KernelArgs& args, const float* bias, sdk::Activation act) {
  // a is (M,K), or (K,M) with transpose_a; b is (K,N), or (N,K) with transpose_b; y is (M,N)
  const MatmulGeometry g = matmul_geometry(args.attrs, args.inputs[0], args.inputs[1], args.outputs[0]);
  if (bias) expect_vector(args.inputs[2], "bias", g.n, "column of y");
  const int64_t M = g.m, K = g.k, N = g.n;
  const bool transpose_a = g.transpose_a, transpose_b = g.transpose_b;

  // Element strides of op(a) along (i, k) and of op(b) along (k, j).
  const int64_t a_i = transpose_a ? 1 : K, a_k = transpose_a ? M : 1;
  const int64_t b_k = transpose_b ? 1 : N, b_j = transpose_b ? K : 1;
  const float* a = input(args, 0);
  const float* b = input(args, 1);
  float* y = output(args, 0);
  auto finish = [&](int64_t j, double sum) { return float(activate(act, sum + (bias ? double(bias[j]) : 0.0))); };

  if (!transpose_b) {
    // b's rows are contiguous along j: accumulate a(i,k) · b(k,:) into a whole row of y at a time.
    std::vector<double> row(static_cast<size_t>(N));
    for (int64_t i = 0; i < M; ++i) {
      std::fill(row.begin(), row.end(), 0.0);
      for (int64_t k = 0; k < K; ++k) {
        const double a_ik = a[i * a_i + k * a_k];
        const float* b_row = b + k * b_k;
        for (int64_t j = 0; j < N; ++j) row[size_t(j)] += a_ik * double(b_row[j]);
      }
      for (int64_t j = 0; j < N; ++j) y[i * N + j] = finish(j, row[size_t(j)]);
    }
  } else {
    // b is stored (N,K): each y(i,j) is a dot product along b's contiguous rows.
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        const float* b_row = b + j * b_j;
        double sum = 0.0;
        for (int64_t k = 0; k < K; ++k) sum += double(a[i * a_i + k * a_k]) * double(b_row[k]);
        y[i * N + j] = finish(j, sum);
      }
    }
  }
}

}  // namespace

REFERENCE_KERNEL(matmul) {
  expect_arity(args, {"a", "b"}, {"y"});
  matmul_forward(args, nullptr, sdk::Activation::linear);
}

REFERENCE_KERNEL(matmul_bias) {
  // y = activation(op(a)·op(b) + bias), bias (N) added to every row
  expect_arity(args, {"a", "b", "bias"}, {"y"});
  matmul_forward(args, input(args, 2), sdk::read_activation(args.attrs));
}

}  // namespace lamina::reference
