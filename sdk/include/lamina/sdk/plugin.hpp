// The header-only C++ SDK over lamina_plugin.h. Plugin authors write ordinary C++ against these
// types; nothing here is compiled into the core, and nothing C++ crosses the boundary.
#pragma once

#include <lamina/lamina_plugin.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace lamina::sdk {

using Shape = std::vector<int64_t>;

// The exception plugin code throws; the entry-point adapters turn it into a status + message.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void write_error(lamina_error* error, std::string_view message) {
  if (!error) return;
  size_t n = std::min(message.size(), sizeof(error->message) - 1);
  std::memcpy(error->message, message.data(), n);
  error->message[n] = '\0';
}

// Runs `body`, converting any escaping exception into LAMINA_ERROR.
template <class Body>
lamina_status guarded(lamina_error* error, Body&& body) noexcept {
  try {
    body();
    return LAMINA_OK;
  } catch (const std::exception& e) {
    write_error(error, e.what());
  } catch (...) {
    write_error(error, "unknown exception in plugin");
  }
  return LAMINA_ERROR;
}

// The core's host table, set by lamina_plugin_init (one per plugin library).
inline const lamina_host*& host_table() {
  static const lamina_host* table = nullptr;
  return table;
}
inline const lamina_host& host() {
  if (!host_table()) throw Error("lamina SDK used before lamina_plugin_init");
  return *host_table();
}

inline void check(lamina_status status, const lamina_error& error) {
  if (status != LAMINA_OK) throw Error(error.message);
}

// ------------------------------------------------------------------------------------------------
// Attributes: built by callers of ops, read by kernels.

class Attrs {
 public:
  Attrs() = default;
  Attrs(const Attrs&) = delete;
  Attrs& operator=(const Attrs&) = delete;
  Attrs& set(const char* name, int64_t value) {
    auto& a = push(name, LAMINA_ATTR_INT);
    a.count = 1;
    a.ints[0] = value;
    return *this;
  }
  Attrs& set(const char* name, int value) { return set(name, int64_t(value)); }
  Attrs& set(const char* name, double value) {
    push(name, LAMINA_ATTR_FLOAT).real = value;
    return *this;
  }
  Attrs& set(const char* name, float value) { return set(name, double(value)); }
  Attrs& set(const char* name, std::initializer_list<int64_t> values) {
    return set_ints(name, values.begin(), values.size());
  }
  Attrs& set(const char* name, const Shape& values) { return set_ints(name, values.data(), values.size()); }
  Attrs& set(const char* name, const char* value) {
    texts_.emplace_back(value ? value : "");
    push(name, LAMINA_ATTR_STRING).ints[0] = int64_t(texts_.size() - 1);  // c() points `text` at it
    return *this;
  }
  Attrs& set(const char* name, const std::string& value) { return set(name, value.c_str()); }
  const lamina_attrs* c() {
    lamina_attr* items = count_ <= kInline ? inline_ : overflow_.data();
    for (size_t i = 0; i < count_; ++i)
      if (items[i].type == LAMINA_ATTR_STRING) items[i].text = texts_[size_t(items[i].ints[0])].c_str();
    view_ = {int32_t(count_), items};
    return &view_;
  }

 private:
  Attrs& set_ints(const char* name, const int64_t* values, size_t n) {
    if (n > LAMINA_MAX_DIMS) throw Error(std::string("attribute '") + name + "' has too many values");
    auto& a = push(name, LAMINA_ATTR_INTS);
    a.count = int32_t(n);
    for (size_t i = 0; i < n; ++i) a.ints[i] = values[i];
    return *this;
  }
  // A new attribute with its name and type; the caller sets its value. Only the fields every
  // reader looks at are cleared (not all of `ints`): ops are called with these on every step.
  lamina_attr& push(const char* name, int32_t type) {
    lamina_attr* a = nullptr;
    if (count_ < kInline) {
      a = &inline_[count_];
    } else {
      if (overflow_.empty()) overflow_.assign(inline_, inline_ + kInline);
      a = &overflow_.emplace_back();
    }
    ++count_;
    a->name = name;
    a->type = type;
    a->count = 0;
    a->ints[0] = 0;
    a->real = 0.0;
    a->text = nullptr;
    return *a;
  }
  // Ops take a few attributes: up to kInline of them live here, without a heap allocation per call.
  static constexpr size_t kInline = 8;
  lamina_attr inline_[kInline];  // the first count_ are set
  size_t count_ = 0;
  std::vector<lamina_attr> overflow_;  // every item, once there are more than kInline
  std::vector<std::string> texts_;  // string values, pointed at by c() once they stop moving
  lamina_attrs view_{};
};

// Read-only access to the attributes a kernel receives.
class AttrReader {
 public:
  explicit AttrReader(const lamina_attrs* attrs) : attrs_(attrs) {}
  const lamina_attrs* raw() const { return attrs_; }  // as the C ABI carries them
  const lamina_attr* find(const char* name) const {
    if (!attrs_) return nullptr;
    for (int32_t i = 0; i < attrs_->count; ++i)
      if (std::strcmp(attrs_->items[i].name, name) == 0) return &attrs_->items[i];
    return nullptr;
  }
  const lamina_attr& need(const char* name) const {
    if (auto* a = find(name)) return *a;
    throw Error(std::string("missing op attribute '") + name + "'");
  }
  int64_t get_int(const char* name, int64_t fallback) const {
    auto* a = find(name);
    return a ? (a->type == LAMINA_ATTR_FLOAT ? int64_t(a->real) : a->ints[0]) : fallback;
  }
  double get_float(const char* name, double fallback) const {
    auto* a = find(name);
    return a ? (a->type == LAMINA_ATTR_FLOAT ? a->real : double(a->ints[0])) : fallback;
  }
  // A string attribute; missing → fallback.
  std::string_view get_string(const char* name, std::string_view fallback) const {
    auto* a = find(name);
    if (!a) return fallback;
    if (a->type != LAMINA_ATTR_STRING)
      throw Error(std::string("op attribute '") + name + "' must be a string");
    return a->text ? std::string_view(a->text) : std::string_view();
  }
  // Fixed-size integer list, e.g. strides {sh, sw}; missing → fallback.
  template <size_t N>
  std::array<int64_t, N> get_ints(const char* name, std::array<int64_t, N> fallback) const {
    auto* a = find(name);
    if (!a) return fallback;
    if (a->count != int32_t(N))
      throw Error(std::string("op attribute '") + name + "' needs " + std::to_string(N) + " values");
    std::array<int64_t, N> out{};
    for (size_t i = 0; i < N; ++i) out[i] = a->ints[i];
    return out;
  }

 private:
  const lamina_attrs* attrs_;
};

// ------------------------------------------------------------------------------------------------
// Tensors as plugins see them: reference-counted handles owned by the core.

class Tensor {
 public:
  Tensor() = default;
  // Adopts one reference.
  static Tensor adopt(lamina_tensor handle) {
    Tensor t;
    t.handle_ = handle;
    return t;
  }
  // Shares a borrowed handle (adds a reference).
  static Tensor borrow(lamina_tensor handle) {
    if (handle) host().tensor_retain(handle);
    return adopt(handle);
  }
  Tensor(const Tensor& other) : handle_(other.handle_) {
    if (handle_) host().tensor_retain(handle_);
  }
  Tensor(Tensor&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Tensor& operator=(Tensor other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  ~Tensor() {
    if (handle_) host().tensor_release(handle_);
  }
  lamina_tensor get() const { return handle_; }
  lamina_tensor release() { return std::exchange(handle_, nullptr); }
  explicit operator bool() const { return handle_ != nullptr; }
  Shape shape() const {
    int64_t dims[LAMINA_MAX_DIMS];
    int32_t n = host().tensor_shape(handle_, dims);
    return Shape(dims, dims + n);
  }
  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape()) n *= d;
    return n;
  }

 private:
  lamina_tensor handle_ = nullptr;
};

// ------------------------------------------------------------------------------------------------
// Ops: thin typed wrappers over the one generic host call.

namespace ops {

inline std::vector<Tensor> run(const char* op, std::initializer_list<const Tensor*> inputs, Attrs& attrs,
                               int n_outputs = 1) {
  std::vector<lamina_tensor> in;
  for (const Tensor* t : inputs) in.push_back(t->get());
  std::vector<lamina_tensor> out(size_t(n_outputs), nullptr);
  ErrorSlot error;
  check(host().op(op, in.data(), int32_t(in.size()), attrs.c(), out.data(), n_outputs, &error), error);
  std::vector<Tensor> result;
  for (auto h : out) result.push_back(Tensor::adopt(h));
  return result;
}
// A one-output op; the handles stay on the stack, as ops run on every step of every model.
inline Tensor run1(const char* op, std::initializer_list<const Tensor*> inputs, Attrs&& attrs = Attrs()) {
  lamina_tensor in[LAMINA_MAX_DIMS] = {};
  if (inputs.size() > LAMINA_MAX_DIMS) return std::move(run(op, inputs, attrs)[0]);
  int32_t n = 0;
  for (const Tensor* t : inputs) in[n++] = t->get();
  lamina_tensor out = nullptr;
  ErrorSlot error;
  check(host().op(op, in, n, attrs.c(), &out, 1, &error), error);
  return Tensor::adopt(out);
}

inline Tensor add(const Tensor& a, const Tensor& b) {
  return run1("add", {&a, &b});
}
inline Tensor sub(const Tensor& a, const Tensor& b) {
  return run1("sub", {&a, &b});
}
inline Tensor mul(const Tensor& a, const Tensor& b) {
  return run1("mul", {&a, &b});
}
inline Tensor div(const Tensor& a, const Tensor& b) {
  return run1("div", {&a, &b});
}
inline Tensor neg(const Tensor& x) {
  return run1("neg", {&x});
}
inline Tensor exp(const Tensor& x) {
  return run1("exp", {&x});
}
inline Tensor log(const Tensor& x) {
  return run1("log", {&x});
}
inline Tensor sqrt(const Tensor& x) {
  return run1("sqrt", {&x});
}
inline Tensor square(const Tensor& x) {
  return run1("square", {&x});
}
inline Tensor relu(const Tensor& x) {
  return run1("relu", {&x});
}
inline Tensor sigmoid(const Tensor& x) {
  return run1("sigmoid", {&x});
}
inline Tensor tanh(const Tensor& x) {
  return run1("tanh", {&x});
}
// the Gauss error function
inline Tensor erf(const Tensor& x) {
  return run1("erf", {&x});
}
inline Tensor softmax(const Tensor& x) {
  return run1("softmax", {&x});
}
inline Tensor log_softmax(const Tensor& x) {
  return run1("log_softmax", {&x});
}
// alpha * x + beta
inline Tensor scale(const Tensor& x, double alpha, double beta = 0.0) {
  return run1("scale", {&x}, std::move(Attrs().set("alpha", alpha).set("beta", beta)));
}
inline Tensor clip(const Tensor& x, double low, double high) {
  return run1("clip", {&x}, std::move(Attrs().set("low", low).set("high", high)));
}
// −1, 0 or 1; floor; round to the nearest integer, halves to even (Keras' round). These three and
// the comparisons are piecewise constant: nothing upstream gets a gradient through them.
inline Tensor sign(const Tensor& x) {
  return run1("sign", {&x});
}
inline Tensor abs(const Tensor& x) {
  return run1("abs", {&x});
}
inline Tensor floor(const Tensor& x) {
  return run1("floor", {&x});
}
inline Tensor round(const Tensor& x) {
  return run1("round", {&x});
}
// Comparisons, broadcasting like add (a rank-0 tensor compares with every element): 1.0 where the
// relation holds, else 0.0.
inline Tensor greater(const Tensor& a, const Tensor& b) {
  return run1("greater", {&a, &b});
}
inline Tensor greater_equal(const Tensor& a, const Tensor& b) {
  return run1("greater_equal", {&a, &b});
}
inline Tensor less(const Tensor& a, const Tensor& b) {
  return run1("less", {&a, &b});
}
inline Tensor less_equal(const Tensor& a, const Tensor& b) {
  return run1("less_equal", {&a, &b});
}
inline Tensor equal(const Tensor& a, const Tensor& b) {
  return run1("equal", {&a, &b});
}
inline Tensor not_equal(const Tensor& a, const Tensor& b) {
  return run1("not_equal", {&a, &b});
}
// a where cond is nonzero, else b; the three broadcast together; a and b get the gradient.
inline Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  return run1("where", {&cond, &a, &b});
}
// Elementwise with broadcasting; the gradient goes to the chosen input (to a on a tie).
inline Tensor maximum(const Tensor& a, const Tensor& b) {
  return run1("maximum", {&a, &b});
}
inline Tensor minimum(const Tensor& a, const Tensor& b) {
  return run1("minimum", {&a, &b});
}
// a^b elementwise with broadcasting (Keras' ops.power); for a number, pow(x, full({}, 2.5)).
inline Tensor pow(const Tensor& a, const Tensor& b) {
  return run1("pow", {&a, &b});
}
inline Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false) {
  return run1(
      "matmul", {&a, &b},
      std::move(Attrs().set("transpose_a", int64_t(transpose_a)).set("transpose_b", int64_t(transpose_b))));
}
// Sums over `axes` (negative counts from the end); keeps them as size 1 when keepdims.
inline Tensor reduce_sum(const Tensor& x, const Shape& axes, bool keepdims = false) {
  return run1("reduce_sum", {&x}, std::move(Attrs().set("axes", axes).set("keepdims", int64_t(keepdims))));
}
inline Tensor reshape(const Tensor& x, const Shape& shape) {
  return run1("reshape", {&x}, std::move(Attrs().set("shape", shape)));
}
// Layout ops (docs/ops.md). concat joins along `axis` (negative counts from the end); slice takes
// Python's x[begin:end:step] on each of `axes` (empty: the first begin.size() axes; `end` may be
// kSliceEnd); pad surrounds x with `value`; transpose puts x's axis perm[k] at k (empty: reversed).
inline constexpr int64_t kSliceEnd = INT64_MAX;
inline Tensor concat(const std::vector<Tensor>& xs, int64_t axis = -1) {
  std::vector<lamina_tensor> in;
  for (const Tensor& t : xs) in.push_back(t.get());
  Attrs attrs;
  attrs.set("axis", axis);
  lamina_tensor out = nullptr;
  ErrorSlot error;
  check(host().op("concat", in.data(), int32_t(in.size()), attrs.c(), &out, 1, &error), error);
  return Tensor::adopt(out);
}
inline Tensor slice(const Tensor& x, const Shape& axes, const Shape& begin, const Shape& end,
                    const Shape& step = {}) {
  Attrs attrs;
  attrs.set("axes", axes).set("begin", begin).set("end", end);
  if (!step.empty()) attrs.set("step", step);
  return run1("slice", {&x}, std::move(attrs));
}
inline Tensor pad(const Tensor& x, const Shape& pads_before, const Shape& pads_after, double value = 0.0) {
  return run1(
      "pad", {&x},
      std::move(Attrs().set("pads_before", pads_before).set("pads_after", pads_after).set("value", value)));
}
inline Tensor transpose(const Tensor& x, const Shape& perm = {}) {
  return run1("transpose", {&x}, std::move(Attrs().set("perm", perm)));
}
// Rows of `table` (rows, width) picked by `indices` (whole numbers in [0, rows) held as floats):
// indices' shape + (width,), as Embedding looks tokens up. An index outside the table is an error.
inline Tensor gather(const Tensor& table, const Tensor& indices) {
  return run1("gather", {&table, &indices});
}
struct Conv2DOptions {
  Shape strides{1, 1};
  Shape pads{0, 0, 0, 0};  // top, bottom, left, right
  Shape dilation{1, 1};    // conv2d and conv2d_bias: the distance between neighbouring taps
  int64_t groups = 1;      // conv2d and conv2d_bias: w is (KH, KW, C/groups, O)
};
namespace detail {
// strides and pads, and dilation and groups where they are not 1 (so a call without them reads as
// it did before they existed, and a core that predates them accepts it).
inline Attrs& conv_attrs(Attrs& a, const Conv2DOptions& o) {
  a.set("strides", o.strides).set("pads", o.pads);
  if (o.dilation != Shape{1, 1}) a.set("dilation", o.dilation);
  if (o.groups != 1) a.set("groups", o.groups);
  return a;
}
}  // namespace detail
inline Tensor conv2d(const Tensor& x, const Tensor& w, const Conv2DOptions& o = {}) {
  Attrs a;
  detail::conv_attrs(a, o);
  return run1("conv2d", {&x, &w}, std::move(a));
}
// The transposed convolution (Keras' Conv2DTranspose, the gradient of conv2d w.r.t. its input):
// x (N,H,W,C), w (KH,KW,O,C) → (N,OH,OW,O), where conv2d with these strides and pads maps an
// (OH, OW) image onto (H, W); output_size = {OH, OW} says which, as strides admit several.
// Without dilation or groups.
inline Tensor conv2d_transpose(const Tensor& x, const Tensor& w, const Shape& output_size,
                               const Conv2DOptions& o = {}) {
  if (o.dilation != Shape{1, 1} || o.groups != 1)
    throw Error("conv2d_transpose takes no dilation or groups; leave them at 1");
  return run1(
      "conv2d_transpose", {&x, &w},
      std::move(Attrs().set("output_size", output_size).set("strides", o.strides).set("pads", o.pads)));
}
// activation(conv2d(x, w) + b), b of shape (O,); activation: linear, relu, sigmoid or tanh.
inline Tensor conv2d_bias(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2DOptions& o = {},
                          const std::string& activation = "linear") {
  Attrs a;
  detail::conv_attrs(a, o).set("activation", activation);
  return run1("conv2d_bias", {&x, &w, &b}, std::move(a));
}
// activation(op(a)·op(b) + bias), bias of shape (N,) added to every row.
inline Tensor matmul_bias(const Tensor& a, const Tensor& b, const Tensor& bias,
                          const std::string& activation = "linear", bool transpose_a = false,
                          bool transpose_b = false) {
  return run1("matmul_bias", {&a, &b, &bias},
              std::move(Attrs()
                            .set("transpose_a", int64_t(transpose_a))
                            .set("transpose_b", int64_t(transpose_b))
                            .set("activation", activation)));
}
struct Pool2DOptions {
  Shape pool{2, 2};
  Shape strides{2, 2};
  Shape pads{0, 0, 0, 0};
};
inline Tensor max_pool2d(const Tensor& x, const Pool2DOptions& o) {
  return run1("max_pool2d", {&x},
              std::move(Attrs().set("pool", o.pool).set("strides", o.strides).set("pads", o.pads)));
}
inline Tensor avg_pool2d(const Tensor& x, const Pool2DOptions& o) {
  return run1("avg_pool2d", {&x},
              std::move(Attrs().set("pool", o.pool).set("strides", o.strides).set("pads", o.pads)));
}
// A mask of 0 and 1/(1-rate), shaped like `like`.
inline Tensor dropout_mask(const Tensor& like, double rate, uint64_t seed) {
  return run1("dropout_mask", {&like}, std::move(Attrs().set("rate", rate).set("seed", int64_t(seed))));
}
// The same mask of a given shape: Dropout's noise_shape, SpatialDropout's (batch, 1, ..., channels).
inline Tensor dropout_mask(const Shape& shape, double rate, uint64_t seed) {
  return run1("dropout_mask", {},
              std::move(Attrs().set("shape", shape).set("rate", rate).set("seed", int64_t(seed))));
}
// Normal draws mean + stddev · n(seed, i), shaped like `like` or of a given shape: GaussianNoise,
// GaussianDropout.
inline Tensor random_normal(const Tensor& like, double mean, double stddev, uint64_t seed) {
  return run1("random_normal", {&like},
              std::move(Attrs().set("mean", mean).set("stddev", stddev).set("seed", int64_t(seed))));
}
inline Tensor random_normal(const Shape& shape, double mean, double stddev, uint64_t seed) {
  return run1(
      "random_normal", {},
      std::move(
          Attrs().set("shape", shape).set("mean", mean).set("stddev", stddev).set("seed", int64_t(seed))));
}
inline Tensor full(const Shape& shape, float value) {
  return run1("fill", {}, std::move(Attrs().set("shape", shape).set("value", double(value))));
}
inline Tensor copy(const Tensor& x) {
  return run1("copy", {&x});
}
// x^exponent for a number exponent.
inline Tensor pow(const Tensor& x, double exponent) {
  const Tensor e = full({}, float(exponent));
  return pow(x, e);
}
// Fused losses (docs/ops.md), shape (): mean((pred - target)²) over every element, and
// -Σ target · log_softmax(logits) / rows (rows: every index but the last axis).
inline Tensor mean_squared_error(const Tensor& pred, const Tensor& target) {
  return run1("mean_squared_error", {&pred, &target});
}
inline Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& target) {
  return run1("softmax_cross_entropy", {&logits, &target});
}
// Batch normalization over the last axis (docs/ops.md): x (..., C), gamma, beta (C,). In training,
// the batch's mean and biased variance over every other axis normalize x and are returned (for the
// moving statistics); in inference, the given mean and variance do.
struct BatchNormResult {
  Tensor y, mean, variance;
};
inline BatchNormResult batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                        double epsilon) {
  Attrs attrs;
  attrs.set("epsilon", epsilon);
  std::vector<Tensor> out = run("batch_norm_train", {&x, &gamma, &beta}, attrs, 3);
  return {std::move(out[0]), std::move(out[1]), std::move(out[2])};
}
inline Tensor batch_norm_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                   const Tensor& mean, const Tensor& variance, double epsilon) {
  return run1("batch_norm_inference", {&x, &gamma, &beta, &mean, &variance},
              std::move(Attrs().set("epsilon", epsilon)));
}
// A constant tensor of `shape` holding `values` (row-major; since ABI 1.2).
inline Tensor from_host(const Shape& shape, const std::vector<float>& values) {
  if (!LAMINA_HOST_HAS(&host(), tensor_from_host))
    throw Error("from_host needs a lamina core with plugin ABI 1.2 or newer");
  ErrorSlot error;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n != int64_t(values.size()))
    throw Error("from_host: " + std::to_string(values.size()) + " values do not fill a shape of " +
                std::to_string(n) + " elements");
  lamina_tensor t = host().tensor_from_host(shape.data(), int32_t(shape.size()), values.data(), &error);
  if (!t) throw Error(error.message);
  return Tensor::adopt(t);
}
// An optimizer update op (sgd_update, adadelta_update, adam_update, rmsprop_update): writes the
// parameter and the slots in place from the gradient. Runs outside autograd only.
inline void update(const char* op, const Tensor& parameter, const Tensor& gradient,
                   const std::vector<Tensor>& slots, Attrs& attrs) {
  constexpr size_t kMaxSlots = 6;
  if (slots.size() > kMaxSlots) throw Error(std::string(op) + ": too many optimizer slots");
  lamina_tensor in[kMaxSlots + 2] = {parameter.get(), gradient.get()}, out[kMaxSlots + 1] = {};
  for (size_t i = 0; i < slots.size(); ++i) in[i + 2] = slots[i].get();
  ErrorSlot error;
  lamina_status status =
      host().op(op, in, int32_t(slots.size() + 2), attrs.c(), out, int32_t(slots.size() + 1), &error);
  for (lamina_tensor h : out)
    if (h) host().tensor_release(h);
  check(status, error);
}
// Overwrites `target` with `value`, outside autograd (optimizer updates).
inline void assign(const Tensor& target, const Tensor& value) {
  ErrorSlot error;
  check(host().assign(target.get(), value.get(), &error), error);
}

}  // namespace ops

// The activations a fused op (conv2d_bias, matmul_bias) applies to its result.
inline bool is_fusable_activation(std::string_view name) {
  return name.empty() || name == "linear" || name == "relu" || name == "sigmoid" || name == "tanh";
}

// The Keras activations lamina provides, by the names Keras writes.
inline constexpr const char* kActivations[] = {
    "linear", "relu", "sigmoid",  "tanh",     "softmax",     "elu",  "selu",
    "swish",  "silu", "softplus", "softsign", "exponential", "gelu", "hard_sigmoid"};
inline bool is_activation(const std::string& name) {
  for (const char* known : kActivations)
    if (name == known) return true;
  return false;
}
// "linear, relu, ..." for messages.
inline std::string activation_names() {
  std::string s;
  for (const char* known : kActivations) s += (s.empty() ? "" : ", ") + std::string(known);
  return s;
}

// elu(x) = x for x > 0, alpha·(e^x − 1) below: relu(x) + alpha·(e^(−relu(−x)) − 1).
inline Tensor elu(const Tensor& x, double alpha = 1.0) {
  return ops::add(ops::relu(x), ops::scale(ops::exp(ops::neg(ops::relu(ops::neg(x)))), alpha, -alpha));
}

// Keras activation by name, composed of ops (so autograd differentiates it). Throws for an unknown
// name. selu(x) = λ·elu(x, α) with Keras' α and λ;
//   swish(x) = silu(x) = x·sigmoid(x), softplus(x) = relu(x) + log(1 + e^(-|x|)) (no overflow),
//   softsign(x) = x / (1 + |x|), exponential(x) = e^x,
//   gelu(x) = x·(1 + erf(x/√2))/2, the exact form (Keras' default, approximate=False),
//   hard_sigmoid(x) = relu6(x + 3)/6 = clip(x/6 + 1/2, 0, 1), Keras 3's definition (tf_keras 2.x
//   used clip(0.2x + 0.5, 0, 1): a tf_keras file naming it predicts differently, by up to 1/12).
inline Tensor apply_activation(const std::string& name, const Tensor& x) {
  if (name.empty() || name == "linear") return x;
  if (name == "relu") return ops::relu(x);
  if (name == "sigmoid") return ops::sigmoid(x);
  if (name == "tanh") return ops::tanh(x);
  if (name == "softmax") return ops::softmax(x);
  if (name == "swish" || name == "silu") return ops::mul(x, ops::sigmoid(x));
  if (name == "exponential") return ops::exp(x);
  if (name == "gelu") return ops::mul(x, ops::scale(ops::erf(ops::scale(x, 0.7071067811865476)), 0.5, 0.5));
  if (name == "hard_sigmoid") return ops::clip(ops::scale(x, 1.0 / 6.0, 0.5), 0.0, 1.0);
  if (name == "elu") return elu(x);
  if (name == "selu") return ops::scale(elu(x, 1.6732632423543772), 1.0507009873554805);  // Keras' α, λ
  if (name == "softplus")
    return ops::add(ops::relu(x), ops::log(ops::scale(ops::exp(ops::neg(ops::abs(x))), 1.0, 1.0)));
  if (name == "softsign") return ops::div(x, ops::scale(ops::abs(x), 1.0, 1.0));
  throw Error("unknown activation '" + name + "' (known: " + activation_names() + ")");
}

// ------------------------------------------------------------------------------------------------
// Layers: derive from Layer, register with LayerClass<YourLayer>("KerasName").

class LayerBuilder {
 public:
  explicit LayerBuilder(lamina_layer_builder b) : b_(b) {}
  void add_weight(const char* name, const Shape& shape, const std::string& initializer_json,
                  bool trainable = true) {
    ErrorSlot error;
    check(host().add_weight(b_, name, shape.data(), int32_t(shape.size()), initializer_json.c_str(),
                            trainable ? 1 : 0, &error),
          error);
  }

 private:
  lamina_layer_builder b_;
};

struct CallContext {
  bool training = false;
  uint64_t seed = 0;
};

class Layer {
 public:
  virtual ~Layer() = default;
  // This layer's own Keras config keys, as a JSON object text.
  virtual std::string get_config() const = 0;
  // Declares weights and returns the output shape (both without the batch dimension).
  virtual Shape build(LayerBuilder& builder, const Shape& input_shape) = 0;
  virtual Tensor call(const CallContext& context, const std::vector<Tensor>& weights,
                      const Tensor& input) = 0;
};

// A layer with several inputs or several outputs (Keras' merge layers: Add()([a, b])). Shapes and
// tensors come as lists, in the order of the call; since ABI 1.3. build() may run again for a
// later call of a shared layer and must then declare the same weights.
class MultiLayer {
 public:
  virtual ~MultiLayer() = default;
  virtual std::string get_config() const = 0;
  virtual std::vector<Shape> build(LayerBuilder& builder, const std::vector<Shape>& input_shapes) = 0;
  virtual std::vector<Tensor> call(const CallContext& context, const std::vector<Tensor>& weights,
                                   const std::vector<Tensor>& inputs) = 0;
};

// Adapts a C++ layer type T (constructible from the config JSON text) to the C table.
template <class T>
struct LayerAdapter {
  static constexpr bool kMany = std::is_base_of_v<MultiLayer, T>;
  struct Instance {
    T layer;
    std::string config;
  };
  static void* create(const char* config_json, lamina_error* error) {
    Instance* out = nullptr;
    guarded(error, [&] { out = new Instance{T(std::string(config_json)), {}}; });
    return out;
  }
  static void destroy(void* p) { delete static_cast<Instance*>(p); }
  static const char* get_config(void* p) {
    auto* self = static_cast<Instance*>(p);
    try {
      self->config = self->layer.get_config();
    } catch (...) {
      self->config = "{}";
    }
    return self->config.c_str();
  }
  static void write_shape(const Shape& shape, int64_t* out, int32_t* ndim) {
    if (shape.size() > LAMINA_MAX_DIMS) throw Error("output rank too large");
    for (size_t i = 0; i < shape.size(); ++i) out[i] = shape[i];
    *ndim = int32_t(shape.size());
  }
  static Shape build_one(Instance& self, LayerBuilder& builder, const Shape& input) {
    if constexpr (kMany) {
      std::vector<Shape> out = static_cast<MultiLayer&>(self.layer).build(builder, {input});
      if (out.size() != 1)
        throw Error("this layer has " + std::to_string(out.size()) +
                    " outputs; a core with "
                    "plugin ABI 1.3 or newer is needed to use it");
      return out[0];
    } else {
      return static_cast<Layer&>(self.layer).build(builder, input);
    }
  }
  static std::vector<Tensor> call_list(Instance& self, const CallContext& ctx, const std::vector<Tensor>& w,
                                       const std::vector<Tensor>& inputs) {
    if constexpr (kMany) {
      return static_cast<MultiLayer&>(self.layer).call(ctx, w, inputs);
    } else {
      if (inputs.size() != 1) throw Error("this layer takes one input, not " + std::to_string(inputs.size()));
      return {static_cast<Layer&>(self.layer).call(ctx, w, inputs[0])};
    }
  }
  static lamina_status build(void* p, lamina_layer_builder b, const int64_t* in, int32_t in_ndim,
                             int64_t* out, int32_t* out_ndim, lamina_error* error) {
    return guarded(error, [&] {
      LayerBuilder builder(b);
      write_shape(build_one(*static_cast<Instance*>(p), builder, Shape(in, in + in_ndim)), out, out_ndim);
    });
  }
  static lamina_status call(void* p, const lamina_call_context* context, const lamina_tensor* weights,
                            int32_t n_weights, lamina_tensor input, lamina_tensor* output,
                            lamina_error* error) {
    return guarded(error, [&] {
      std::vector<Tensor> w;
      for (int32_t i = 0; i < n_weights; ++i) w.push_back(Tensor::borrow(weights[i]));
      CallContext ctx{context->training != 0, context->seed};
      std::vector<Tensor> y = call_list(*static_cast<Instance*>(p), ctx, w, {Tensor::borrow(input)});
      if (y.size() != 1) throw Error("the layer gave " + std::to_string(y.size()) + " outputs, not one");
      *output = y[0].release();
    });
  }
  static lamina_status build_many(void* p, lamina_layer_builder b, int32_t n_inputs, const int64_t* shapes,
                                  const int32_t* ndims, int64_t* out_shapes, int32_t* out_ndims,
                                  int32_t* n_outputs, lamina_error* error) {
    return guarded(error, [&] {
      LayerBuilder builder(b);
      std::vector<Shape> in;
      for (int32_t i = 0; i < n_inputs; ++i)
        in.emplace_back(shapes + i * LAMINA_MAX_DIMS, shapes + i * LAMINA_MAX_DIMS + ndims[i]);
      std::vector<Shape> out = static_cast<MultiLayer&>(static_cast<Instance*>(p)->layer).build(builder, in);
      if (out.empty() || out.size() > LAMINA_MAX_OUTPUTS)
        throw Error("a layer has 1 to " + std::to_string(LAMINA_MAX_OUTPUTS) + " outputs, this one gave " +
                    std::to_string(out.size()));
      for (size_t i = 0; i < out.size(); ++i)
        write_shape(out[i], out_shapes + i * LAMINA_MAX_DIMS, &out_ndims[i]);
      *n_outputs = int32_t(out.size());
    });
  }
  static lamina_status call_many(void* p, const lamina_call_context* context, const lamina_tensor* weights,
                                 int32_t n_weights, const lamina_tensor* inputs, int32_t n_inputs,
                                 lamina_tensor* outputs, int32_t n_outputs, lamina_error* error) {
    return guarded(error, [&] {
      std::vector<Tensor> w, in;
      for (int32_t i = 0; i < n_weights; ++i) w.push_back(Tensor::borrow(weights[i]));
      for (int32_t i = 0; i < n_inputs; ++i) in.push_back(Tensor::borrow(inputs[i]));
      CallContext ctx{context->training != 0, context->seed};
      std::vector<Tensor> y = call_list(*static_cast<Instance*>(p), ctx, w, in);
      if (int32_t(y.size()) != n_outputs)
        throw Error("the layer gave " + std::to_string(y.size()) + " outputs where its build declared " +
                    std::to_string(n_outputs));
      for (int32_t i = 0; i < n_outputs; ++i) outputs[i] = y[size_t(i)].release();
    });
  }
  static lamina_layer_class describe(const char* class_name) {
    lamina_layer_class c{};
    c.struct_size = sizeof(c);
    c.class_name = class_name;
    c.create = &create;
    c.destroy = &destroy;
    c.get_config = &get_config;
    c.build = &build;
    c.call = &call;
    if constexpr (kMany) {
      c.build_many = &build_many;
      c.call_many = &call_many;
    }
    return c;
  }
};

template <class T>
void register_layer(const lamina_host* h, const char* class_name) {
  static lamina_layer_class c = LayerAdapter<T>::describe(class_name);
  ErrorSlot error;
  check(h->register_layer(h->self, &c, &error), error);
}

// ------------------------------------------------------------------------------------------------
// Optimizers: derive from Optimizer, register with register_optimizer<YourOptimizer>("Name").

// The keys every Keras optimizer config may hold (Keras 3, tf_keras and Keras 2 write them). An
// optimizer accepts them besides its own; whether it applies them is its own business.
inline constexpr const char* kKerasOptimizerKeys[] = {"name",
                                                      "clipnorm",
                                                      "clipvalue",
                                                      "global_clipnorm",
                                                      "use_ema",
                                                      "ema_momentum",
                                                      "ema_overwrite_frequency",
                                                      "loss_scale_factor",
                                                      "gradient_accumulation_steps",
                                                      "weight_decay",
                                                      "jit_compile",
                                                      "is_legacy_optimizer",
                                                      "decay"};

// The top-level keys of a JSON object's text, in order (strings unescaped for \" and \\; nested
// values skipped). Throws for text that does not start an object.
inline std::vector<std::string> json_object_keys(std::string_view text) {
  std::vector<std::string> keys;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) ++i;
  };
  skip_space();
  if (i >= text.size() || text[i] != '{') throw Error("config is not a JSON object");
  ++i;
  int depth = 0;  // of arrays and objects inside the top-level one
  bool at_key = true;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      std::string s;
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        s += text[i];
      }
      ++i;
      if (depth == 0 && at_key) keys.push_back(std::move(s)), at_key = false;
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth-- == 0) break;
    } else if (c == ',' && depth == 0) {
      at_key = true;
    }
    ++i;
  }
  return keys;
}

inline size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string get_config() const = 0;
  virtual std::vector<std::string> slot_names() const = 0;
  // Updates `parameter` in place; `iteration` counts from 1.
  virtual void apply(const Tensor& parameter, const Tensor& gradient, const std::vector<Tensor>& slots,
                     int64_t iteration) = 0;
  virtual double learning_rate() const = 0;
  virtual void set_learning_rate(double value) = 0;
  // The config keys this optimizer takes besides kKerasOptimizerKeys. A config with any other key is
  // refused, naming the class, the key and these keys, so that a misspelt `betta_1` does not train
  // with the default. By default: the keys get_config() writes. Override it to list keys
  // get_config() leaves out (aliases, keys written only when set), or return std::nullopt to accept
  // every key as Keras' own layers do.
  virtual std::optional<std::vector<std::string>> config_keys() const {
    return json_object_keys(get_config());
  }
};

// Throws unless every key of `config_json` is one of `optimizer`'s config_keys() or a Keras
// optimizer key; the message names `class_name`, the key, the nearest known key and all of them.
inline void check_optimizer_keys(const Optimizer& optimizer, const char* class_name,
                                 const std::string& config_json) {
  const std::optional<std::vector<std::string>> own = optimizer.config_keys();
  if (!own) return;
  std::vector<std::string> known = *own;
  for (const char* k : kKerasOptimizerKeys)
    if (std::find(known.begin(), known.end(), k) == known.end()) known.push_back(k);
  for (const std::string& key : json_object_keys(config_json)) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string nearest, list;
    size_t best = 3;  // suggest only a key within two edits
    for (const std::string& k : known) {
      const size_t d = edit_distance(key, k);
      if (d < best) best = d, nearest = k;
    }
    for (const std::string& k : *own)
      if (std::find(std::begin(kKerasOptimizerKeys), std::end(kKerasOptimizerKeys), k) ==
          std::end(kKerasOptimizerKeys))
        list += (list.empty() ? "'" : ", '") + k + "'";
    std::string common;
    for (const char* k : kKerasOptimizerKeys) common += (common.empty() ? "'" : ", '") + std::string(k) + "'";
    throw Error(std::string(class_name) + ": unknown config key '" + key + "'" +
                (nearest.empty() ? "" : " (did you mean '" + nearest + "'?)") +
                "; known: " + (list.empty() ? "" : list + ", ") + "and Keras' optimizer keys " + common);
  }
}

template <class T>
struct OptimizerAdapter {
  struct Instance {
    T optimizer;
    std::string config;
    std::vector<std::string> slots;
  };
  static const char*& class_name() {
    static const char* name = "optimizer";
    return name;
  }
  static void* create(const char* config_json, lamina_error* error) {
    Instance* out = nullptr;
    guarded(error, [&] {
      auto instance = std::make_unique<Instance>(Instance{T(std::string(config_json)), {}, {}});
      check_optimizer_keys(instance->optimizer, class_name(), config_json);
      instance->slots = instance->optimizer.slot_names();
      out = instance.release();
    });
    return out;
  }
  static void destroy(void* p) { delete static_cast<Instance*>(p); }
  static const char* get_config(void* p) {
    auto* self = static_cast<Instance*>(p);
    try {
      self->config = self->optimizer.get_config();
    } catch (...) {
      self->config = "{}";
    }
    return self->config.c_str();
  }
  static int32_t slot_count(void* p) { return int32_t(static_cast<Instance*>(p)->slots.size()); }
  static const char* slot_name(void* p, int32_t i) {
    return static_cast<Instance*>(p)->slots.at(size_t(i)).c_str();
  }
  static lamina_status apply(void* p, lamina_tensor param, lamina_tensor grad, const lamina_tensor* slots,
                             int32_t n_slots, int64_t iteration, lamina_error* error) {
    return guarded(error, [&] {
      std::vector<Tensor> s;
      for (int32_t i = 0; i < n_slots; ++i) s.push_back(Tensor::borrow(slots[i]));
      static_cast<Instance*>(p)->optimizer.apply(Tensor::borrow(param), Tensor::borrow(grad), s, iteration);
    });
  }
  static double get_lr(void* p) { return static_cast<Instance*>(p)->optimizer.learning_rate(); }
  static void set_lr(void* p, double v) { static_cast<Instance*>(p)->optimizer.set_learning_rate(v); }
  static lamina_optimizer_class describe(const char* class_name) {
    lamina_optimizer_class c{};
    c.struct_size = sizeof(c);
    c.class_name = class_name;
    c.create = &create;
    c.destroy = &destroy;
    c.get_config = &get_config;
    c.slot_count = &slot_count;
    c.slot_name = &slot_name;
    c.apply = &apply;
    c.get_learning_rate = &get_lr;
    c.set_learning_rate = &set_lr;
    return c;
  }
};

template <class T>
void register_optimizer(const lamina_host* h, const char* class_name) {
  OptimizerAdapter<T>::class_name() = class_name;
  static lamina_optimizer_class c = OptimizerAdapter<T>::describe(class_name);
  ErrorSlot error;
  check(h->register_optimizer(h->self, &c, &error), error);
}

// ------------------------------------------------------------------------------------------------
// Backends: kernels are plain functions; this turns a C++ kernel body into a lamina_kernel_fn.

struct KernelArgs {
  void* backend;
  const lamina_view* inputs;
  int32_t n_inputs;
  const lamina_view* outputs;
  int32_t n_outputs;
  AttrReader attrs;
};

// The `activation` attribute of the fused ops (conv2d_bias, matmul_bias).
enum class Activation { linear, relu, sigmoid, tanh };
inline Activation read_activation(const AttrReader& attrs) {
  std::string_view a = attrs.get_string("activation", "linear");
  if (a.empty() || a == "linear") return Activation::linear;
  if (a == "relu") return Activation::relu;
  if (a == "sigmoid") return Activation::sigmoid;
  if (a == "tanh") return Activation::tanh;
  throw Error("unknown activation '" + std::string(a) + "' (known: linear, relu, sigmoid, tanh)");
}

inline int64_t view_size(const lamina_view& v) {
  int64_t n = 1;
  for (int32_t i = 0; i < v.ndim; ++i) n *= v.shape[i];
  return n;
}
inline float* host_data(const lamina_view& v) {
  return static_cast<float*>(v.data);
}

// ------------------------------------------------------------------------------------------------
// Plugin ops: an op with kernels of its own for some backends and a composition of existing ops for
// every other. T provides
//   static constexpr const char* name;      unique, "<plugin>.<op>"
//   static constexpr int inputs;            exact input count; one output, shaped like input 0
//   static Tensor compose(const std::vector<Tensor>& inputs, const AttrReader& attrs);
// The core differentiates compose(), so kernels need no gradient; they must compute the same values.
// Run it with ops::run1(T::name, {&x, ...}).

template <class T>
struct OpAdapter {
  static lamina_status compose(const lamina_tensor* inputs, int32_t n_inputs, const lamina_attrs* attrs,
                               lamina_tensor* output, lamina_error* error) {
    return guarded(error, [&] {
      std::vector<Tensor> in;
      for (int32_t i = 0; i < n_inputs; ++i) in.push_back(Tensor::borrow(inputs[i]));
      *output = T::compose(in, AttrReader(attrs)).release();
    });
  }
};

// Registers T with `kernels` ({"backend name", kernel}, kernels written with LAMINA_KERNEL). Returns
// false, registering nothing, on a core older than plugin ops: call T::compose yourself there.
template <class T>
bool register_op(const lamina_host* h, std::initializer_list<lamina_op_kernel> kernels) {
  if (!LAMINA_HOST_HAS(h, register_op)) return false;
  static std::vector<lamina_op_kernel> table_kernels;
  table_kernels.assign(kernels.begin(), kernels.end());
  static lamina_op_class c{};
  c.struct_size = sizeof(c);
  c.name = T::name;
  c.n_inputs = T::inputs;
  c.output_shape = nullptr;
  c.compose = &OpAdapter<T>::compose;
  c.kernel_count = int32_t(table_kernels.size());
  c.kernels = table_kernels.data();
  ErrorSlot error;
  check(h->register_op(h->self, &c, &error), error);
  return true;
}

}  // namespace lamina::sdk

// Defines a kernel `name` with body operating on `args` (a lamina::sdk::KernelArgs&).
#define LAMINA_KERNEL(name)                                                                             \
  static void name##_body(lamina::sdk::KernelArgs& args);                                               \
  static lamina_status name(void* backend, const lamina_view* in, int32_t n_in, const lamina_view* out, \
                            int32_t n_out, const lamina_attrs* attrs, lamina_error* error) {            \
    lamina::sdk::KernelArgs args{backend, in, n_in, out, n_out, lamina::sdk::AttrReader(attrs)};        \
    return lamina::sdk::guarded(error, [&] { name##_body(args); });                                     \
  }                                                                                                     \
  static void name##_body(lamina::sdk::KernelArgs& args)

// Emits the four entry points. `init` is `void(const lamina_host*)` and registers everything;
// `score` is `int32_t(std::string& why)` or nullptr-like LAMINA_ALWAYS_USABLE.
#define LAMINA_PLUGIN(NAME, VERSION, KINDS, DESCRIPTION, INIT, SCORE)                                       \
  extern "C" __attribute__((visibility("default"))) const lamina_plugin_info* lamina_plugin_query(void) {   \
    static const lamina_plugin_info info = {                                                                \
        sizeof(lamina_plugin_info), LAMINA_ABI_MAJOR, LAMINA_ABI_MINOR, NAME, VERSION, KINDS, DESCRIPTION}; \
    return &info;                                                                                           \
  }                                                                                                         \
  extern "C" __attribute__((visibility("default"))) int32_t lamina_plugin_score(lamina_error* why) {        \
    int32_t lamina_score_ = 0;                                                                              \
    std::string lamina_reason_;                                                                             \
    if (lamina::sdk::guarded(why, [&] { lamina_score_ = SCORE(lamina_reason_); }) != LAMINA_OK) return 0;   \
    lamina::sdk::write_error(why, lamina_reason_);                                                          \
    return lamina_score_;                                                                                   \
  }                                                                                                         \
  extern "C" __attribute__((visibility("default"))) lamina_status lamina_plugin_init(                       \
      const lamina_host* host, uint32_t host_abi_minor, lamina_error* error) {                              \
    (void)host_abi_minor;                                                                                   \
    return lamina::sdk::guarded(error, [&] {                                                                \
      if (!host || host->abi_major != LAMINA_ABI_MAJOR)                                                     \
        throw lamina::sdk::Error("host ABI major differs from the plugin's");                               \
      lamina::sdk::host_table() = host;                                                                     \
      INIT(host);                                                                                           \
    });                                                                                                     \
  }                                                                                                         \
  extern "C" __attribute__((visibility("default"))) void lamina_plugin_shutdown(void) {}

// Emits the optional lamina_plugin_configure entry point (ABI 1.1): `CONFIGURE` is
// `void(const std::string& settings_json)`, called before score with the user's settings for this
// plugin (see lamina_plugin.h); it throws lamina::sdk::Error to refuse them.
#define LAMINA_PLUGIN_CONFIGURE(CONFIGURE)                                                              \
  extern "C" __attribute__((visibility("default"))) lamina_status lamina_plugin_configure(              \
      const char* settings_json, lamina_error* error) {                                                 \
    return lamina::sdk::guarded(error,                                                                  \
                                [&] { CONFIGURE(std::string(settings_json ? settings_json : "{}")); }); \
  }

namespace lamina::sdk {
inline int32_t always_usable(std::string&) {
  return 1;
}
}  // namespace lamina::sdk
#define LAMINA_ALWAYS_USABLE ::lamina::sdk::always_usable
