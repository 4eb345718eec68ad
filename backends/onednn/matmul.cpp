// matmul: y(M,N) = op(a)(M,K) · op(b)(K,N), op = transpose when the attribute says so; matmul_bias
// adds a bias row and applies an activation.
//
// Transposes are never materialised: a transposed operand is the same buffer described with
// swapped strides, which oneDNN's matmul reads directly.
//
// Products under kSmallMacs multiply-adds are loops here instead: a oneDNN matmul call costs about a
// microsecond before its first multiplication (16x2 · 2x100 took 1.06 µs through oneDNN on the dev
// machine, one core), more than such a product takes, and the seed MLP's narrow layers and their
// gradients are all this small.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <unordered_map>

#include "kernels.hpp"
#include "loops.hpp"

namespace lamina::onednn {
namespace {

using dnnl::memory;

struct MatmulEntry {
  dnnl::matmul primitive;
  memory a, b, y, bias;
  Scratchpad scratchpad;
  std::unordered_map<int, memory> args;  // built once: the memories are rebound on every call
};

// Logical (rows, cols) over a row-major buffer that holds it, or its transpose.
memory::desc operand_desc(int64_t rows, int64_t cols, bool transposed) {
  memory::dims strides = transposed ? memory::dims{1, rows} : memory::dims{cols, 1};
  return memory::desc({rows, cols}, memory::data_type::f32, strides);
}

constexpr int64_t kSmallMacs = 1 << 14;

// y (M,N) = op(a)·op(b) for small products, with op(a)(i,k) = a[i·a_i + k·a_k] and op(b)(k,j) =
// b[k·b_k + j·b_j]. Each loop order keeps its innermost loop on contiguous memory so that it
// vectorises: rows of y from rows of b, dot products along k, or columns of y from columns of a.
LAMINA_VECTOR_CLONES
void small_matmul(const float* __restrict a, const float* __restrict b, float* __restrict y, int64_t M,
                  int64_t N, int64_t K, int64_t a_i, int64_t a_k, int64_t b_k, int64_t b_j) {
  if (b_j == 1 && N >= 8) {  // y(i,:) = Σ_k a(i,k) · b(k,:)
    for (int64_t i = 0; i < M; ++i) {
      float* yr = y + i * N;
      std::fill(yr, yr + N, 0.f);
      for (int64_t k = 0; k < K; ++k) {
        const float aik = a[i * a_i + k * a_k];
        const float* br = b + k * b_k;
        for (int64_t j = 0; j < N; ++j) yr[j] += aik * br[j];
      }
    }
  } else if (a_k == 1 && b_k == 1) {  // y(i,j) = a(i,:) · b(:,j), both contiguous along k
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        const float* ar = a + i * a_i;
        const float* bc = b + j * b_j;
        float sum = 0.f;
#pragma omp simd reduction(+ : sum)
        for (int64_t k = 0; k < K; ++k) sum += ar[k] * bc[k];
        y[i * N + j] = sum;
      }
  } else if (a_i == 1 && M <= 256) {  // y(:,j) = Σ_k a(:,k) · b(k,j), a's columns contiguous
    float column[256];
    for (int64_t j = 0; j < N; ++j) {
      std::fill(column, column + M, 0.f);
      for (int64_t k = 0; k < K; ++k) {
        const float bkj = b[k * b_k + j * b_j];
        const float* ac = a + k * a_k;
        for (int64_t i = 0; i < M; ++i) column[i] += ac[i] * bkj;
      }
      for (int64_t i = 0; i < M; ++i) y[i * N + j] = column[i];
    }
  } else {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float sum = 0.f;
        for (int64_t k = 0; k < K; ++k) sum += a[i * a_i + k * a_k] * b[k * b_k + j * b_j];
        y[i * N + j] = sum;
      }
  }
}

// y = activation(y + bias) over the rows of y (M,N); bias may be null.
LAMINA_VECTOR_CLONES
void add_bias_activate(float* __restrict y, const float* __restrict bias, int64_t M, int64_t N,
                       sdk::Activation act) {
  for (int64_t i = 0; i < M; ++i) {
    float* yr = y + i * N;
    if (bias)
      for (int64_t j = 0; j < N; ++j) yr[j] += bias[j];
    switch (act) {
      case sdk::Activation::relu:
        for (int64_t j = 0; j < N; ++j) yr[j] = std::max(yr[j], 0.f);
        break;
      case sdk::Activation::sigmoid:
        for (int64_t j = 0; j < N; ++j) yr[j] = vector_sigmoid(yr[j]);
        break;
      case sdk::Activation::tanh:
        for (int64_t j = 0; j < N; ++j) yr[j] = vector_tanh(yr[j]);
        break;
      case sdk::Activation::linear:
        break;
    }
  }
}

// matmul (a, b → y) and matmul_bias (a, b, bias → y = activation(op(a)·op(b) + bias)), the bias
// and activation applied by oneDNN as the result is written.
void matmul_forward(const sdk::KernelArgs& args, const char* op, bool with_bias) {
  expect_views(args, op, with_bias ? 3 : 2, 1);
  const lamina_view& va = args.inputs[0];
  const lamina_view& vb = args.inputs[1];
  const lamina_view& vy = args.outputs[0];
  expect_rank(op, "a", va, 2);
  expect_rank(op, "b", vb, 2);
  expect_rank(op, "y", vy, 2);
  const bool ta = args.attrs.get_int("transpose_a", 0) != 0;
  const bool tb = args.attrs.get_int("transpose_b", 0) != 0;
  const int64_t M = ta ? va.shape[1] : va.shape[0];
  const int64_t K = ta ? va.shape[0] : va.shape[1];
  const int64_t Kb = tb ? vb.shape[1] : vb.shape[0];
  const int64_t N = tb ? vb.shape[0] : vb.shape[1];
  if (K != Kb || vy.shape[0] != M || vy.shape[1] != N)
    throw sdk::Error(std::string(op) + " on onednn: a " + shape_string(va) + (ta ? "^T" : "") + " * b " +
                     shape_string(vb) + (tb ? "^T" : "") + " does not give y " + shape_string(vy));
  sdk::Activation act = with_bias ? sdk::read_activation(args.attrs) : sdk::Activation::linear;
  if (with_bias && (args.inputs[2].ndim != 1 || args.inputs[2].shape[0] != N))
    throw sdk::Error(std::string(op) + " on onednn: the bias " + shape_string(args.inputs[2]) +
                     " must hold one value per column of y (" + std::to_string(N) + ")");
  if (M == 0 || N == 0) return;
  float* y = out_data(vy);
  if (M * N * K < kSmallMacs) {  // K = 0 included: the result is the activated bias, or zeros
    small_matmul(in_data(va), in_data(vb), y, M, N, K, ta ? 1 : K, ta ? M : 1, tb ? 1 : N, tb ? K : 1);
    add_bias_activate(y, with_bias ? in_data(args.inputs[2]) : nullptr, M, N, act);
    return;
  }
  Backend& be = backend_of(args);
  std::lock_guard lock(be.mutex);
  SerialScope serial(M * N * K < kParallelMacs);
  with_dnnl(args, op, [&] {
    CacheKey key(op);
    key.add(M).add(N).add(K).add(int64_t(ta)).add(int64_t(tb)).add(int64_t(act));
    auto entry = be.cache.get<MatmulEntry>(key, [&] {
      memory::desc md_a = operand_desc(M, K, ta), md_b = operand_desc(K, N, tb),
                   md_y = operand_desc(M, N, false);
      auto e = std::make_shared<MatmulEntry>();
      if (with_bias) {
        memory::desc md_bias = operand_desc(1, N, false);  // one row, broadcast over M
        dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md_a, md_b, md_bias, md_y),
                                        user_scratchpad(activation_attr(act)), be.engine);
        e->primitive = dnnl::matmul(pd);
        e->scratchpad = Scratchpad(pd.scratchpad_desc(), be.engine);
        e->bias = unbound_memory(md_bias, be.engine);
        e->args.emplace(DNNL_ARG_BIAS, e->bias);
      } else {
        dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md_a, md_b, md_y), user_scratchpad(), be.engine);
        e->primitive = dnnl::matmul(pd);
        e->scratchpad = Scratchpad(pd.scratchpad_desc(), be.engine);
      }
      e->a = unbound_memory(md_a, be.engine);
      e->b = unbound_memory(md_b, be.engine);
      e->y = unbound_memory(md_y, be.engine);
      e->args.emplace(DNNL_ARG_SRC, e->a);
      e->args.emplace(DNNL_ARG_WEIGHTS, e->b);
      e->args.emplace(DNNL_ARG_DST, e->y);
      return e;
    });
    bind(entry->a, va.data);
    bind(entry->b, vb.data);
    bind(entry->y, y);
    if (with_bias) bind(entry->bias, args.inputs[2].data);
    entry->scratchpad.add_to(be, entry->args);
    entry->primitive.execute(be.stream, entry->args);
    be.stream.wait();
  });
}

LAMINA_KERNEL(matmul_kernel) {
  matmul_forward(args, "matmul", false);
}
LAMINA_KERNEL(matmul_bias_kernel) {
  matmul_forward(args, "matmul_bias", true);
}

}  // namespace

void add_matmul_kernels(std::vector<lamina_kernel>& kernels) {
  kernels.push_back({"matmul", matmul_kernel});
  kernels.push_back({"matmul_bias", matmul_bias_kernel});
}

}  // namespace lamina::onednn
