// 2-D matrix product with optional transposes.
#include "kernels.hpp"

#include <algorithm>
#include <vector>

namespace lamina::reference {

REFERENCE_KERNEL(matmul) {
  // a is (M,K), or (K,M) with transpose_a; b is (K,N), or (N,K) with transpose_b; y is (M,N)
  expect_arity(args, {"a", "b"}, {"y"});
  const lamina_view& av = args.inputs[0];
  const lamina_view& bv = args.inputs[1];
  const lamina_view& yv = args.outputs[0];
  const bool transpose_a = args.attrs.get_int("transpose_a", 0) != 0;
  const bool transpose_b = args.attrs.get_int("transpose_b", 0) != 0;
  expect_rank(av, "a", 2, transpose_a ? "(K,M)" : "(M,K)");
  expect_rank(bv, "b", 2, transpose_b ? "(N,K)" : "(K,N)");
  expect_rank(yv, "y", 2, "(M,N)");
  const int64_t M = transpose_a ? av.shape[1] : av.shape[0];
  const int64_t K = transpose_a ? av.shape[0] : av.shape[1];
  const int64_t N = transpose_b ? bv.shape[0] : bv.shape[1];
  const int64_t K_b = transpose_b ? bv.shape[1] : bv.shape[0];
  if (K != K_b || yv.shape[0] != M || yv.shape[1] != N)
    throw sdk::Error("a " + shape_string(av) + (transpose_a ? " (transposed)" : "") + " times b " +
                     shape_string(bv) + (transpose_b ? " (transposed)" : "") + " does not give y " +
                     shape_string(yv));

  // Element strides of op(a) along (i, k) and of op(b) along (k, j).
  const int64_t a_i = transpose_a ? 1 : K, a_k = transpose_a ? M : 1;
  const int64_t b_k = transpose_b ? 1 : N, b_j = transpose_b ? K : 1;
  const float* a = input(args, 0);
  const float* b = input(args, 1);
  float* y = output(args, 0);

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
      for (int64_t j = 0; j < N; ++j) y[i * N + j] = float(row[size_t(j)]);
    }
  } else {
    // b is stored (N,K): each y(i,j) is a dot product along b's contiguous rows.
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        const float* b_row = b + j * b_j;
        double sum = 0.0;
        for (int64_t k = 0; k < K; ++k) sum += double(a[i * a_i + k * a_k]) * double(b_row[k]);
        y[i * N + j] = float(sum);
      }
    }
  }
}

}  // namespace lamina::reference
