// Tensors: construction, views, host access, arithmetic and printing.
#include "support.hpp"

using namespace lamina;

TEST_CASE("a tensor made from values keeps its shape and values") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.size() == 6);
  CHECK(t.dim(-1) == 3);
  CHECK(t.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(test::error_of([] { Tensor::from_vector({1, 2, 3}, {2, 2}); }).find("do not fill shape (2, 2)") !=
        std::string::npos);
}

TEST_CASE("reshape and slice are views on the same memory") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor r = t.reshape({-1});
  CHECK(r.shape() == Shape{6});
  Tensor rows = t.slice(1, 3);
  CHECK(rows.shape() == Shape{2, 2});
  CHECK(rows.to_vector() == std::vector<float>{3, 4, 5, 6});
  t.host_data()[2] = 30;
  CHECK(rows.to_vector()[0] == 30);
  CHECK(test::error_of([&] { t.reshape({4, 2}); }).find("cannot reshape (3, 2)") != std::string::npos);
  CHECK(test::error_of([&] { t.slice(2, 5); }).find("out of range") != std::string::npos);
}

TEST_CASE("arithmetic operators run on the active backend and broadcast like NumPy") {
  set_backend("reference");
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector({10, 20}, {2});
  CHECK((a + b).to_vector() == std::vector<float>{11, 22, 13, 24});
  CHECK((a * 2.0f).to_vector() == std::vector<float>{2, 4, 6, 8});
  CHECK((a / 2.0f).to_vector() == std::vector<float>{0.5f, 1, 1.5f, 2});
  CHECK((a - 1.0f).to_vector() == std::vector<float>{0, 1, 2, 3});
  CHECK((a > 2.5f).to_vector() == std::vector<float>{0, 0, 1, 1});
  CHECK(test::error_of([&] { a + Tensor::zeros({3}); }).find("cannot be broadcast") != std::string::npos);
}

TEST_CASE("tensors print like NumPy arrays") {
  std::ostringstream s;
  s << Tensor::from_vector({0.5f, 1, -2, 3}, {2, 2});
  CHECK(s.str() == "array([[0.5, 1],\n       [-2, 3]], shape=(2, 2))");
}

TEST_CASE("to_categorical one-hot encodes class indices") {
  Tensor y = Tensor::from_vector({2, 0, 1}, {3});
  CHECK(to_categorical(y).to_vector() == std::vector<float>{0, 0, 1, 1, 0, 0, 0, 1, 0});
  CHECK(to_categorical(y, 4).shape() == Shape{3, 4});
  CHECK(test::error_of([&] { to_categorical(y, 2); }).find("not a class index in [0, 2)") != std::string::npos);
}
