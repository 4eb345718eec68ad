// matmul: y(M,N) = op(a)(M,K) · op(b)(K,N), op = transpose when the attribute says so.
//
// Transposes are never materialised: a transposed operand is the same buffer described with
// swapped strides, which oneDNN's matmul reads directly.
#include <algorithm>
#include <memory>

#include "kernels.hpp"

namespace lamina::onednn {
namespace {

using dnnl::memory;

struct MatmulEntry {
  dnnl::matmul primitive;
  memory a, b, y;
};

// Logical (rows, cols) over a row-major buffer that holds it, or its transpose.
memory::desc operand_desc(int64_t rows, int64_t cols, bool transposed) {
  memory::dims strides = transposed ? memory::dims{1, rows} : memory::dims{cols, 1};
  return memory::desc({rows, cols}, memory::data_type::f32, strides);
}

LAMINA_KERNEL(matmul_kernel) {
  expect_views(args, "matmul", 2, 1);
  const lamina_view& va = args.inputs[0];
  const lamina_view& vb = args.inputs[1];
  const lamina_view& vy = args.outputs[0];
  expect_rank("matmul", "a", va, 2);
  expect_rank("matmul", "b", vb, 2);
  expect_rank("matmul", "y", vy, 2);
  const bool ta = args.attrs.get_int("transpose_a", 0) != 0;
  const bool tb = args.attrs.get_int("transpose_b", 0) != 0;
  const int64_t M = ta ? va.shape[1] : va.shape[0];
  const int64_t K = ta ? va.shape[0] : va.shape[1];
  const int64_t Kb = tb ? vb.shape[1] : vb.shape[0];
  const int64_t N = tb ? vb.shape[0] : vb.shape[1];
  if (K != Kb || vy.shape[0] != M || vy.shape[1] != N)
    throw sdk::Error("matmul on onednn: a " + shape_string(va) + (ta ? "^T" : "") + " * b " +
                     shape_string(vb) + (tb ? "^T" : "") + " does not give y " + shape_string(vy));
  if (M == 0 || N == 0) return;
  float* y = out_data(vy);
  if (K == 0) {
    std::fill(y, y + M * N, 0.f);
    return;
  }
  Backend& be = backend_of(args);
  std::lock_guard lock(be.mutex);
  with_dnnl(args, "matmul", [&] {
    CacheKey key("matmul");
    key.add(M).add(N).add(K).add(int64_t(ta)).add(int64_t(tb));
    auto entry = be.cache.get<MatmulEntry>(key, [&] {
      memory::desc md_a = operand_desc(M, K, ta), md_b = operand_desc(K, N, tb),
                   md_y = operand_desc(M, N, false);
      dnnl::matmul::desc desc(md_a, md_b, md_y);
      dnnl::matmul::primitive_desc pd(desc, be.engine);
      auto e = std::make_shared<MatmulEntry>();
      e->primitive = dnnl::matmul(pd);
      e->a = unbound_memory(md_a, be.engine);
      e->b = unbound_memory(md_b, be.engine);
      e->y = unbound_memory(md_y, be.engine);
      return e;
    });
    bind(entry->a, va.data);
    bind(entry->b, vb.data);
    bind(entry->y, y);
    entry->primitive.execute(
        be.stream, {{DNNL_ARG_SRC, entry->a}, {DNNL_ARG_WEIGHTS, entry->b}, {DNNL_ARG_DST, entry->y}});
    be.stream.wait();
  });
}

}  // namespace

void add_matmul_kernels(std::vector<lamina_kernel>& kernels) {
  kernels.push_back({"matmul", matmul_kernel});
}

}  // namespace lamina::onednn
