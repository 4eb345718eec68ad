// Data-parallel training (distributed.hpp), run by ctest under `mpiexec -n 2`: two ranks at batch b
// must train exactly as one process at batch 2b — same weights within float tolerance — because the
// gradients of the two halves of each global batch are averaged before every optimizer step.
#include "support.hpp"

#include <lamina/distributed.hpp>

using namespace lamina;
using namespace lamina::layers;

namespace {

// 250 real MNIST test digits (not a multiple of the global batch, so the last batch is split
// unevenly too), pixels / 255, one-hot labels.
std::pair<Tensor, Tensor> digits() {
  const std::string dir = std::string(LAMINA_SOURCE_DIR) + "/tests/data/mnist/";
  Tensor x = read_idx(dir + "t10k-images-idx3-ubyte.gz").slice(0, 250);
  Tensor y = read_idx(dir + "t10k-labels-idx1-ubyte.gz").slice(0, 250);
  std::vector<float> pixels = x.to_vector();
  for (float& v : pixels) v /= 255.0f;
  return {Tensor::from_vector(pixels, {250, 28, 28, 1}), to_categorical(y, 10)};
}

void two_ranks_train_as_one_big_batch(const std::string& backend) {
  if (distributed::size() != 2) test::skip("needs a job of 2 ranks: mpiexec -n 2 " + std::string("lamina_distributed_tests"));
  test::use_backend_or_skip(backend);
  auto [x, y] = digits();

  set_random_seed(7);
  Sequential ranks = test::small_digit_cnn();
  History h2 = ranks.fit(x, y, {.epochs = 2, .batch_size = 16, .verbose = 0});  // 16 per rank, 32 in all

  distributed::LocalScope alone;
  set_random_seed(7);
  Sequential one = test::small_digit_cnn();
  History h1 = one.fit(x, y, {.epochs = 2, .batch_size = 32, .verbose = 0});

  std::vector<float> w2 = test::flat_weights_of(ranks), w1 = test::flat_weights_of(one);
  REQUIRE(w2.size() == w1.size());
  CHECK(test::max_abs_diff(w2, w1) < 2e-5f);
  CHECK(w2 != test::flat_weights_of(test::small_digit_cnn()));  // it did train
  for (size_t e = 0; e < 2; ++e) {
    CHECK(h2.history["loss"][e] == doctest::Approx(h1.history["loss"][e]).epsilon(1e-5));
    CHECK(h2.history["accuracy"][e] == doctest::Approx(h1.history["accuracy"][e]).epsilon(1e-9));
  }
  CHECK(ranks.optimizer_state().iterations == one.optimizer_state().iterations);  // ceil(250 / 32) per epoch

  // Both ranks hold the same weights: rank 0's, broadcast, equal this rank's.
  std::vector<float> from_rank0 = w2;
  {
    distributed::broadcast(from_rank0.data(), from_rank0.size(), 0);
  }
  CHECK(from_rank0 == w2);
}

}  // namespace

TEST_CASE("2 ranks at batch b train as 1 process at batch 2b on reference") {
  two_ranks_train_as_one_big_batch("reference");
}

TEST_CASE("2 ranks at batch b train as 1 process at batch 2b on onednn") {
  two_ranks_train_as_one_big_batch("onednn");
}

TEST_CASE("a functional residual network trains in a job of 2 ranks as 1 process at batch 2b") {
  if (distributed::size() != 2) test::skip("needs a job of 2 ranks: mpiexec -n 2 lamina_distributed_tests");
  set_backend("reference");
  auto [x, y] = digits();
  set_random_seed(11);
  Model ranks = test::small_residual_cnn();
  ranks.fit(x, y, {.epochs = 1, .batch_size = 16, .verbose = 0});
  distributed::LocalScope alone;
  set_random_seed(11);
  Model one = test::small_residual_cnn();
  one.fit(x, y, {.epochs = 1, .batch_size = 32, .verbose = 0});
  CHECK(test::max_abs_diff(test::flat_weights_of(ranks), test::flat_weights_of(one)) < 2e-5f);
}

TEST_CASE("BatchNormalization's moving statistics are the same on every rank after data-parallel training") {
  if (distributed::size() != 2) test::skip("needs a job of 2 ranks: mpiexec -n 2 lamina_distributed_tests");
  set_backend("reference");
  auto [x, y] = digits();
  set_random_seed(12);
  Model model = test::small_residual_cnn(true);
  model.fit(x, y, {.epochs = 1, .batch_size = 16, .verbose = 0});
  const Layer& bn = model.layer(3);
  REQUIRE(bn.class_name() == "BatchNormalization");
  std::vector<float> mine;
  for (size_t k = 2; k < 4; ++k)  // moving_mean, moving_variance
    for (float v : bn.get_weights()[k].to_vector()) mine.push_back(v);
  CHECK(mine != std::vector<float>(mine.size(), 0.0f));
  std::vector<float> from_rank0 = mine;
  distributed::broadcast(from_rank0.data(), from_rank0.size(), 0);
  CHECK(from_rank0 == mine);
}

TEST_CASE("evaluate in a job of 2 ranks reduces each rank's share to the whole data set's metrics") {
  if (distributed::size() != 2) test::skip("needs a job of 2 ranks: mpiexec -n 2 lamina_distributed_tests");
  set_backend("reference");
  auto [x, y] = digits();
  set_random_seed(3);
  Sequential model = test::small_digit_cnn();
  auto shared = model.evaluate(x, y, 32);
  distributed::LocalScope alone;
  auto whole = model.evaluate(x, y, 32);
  CHECK(shared.at("loss") == doctest::Approx(whole.at("loss")).epsilon(1e-5));
  CHECK(shared.at("accuracy") == whole.at("accuracy"));
  CHECK(distributed::description().find("rank " + std::to_string(distributed::rank()) + " of 2") != std::string::npos);
}
