// Reverse-mode autograd: composition, accumulation, and what is not recorded.
#include "support.hpp"

using namespace lamina;

TEST_CASE("gradients flow through a composition and accumulate over shared inputs") {
  set_backend("reference");
  Tensor x = Tensor::from_vector({1, 2, 3}, {3}).set_requires_grad(true);
  // L = Σ (x·x + 3x) → dL/dx = 2x + 3
  Tensor loss = ops::sum(ops::add(ops::mul(x, x), ops::scale(x, 3.0)));
  auto g = gradients(loss, {x});
  CHECK(g[0].to_vector() == std::vector<float>{5, 7, 9});
}

TEST_CASE("no gradient is recorded under NoGradGuard or for tensors that do not require it") {
  set_backend("reference");
  Tensor w = Tensor::from_vector({1, 2}, {2}).set_requires_grad(true);
  Tensor c = Tensor::from_vector({3, 4}, {2});
  {
    NoGradGuard guard;
    auto g = gradients(ops::sum(ops::mul(w, c)), {w});
    CHECK_FALSE(g[0].defined());
  }
  auto g = gradients(ops::sum(ops::mul(w, c)), {w, c});
  CHECK(g[0].to_vector() == std::vector<float>{3, 4});
  CHECK_FALSE(g[1].defined());
}

TEST_CASE("the loss must be a single value") {
  set_backend("reference");
  Tensor w = Tensor::from_vector({1, 2}, {2}).set_requires_grad(true);
  CHECK(test::error_of([&] { gradients(ops::mul(w, w), {w}); }).find("single value") != std::string::npos);
}
