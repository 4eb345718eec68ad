// Tensor: a float32 array with a shape, living in the memory of one backend (or of the host).
// Copies are cheap: tensors share their buffer. Layout follows Keras: channels_last (NHWC).
#pragma once

#include <lamina/error.hpp>

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <string>
#include <vector>

namespace lamina {

using Shape = std::vector<int64_t>;

std::string shape_to_string(const Shape& shape);  // "(None, 28, 28, 1)"-style, e.g. "(32, 28, 28, 1)"
int64_t shape_size(const Shape& shape);

struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(TensorImpl* impl, bool add_ref = true);
  Tensor(const Tensor& other);
  Tensor(Tensor&& other) noexcept;
  Tensor& operator=(Tensor other) noexcept;
  ~Tensor();

  // Host tensors, e.g. data sets: Tensor::from_vector({1, -2, -3, -5}, {2, 2}).
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor zeros(const Shape& shape);
  static Tensor full(const Shape& shape, float value);
  // Uninitialised host tensor whose values are written through host_data().
  static Tensor empty_host(const Shape& shape);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t ndim() const { return int64_t(shape().size()); }
  int64_t size() const { return shape_size(shape()); }
  int64_t dim(int64_t axis) const;  // negative counts from the end

  std::vector<float> to_vector() const;  // copies to the host
  float item() const;                    // the single value of a one-element tensor
  float* host_data();                    // only for tensors in host memory
  const float* host_data() const;
  bool is_host() const;

  // A view with another shape (one entry may be -1); shares the buffer.
  Tensor reshape(const Shape& shape) const;
  // Rows [begin, end) along the first axis, as a view.
  Tensor slice(int64_t begin, int64_t end) const;

  bool requires_grad() const;
  Tensor& set_requires_grad(bool value);

  TensorImpl* impl() const { return impl_; }
  TensorImpl* release();

 private:
  TensorImpl* impl_ = nullptr;
};

// Element-wise arithmetic on the active backend (recorded for autograd).
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, float b);
Tensor operator-(const Tensor& a, float b);
Tensor operator*(const Tensor& a, float b);
Tensor operator/(const Tensor& a, float b);
Tensor operator-(const Tensor& a);
// Comparisons give 0/1 tensors (the greater and less ops): model.predict(x) > 0.5f.
Tensor operator>(const Tensor& a, float b);
Tensor operator<(const Tensor& a, float b);

// Prints like NumPy: array([[0.5078], [0.4806]]) with the shape.
std::ostream& operator<<(std::ostream& out, const Tensor& t);

}  // namespace lamina
