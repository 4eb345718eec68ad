// The layout ops (concat, slice, slice_backward, pad, transpose) and reduce_sum's keepdims, by their
// values on small tensors whose answers are written out by hand, and their errors. The conformance
// table checks every backend against the reference; these cases check the reference itself.
#include "support.hpp"

#include "../core/src/dispatch.hpp"
#include "../core/src/host_table.hpp"
#include "../core/src/tensor_impl.hpp"

using namespace lamina;
using lamina::test::error_of;

namespace {

Tensor arange(const Shape& shape) {
  std::vector<float> v(size_t(shape_size(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  return Tensor::from_vector(v, shape);
}

}  // namespace

TEST_CASE("concat joins along an axis, negative axes counting from the end") {
  test::use_backend_or_skip("reference");
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2}), b = Tensor::from_vector({5, 6}, {2, 1});
  Tensor y = ops::concat({a, b}, -1);
  CHECK(y.shape() == Shape{2, 3});
  CHECK(y.to_vector() == std::vector<float>{1, 2, 5, 3, 4, 6});
  Tensor z = ops::concat({a, Tensor::from_vector({7, 8}, {1, 2}), a}, 0);
  CHECK(z.shape() == Shape{5, 2});
  CHECK(z.to_vector() == std::vector<float>{1, 2, 3, 4, 7, 8, 1, 2, 3, 4});
  CHECK(ops::concat({a}, 1).to_vector() == a.to_vector());
}

TEST_CASE("slice follows Python's x[begin:end:step]") {
  test::use_backend_or_skip("reference");
  Tensor x = arange({10});
  CHECK(ops::slice(x, {0}, {8}, {1}, {-3}).to_vector() == std::vector<float>{8, 5, 2});
  CHECK(ops::slice(x, {0}, {-3}, {ops::kSliceEnd}).to_vector() == std::vector<float>{7, 8, 9});
  CHECK(ops::slice(x, {0}, {-1}, {ops::kSliceEnd}, {-4}).to_vector() == std::vector<float>{9, 5, 1});
  CHECK(ops::slice(x, {0}, {2}, {100}, {3}).to_vector() == std::vector<float>{2, 5, 8});
  CHECK(ops::slice(x, {0}, {-100}, {2}).to_vector() == std::vector<float>{0, 1});
  CHECK(ops::slice(x, {0}, {5}, {2}).shape() == Shape{0});
  // axes not named are kept whole; axes may be negative
  Tensor m = arange({3, 4});
  Tensor s = ops::slice(m, {-1}, {1}, {3});
  CHECK(s.shape() == Shape{3, 2});
  CHECK(s.to_vector() == std::vector<float>{1, 2, 5, 6, 9, 10});
}

TEST_CASE("slice_backward puts dy into the slice's place in zeros") {
  test::use_backend_or_skip("reference");
  Attributes a;
  a.set("input_shape", {6}).set("axes", {0}).set("begin", {5}).set("end", {0}).set("step", {-2});
  Tensor dx = run_op("slice_backward", {Tensor::from_vector({1, 2, 3}, {3})}, a)[0];
  CHECK(dx.to_vector() == std::vector<float>{0, 3, 0, 2, 0, 1});
}

TEST_CASE("pad surrounds a tensor with a value on each side of each axis") {
  test::use_backend_or_skip("reference");
  Tensor y = ops::pad(Tensor::from_vector({1, 2, 3, 4}, {2, 2}), {1, 0}, {0, 2}, 9.0);
  CHECK(y.shape() == Shape{3, 4});
  CHECK(y.to_vector() == std::vector<float>{9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9});
}

TEST_CASE("transpose moves axis perm[k] to k; no perm reverses the axes") {
  test::use_backend_or_skip("reference");
  Tensor x = arange({2, 3});
  CHECK(ops::transpose(x).to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  Tensor y = ops::transpose(arange({2, 3, 4}), {2, 0, 1});
  CHECK(y.shape() == Shape{4, 2, 3});
  std::vector<float> v = y.to_vector();
  CHECK(v[size_t((1 * 2 + 1) * 3 + 2)] == float((1 * 3 + 2) * 4 + 1));  // y[1,1,2] = x[1,2,1]
}

TEST_CASE("reduce_sum keeps or drops the summed axes as asked, also through the plugin host table") {
  test::use_backend_or_skip("reference");
  Tensor x = arange({2, 3, 4});
  CHECK(ops::reduce_sum(x, {1}, true).shape() == Shape{2, 1, 4});
  Tensor dropped = ops::reduce_sum(x, {1, -1}, false);
  CHECK(dropped.shape() == Shape{2});
  CHECK(dropped.to_vector() == std::vector<float>{66, 210});

  // a plugin's call: keepdims = 0 in the attributes drops the axis (the SDK's default)
  const lamina_host* host = host_table();
  lamina_attr items[2] = {};
  items[0].name = "axes";
  items[0].type = LAMINA_ATTR_INTS;
  items[0].count = 1;
  items[0].ints[0] = 0;
  items[1].name = "keepdims";
  items[1].type = LAMINA_ATTR_INT;
  items[1].count = 1;
  items[1].ints[0] = 0;
  lamina_attrs attrs{2, items};
  lamina_tensor in = reinterpret_cast<lamina_tensor>(x.impl()), out = nullptr;
  lamina_error error{};
  REQUIRE(host->op("reduce_sum", &in, 1, &attrs, &out, 1, &error) == LAMINA_OK);
  int64_t dims[LAMINA_MAX_DIMS];
  CHECK(host->tensor_shape(out, dims) == 2);
  CHECK((dims[0] == 3 && dims[1] == 4));
  host->tensor_release(out);
}

TEST_CASE("a plugin makes a constant tensor from host values (ABI 1.2)") {
  test::use_backend_or_skip("reference");
  const lamina_host* host = host_table();
  REQUIRE(LAMINA_HOST_HAS(host, tensor_from_host));
  const int64_t shape[2] = {2, 2};
  const float values[4] = {1.5f, -2, 3, 0.25f};
  lamina_error error{};
  lamina_tensor t = host->tensor_from_host(shape, 2, values, &error);
  REQUIRE(t);
  Tensor held(reinterpret_cast<TensorImpl*>(t), false);
  CHECK(held.shape() == Shape{2, 2});
  CHECK(held.to_vector() == std::vector<float>{1.5f, -2, 3, 0.25f});
  const int64_t negative[1] = {-1};
  CHECK(host->tensor_from_host(negative, 1, values, &error) == nullptr);
  CHECK(std::string(error.message).find("negative dimension") != std::string::npos);
}

TEST_CASE("layout ops refuse shapes that do not fit, naming the op and the shapes") {
  test::use_backend_or_skip("reference");
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 3});
  std::string m = error_of([&] { ops::concat({a, b}, 1); });
  CHECK(m.find("op 'concat' on (2, 3), (3, 3)") != std::string::npos);
  CHECK(m.find("input 1 has shape (3, 3)") != std::string::npos);
  CHECK(error_of([&] {
          ops::concat({a, a}, 2);
        }).find("axis 2 is out of range for rank 2") != std::string::npos);
  CHECK(error_of([&] { ops::slice(a, {0}, {0}, {1}, {0}); }).find("step must not be 0") != std::string::npos);
  CHECK(error_of([&] { ops::transpose(a, {0, 0}); }).find("names axis 0 twice") != std::string::npos);
  CHECK(error_of([&] { ops::pad(a, {1}, {1}); }).find("one value per axis") != std::string::npos);
  CHECK(error_of([&] { ops::pad(a, {-1, 0}, {0, 0}); }).find("use slice to crop") != std::string::npos);
}

TEST_CASE("a plugin's op call with an attribute its op does not declare is an error listing the op's attributes") {
  test::use_backend_or_skip("reference");
  const lamina_host* host = host_table();
  lamina_attr item{};
  item.name = "keepdim";  // for keepdims
  item.type = LAMINA_ATTR_INT;
  item.count = 1;
  item.ints[0] = 1;
  lamina_attrs attrs{1, &item};
  Tensor x = Tensor::zeros({2, 3});
  lamina_tensor in = reinterpret_cast<lamina_tensor>(x.impl()), out = nullptr;
  lamina_error error{};
  CHECK(host->op("reduce_sum", &in, 1, &attrs, &out, 1, &error) == LAMINA_ERROR);
  CHECK(std::string(error.message) == "op 'reduce_sum' has no attribute 'keepdim' (its attributes: axes, keepdims)");
  item.name = "axis";
  CHECK(host->op("relu", &in, 1, &attrs, &out, 1, &error) == LAMINA_ERROR);
  CHECK(std::string(error.message) == "op 'relu' has no attribute 'axis' (it takes none)");
}
