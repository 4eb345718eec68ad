// The op set (docs/ops.md) as C++ functions on the active backend, recorded for autograd.
#pragma once

#include <lamina/tensor.hpp>

#include <string>
#include <vector>

namespace lamina {

// Named op attributes, e.g. Attributes().set("strides", {1, 1}). Ops set a few on every call, so
// they are stored inline: no heap allocation for up to 4 attributes of up to 8 integers each.
class Attributes {
 public:
  static constexpr size_t kMaxInts = 8;  // as many as the plugin ABI's attributes carry (LAMINA_MAX_DIMS)

  // Up to kMaxInts integers, inline.
  class Ints {
   public:
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    int64_t operator[](size_t i) const { return values_[i]; }
    const int64_t* begin() const { return values_; }
    const int64_t* end() const { return values_ + size_; }
    std::vector<int64_t> to_vector() const { return {begin(), end()}; }
    void assign(const int64_t* values, size_t n);  // throws for n > kMaxInts

   private:
    int64_t values_[kMaxInts] = {};
    size_t size_ = 0;
  };
  struct Item {
    std::string name;
    int type = 0;  // lamina_attr_type
    Ints ints;
    double real = 0.0;
    std::string text;
  };

  Attributes& set(const std::string& name, int64_t value);
  Attributes& set(const std::string& name, int value) { return set(name, int64_t(value)); }
  Attributes& set(const std::string& name, double value);
  Attributes& set(const std::string& name, const std::vector<int64_t>& values);  // at most kMaxInts
  Attributes& set(const std::string& name, std::initializer_list<int64_t> values);
  Attributes& set(const std::string& name, const std::string& value);
  const Item* find(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_float(const std::string& name, double fallback) const;
  std::vector<int64_t> get_ints(const std::string& name, std::vector<int64_t> fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  // The attributes in the order they were first set.
  const Item* begin() const { return data(); }
  const Item* end() const { return data() + size_; }
  size_t size() const { return size_; }

 private:
  static constexpr size_t kInline = 4;
  Item& slot(const std::string& name, int type);  // the item named `name`, emptied, of `type`
  const Item* data() const { return size_ <= kInline ? inline_ : overflow_.data(); }
  Item* data() { return size_ <= kInline ? inline_ : overflow_.data(); }
  Item inline_[kInline];
  std::vector<Item> overflow_;  // every item, once there are more than kInline
  size_t size_ = 0;
};

// Runs `op` on the active backend. Throws lamina::Error naming the op and the backend.
std::vector<Tensor> run_op(const std::string& op, const std::vector<Tensor>& inputs,
                           const Attributes& attrs = {});

// Disables autograd recording in a scope (inference, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};
bool grad_enabled();

// Gradients of the scalar `loss` with respect to each of `wrt` (leaf tensors that require grad);
// an undefined Tensor where `loss` does not depend on one of them.
std::vector<Tensor> gradients(const Tensor& loss, const std::vector<Tensor>& wrt);

// Overwrites `target` with `value` (same shape), outside autograd.
void assign(const Tensor& target, const Tensor& value);

namespace ops {
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor erf(const Tensor& x);                                     // the Gauss error function
Tensor scale(const Tensor& x, double alpha, double beta = 0.0);  // alpha * x + beta
Tensor clip(const Tensor& x, double low, double high);
Tensor sign(const Tensor& x);  // −1, 0 or 1; no gradient (a constant to autograd)
Tensor abs(const Tensor& x);
Tensor floor(const Tensor& x);  // no gradient
Tensor round(const Tensor& x);  // to the nearest integer, halves to even, as Keras; no gradient
// Comparisons with broadcasting (like add): 1.0 where the relation holds, else 0.0; no gradient.
Tensor greater(const Tensor& a, const Tensor& b);
Tensor greater_equal(const Tensor& a, const Tensor& b);
Tensor less(const Tensor& a, const Tensor& b);
Tensor less_equal(const Tensor& a, const Tensor& b);
Tensor equal(const Tensor& a, const Tensor& b);
Tensor not_equal(const Tensor& a, const Tensor& b);
// a where cond is nonzero, else b; the three broadcast together.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// Elementwise, broadcasting; the gradient goes to the chosen input (to a on a tie).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);  // a^b, broadcasting (Keras' ops.power)
Tensor pow(const Tensor& a, double exponent);  // a^exponent
Tensor softmax(const Tensor& x);      // over the last axis
Tensor log_softmax(const Tensor& x);  // over the last axis
Tensor reduce_sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdims = false);
Tensor sum(const Tensor& x);   // all elements, shape ()
Tensor mean(const Tensor& x);  // all elements, shape ()
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);
Tensor reshape(const Tensor& x, const Shape& shape);
// Layout ops (docs/ops.md). concat joins along `axis` (negative counts from the end); slice takes
// Python's x[begin:end:step] on each of `axes` (empty: the first begin.size() axes; end may be
// kSliceEnd); pad surrounds x with `value`; transpose puts x's axis perm[k] at k (empty: reversed).
inline constexpr int64_t kSliceEnd = INT64_MAX;
Tensor concat(const std::vector<Tensor>& xs, int64_t axis = -1);
Tensor slice(const Tensor& x, const std::vector<int64_t>& axes, const std::vector<int64_t>& begin,
             const std::vector<int64_t>& end, const std::vector<int64_t>& step = {});
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads_before, const std::vector<int64_t>& pads_after,
           double value = 0.0);
Tensor transpose(const Tensor& x, const std::vector<int64_t>& perm = {});
// Rows of `table` (rows, width) picked by `indices` (whole numbers in [0, rows) held as floats):
// indices' shape + (width,). The gradient reaches the table only (a scatter-add).
Tensor gather(const Tensor& table, const Tensor& indices);
// x (N,H,W,C), w (KH,KW,C/groups,O); pads = {top, bottom, left, right}; dilation = {dh, dw}, the
// distance between neighbouring taps; groups splits the channels into groups convolved separately.
Tensor conv2d(const Tensor& x, const Tensor& w, const std::vector<int64_t>& strides = {1, 1},
              const std::vector<int64_t>& pads = {0, 0, 0, 0}, const std::vector<int64_t>& dilation = {1, 1},
              int64_t groups = 1);
// The transposed convolution: x (N,H,W,C), w (KH,KW,O,C) → (N,OH,OW,O), output_size = {OH, OW}; the
// conv2d with these strides and pads maps an (OH, OW) image back to (H, W).
Tensor conv2d_transpose(const Tensor& x, const Tensor& w, const std::vector<int64_t>& output_size,
                        const std::vector<int64_t>& strides = {1, 1},
                        const std::vector<int64_t>& pads = {0, 0, 0, 0});
// Fused forms (docs/ops.md): activation(conv2d(x, w) + b) and activation(matmul(a, b) + bias), with
// b and bias of shape (O,) and activation one of "linear", "relu", "sigmoid", "tanh".
Tensor conv2d_bias(const Tensor& x, const Tensor& w, const Tensor& b,
                   const std::vector<int64_t>& strides = {1, 1},
                   const std::vector<int64_t>& pads = {0, 0, 0, 0}, const std::string& activation = "linear",
                   const std::vector<int64_t>& dilation = {1, 1}, int64_t groups = 1);
Tensor matmul_bias(const Tensor& a, const Tensor& b, const Tensor& bias, bool transpose_a = false,
                   bool transpose_b = false, const std::string& activation = "linear");
// Fused losses (docs/ops.md), shape (): mean((pred - target)²) over every element, and
// -Σ target · log_softmax(logits) / rows (rows: every index but the last axis).
Tensor mean_squared_error(const Tensor& pred, const Tensor& target);
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& target);
Tensor max_pool2d(const Tensor& x, const std::vector<int64_t>& pool, const std::vector<int64_t>& strides,
                  const std::vector<int64_t>& pads = {0, 0, 0, 0});
Tensor avg_pool2d(const Tensor& x, const std::vector<int64_t>& pool, const std::vector<int64_t>& strides,
                  const std::vector<int64_t>& pads = {0, 0, 0, 0});
Tensor dropout_mask(const Shape& shape, double rate, uint64_t seed);
Tensor random_normal(const Shape& shape, double mean, double stddev, uint64_t seed);  // docs/ops.md
Tensor full(const Shape& shape, float value);  // on the active backend
}  // namespace ops

}  // namespace lamina
