// The op set: shape inference, dispatch to the active backend, and gradient rules.
// Backends only see kernel contracts (docs/ops.md); broadcasting, axes and autograd live here.
//
// run_op is on the path of every step of every model, so it avoids per-call heap work where it
// can: shapes are read from the tensors, attributes are handed to kernels from a stack array, and
// views are built in place.
#include "internal.hpp"
#include "replay.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace lamina {

void define_layout_ops(const std::function<OpDef&(const std::string&)>& def);  // ops/layout.cpp

// (defined below define_ops, which uses it for the losses' backward ops)
static std::vector<Tensor> run_op(const OpDef& op, const std::vector<Tensor>& given, const Attributes& attrs);

// ------------------------------------------------------------------------------------------------
// Attributes

void Attributes::Ints::assign(const int64_t* values, size_t n) {
  if (n > kMaxInts)
    throw Error("an op attribute holds at most " + std::to_string(kMaxInts) + " integers, got " +
                std::to_string(n));
  std::copy(values, values + n, values_);
  size_ = n;
}

// Each set() builds its item in place (no temporary copies): ops set attributes on every call.
Attributes::Item& Attributes::slot(const std::string& name, int type) {
  Item* items = data();
  for (size_t k = 0; k < size_; ++k)
    if (items[k].name == name) {
      Item& i = items[k];
      i.type = type;
      i.ints.assign(nullptr, 0);
      i.real = 0.0;
      i.text.clear();
      return i;
    }
  if (size_ == kInline) {  // from here on every item lives in overflow_
    overflow_.reserve(2 * kInline);
    for (Item& i : inline_) overflow_.push_back(std::move(i));
  }
  Item* item;
  if (size_ < kInline) {
    item = &inline_[size_];
    *item = Item{};
  } else {
    item = &overflow_.emplace_back();
  }
  ++size_;
  item->name = name;
  item->type = type;
  return *item;
}
Attributes& Attributes::set(const std::string& name, int64_t value) {
  slot(name, LAMINA_ATTR_INT).ints.assign(&value, 1);
  return *this;
}
Attributes& Attributes::set(const std::string& name, double value) {
  slot(name, LAMINA_ATTR_FLOAT).real = value;
  return *this;
}
Attributes& Attributes::set(const std::string& name, const std::vector<int64_t>& values) {
  if (values.size() > kMaxInts) throw Error("attribute '" + name + "' has more than 8 values");
  slot(name, LAMINA_ATTR_INTS).ints.assign(values.data(), values.size());
  return *this;
}
Attributes& Attributes::set(const std::string& name, std::initializer_list<int64_t> values) {
  if (values.size() > kMaxInts) throw Error("attribute '" + name + "' has more than 8 values");
  slot(name, LAMINA_ATTR_INTS).ints.assign(values.begin(), values.size());
  return *this;
}
Attributes& Attributes::set(const std::string& name, const std::string& value) {
  slot(name, LAMINA_ATTR_STRING).text = value;
  return *this;
}
const Attributes::Item* Attributes::find(const std::string& name) const {
  for (const Item& i : *this)
    if (i.name == name) return &i;
  return nullptr;
}
int64_t Attributes::get_int(const std::string& name, int64_t fallback) const {
  auto* i = find(name);
  if (!i) return fallback;
  if (i->type == LAMINA_ATTR_FLOAT) return int64_t(i->real);
  return i->ints.empty() ? fallback : i->ints[0];
}
double Attributes::get_float(const std::string& name, double fallback) const {
  auto* i = find(name);
  if (!i) return fallback;
  if (i->type == LAMINA_ATTR_FLOAT) return i->real;
  return i->ints.empty() ? fallback : double(i->ints[0]);
}
std::vector<int64_t> Attributes::get_ints(const std::string& name, std::vector<int64_t> fallback) const {
  auto* i = find(name);
  return i ? i->ints.to_vector() : fallback;
}
std::string Attributes::get_string(const std::string& name, const std::string& fallback) const {
  auto* i = find(name);
  return i && i->type == LAMINA_ATTR_STRING ? i->text : fallback;
}

size_t to_c_attrs(const Attributes& a, const char* extra_name, int64_t extra_value, lamina_attr* out) {
  size_t k = 0;
  for (const auto& i : a) {
    if (extra_name && i.name == extra_name) continue;  // the core's value wins
    lamina_attr& c = out[k++];
    c = lamina_attr{};
    c.name = i.name.c_str();
    c.type = i.type;
    c.count = int32_t(i.ints.size());
    for (size_t j = 0; j < i.ints.size() && j < LAMINA_MAX_DIMS; ++j) c.ints[j] = i.ints[j];
    c.real = i.real;
    c.text = i.text.c_str();
  }
  if (extra_name) {
    lamina_attr& c = out[k++];
    c = lamina_attr{};
    c.name = extra_name;
    c.type = LAMINA_ATTR_INT;
    c.count = 1;
    c.ints[0] = extra_value;
  }
  return k;
}

namespace {

// Attributes as the C ABI carries them. Ops have a handful of attributes, so they live on the stack;
// `extra` appends one integer attribute the core adds for the kernel (reduce_sum's keepdims).
class CAttrs {
 public:
  explicit CAttrs(const Attributes& a, const char* extra_name = nullptr, int64_t extra_value = 0) {
    size_t n = a.size() + (extra_name ? 1 : 0);
    lamina_attr* out = small_.data();
    if (n > small_.size()) {
      big_.resize(n);
      out = big_.data();
    }
    view_ = {int32_t(to_c_attrs(a, extra_name, extra_value, out)), out};
  }
  const lamina_attrs* view() const { return &view_; }

 private:
  std::array<lamina_attr, 8> small_;
  std::vector<lamina_attr> big_;
  lamina_attrs view_{};
};

thread_local bool g_grad_enabled = true;

// LAMINA_PROFILE=1: time spent per op and backend, printed when the process exits.
struct OpProfile {
  std::mutex mutex;
  std::map<std::string, std::pair<double, int64_t>> totals;  // seconds, calls
  ~OpProfile() {
    std::vector<std::pair<std::string, std::pair<double, int64_t>>> rows(totals.begin(), totals.end());
    std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.first > b.second.first; });
    double all = 0;
    for (auto& r : rows) all += r.second.first;
    std::fprintf(stderr, "\nlamina op profile (%.3f s in kernels)\n", all);
    for (auto& [name, t] : rows)
      std::fprintf(stderr, "  %-36s %9.3f s %5.1f%% %9lld calls\n", name.c_str(), t.first,
                   all > 0 ? 100.0 * t.first / all : 0.0, static_cast<long long>(t.second));
  }
};
OpProfile* profile() {
  static OpProfile* p = std::getenv("LAMINA_PROFILE") ? new OpProfile : nullptr;
  static bool registered = p && std::atexit([] { delete profile(); }) == 0;
  (void)registered;
  return p;
}
std::atomic<uint64_t> g_sequence{0};

// ------------------------------------------------------------------------------------------------
// Shape rules

std::string op_context(const std::string& op, const std::vector<Shape>& in) {
  std::string s = "op '" + op + "' with input shapes";
  for (auto& sh : in) s += " " + shape_to_string(sh);
  return s;
}
std::string op_context(const std::string& op, const ShapeList& in) {
  return op_context(op, in.to_vector());
}

void need_inputs(const std::string& op, const ShapeList& in, size_t n) {
  if (in.size() != n)
    throw Error("op '" + op + "' takes " + std::to_string(n) + " inputs, got " + std::to_string(in.size()));
}

// The output shapes of a one-output op (moved in: shapes end up in the output tensor).
std::vector<Shape> one_shape(Shape s) {
  std::vector<Shape> out;
  out.push_back(std::move(s));
  return out;
}

Shape broadcast_shapes(const std::string& op, const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw Error(op_context(op, {a, b}) + ": shapes cannot be broadcast together (dimension " +
                  std::to_string(i) + ": " + std::to_string(da) + " vs " + std::to_string(db) + ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> pair_attr(const Attributes& a, const char* name, std::vector<int64_t> fallback,
                               size_t n) {
  auto v = a.get_ints(name, std::move(fallback));
  if (v.size() != n)
    throw Error(std::string("op attribute '") + name + "' needs " + std::to_string(n) + " values");
  return v;
}

int64_t window_out(const std::string& op, int64_t in, int64_t k, int64_t s, int64_t pad_a, int64_t pad_b) {
  if (s < 1) throw Error("op '" + op + "': strides must be positive");
  int64_t span = in + pad_a + pad_b - k;
  if (span < 0)
    throw Error("op '" + op + "': window of " + std::to_string(k) + " does not fit an input of " +
                std::to_string(in) + " (with padding " + std::to_string(pad_a) + "+" + std::to_string(pad_b) +
                "); the input is too small for this layer — use padding \"same\" or a smaller kernel");
  return span / s + 1;
}

Shape conv_out(const std::string& op, const Shape& x, const Shape& w, const Attributes& a) {
  if (x.size() != 4) throw Error(op_context(op, {x, w}) + ": input must be (N, H, W, C)");
  if (w.size() != 4) throw Error(op_context(op, {x, w}) + ": kernel must be (KH, KW, C, O)");
  if (x[3] != w[2])
    throw Error(op_context(op, {x, w}) + ": input has " + std::to_string(x[3]) +
                " channels, the kernel expects " + std::to_string(w[2]));
  auto s = pair_attr(a, "strides", {1, 1}, 2);
  auto p = pair_attr(a, "pads", {0, 0, 0, 0}, 4);
  return {x[0], window_out(op, x[1], w[0], s[0], p[0], p[1]), window_out(op, x[2], w[1], s[1], p[2], p[3]),
          w[3]};
}

Shape pool_out(const std::string& op, const Shape& x, const Attributes& a) {
  if (x.size() != 4) throw Error(op_context(op, {x}) + ": input must be (N, H, W, C)");
  auto k = pair_attr(a, "pool", {2, 2}, 2);
  auto s = pair_attr(a, "strides", k, 2);
  auto p = pair_attr(a, "pads", {0, 0, 0, 0}, 4);
  if (k[0] < 1 || k[1] < 1) throw Error("op '" + op + "': pool size must be positive");
  return {x[0], window_out(op, x[1], k[0], s[0], p[0], p[1]), window_out(op, x[2], k[1], s[1], p[2], p[3]),
          x[3]};
}

// (M, N) of matmul's result, checking the inner dimensions.
Shape matmul_out(const std::string& op, const ShapeList& in, const Attributes& a) {
  const Shape &x = in[0], &y = in[1];
  if (x.size() != 2 || y.size() != 2) throw Error(op_context(op, in) + ": both matrices must be 2-D");
  bool ta = a.get_int("transpose_a", 0), tb = a.get_int("transpose_b", 0);
  int64_t m = ta ? x[1] : x[0], k = ta ? x[0] : x[1];
  int64_t k2 = tb ? y[1] : y[0], n = tb ? y[0] : y[1];
  if (k != k2)
    throw Error(op_context(op, in) + ": inner dimensions differ (" + std::to_string(k) + " vs " +
                std::to_string(k2) + ")");
  return {m, n};
}

// The activation a fused op applies to its result. Each is differentiable from its output alone,
// which is what lets the fused op keep no pre-activation tensor.
enum class Activation { linear, relu, sigmoid, tanh };

Activation read_activation(const std::string& op, const Attributes& a) {
  const Attributes::Item* item = a.find("activation");
  if (!item) return Activation::linear;
  if (item->type != LAMINA_ATTR_STRING)
    throw Error("op '" + op + "': attribute 'activation' must be a string (linear, relu, sigmoid, tanh)");
  const std::string& s = item->text;
  if (s == "linear" || s.empty()) return Activation::linear;
  if (s == "relu") return Activation::relu;
  if (s == "sigmoid") return Activation::sigmoid;
  if (s == "tanh") return Activation::tanh;
  throw Error("op '" + op + "': unknown activation '" + s + "' (known: linear, relu, sigmoid, tanh)");
}

// The fused op's bias: one value per output channel, shape (n,).
void check_bias(const std::string& op, const ShapeList& in, size_t index, int64_t n) {
  const Shape& b = in[index];
  if (b.size() != 1 || b[0] != n)
    throw Error(op_context(op, in) + ": the bias must have shape (" + std::to_string(n) +
                ",), one value per output");
}

// ------------------------------------------------------------------------------------------------
// Gradient helpers

// Sums `g` down to `shape` (undoing broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape) {
  const Shape& gs = g.shape();
  if (gs == shape) return g;
  size_t lead = gs.size() - shape.size();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < gs.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && gs[i] != 1)) axes.push_back(int64_t(i));
  Tensor r = ops::reduce_sum(g, axes, true);
  return ops::reshape(r, shape);
}

using Grads = std::vector<Tensor>;

bool needs_grad(const Tensor& t) {
  return t.impl()->requires_grad || t.impl()->grad_fn;
}
// Whether input i of the node needs a gradient (skips e.g. the data gradient of the first layer).
bool wants(const Node& n, size_t i) {
  return needs_grad(n.inputs[i]);
}

Tensor apply_activation(Activation act, const Tensor& z) {
  switch (act) {
    case Activation::relu:
      return ops::relu(z);
    case Activation::sigmoid:
      return ops::sigmoid(z);
    case Activation::tanh:
      return ops::tanh(z);
    case Activation::linear:
      break;
  }
  return z;
}
// The gradient before the activation, from the activation's output y and the gradient dy. relu's
// rule takes its input, but y > 0 exactly where the input is, so its output serves as well.
Tensor activation_gradient(Activation act, const Tensor& y, const Tensor& dy) {
  switch (act) {
    case Activation::relu:
      return run_op("relu_backward", {y, dy})[0];
    case Activation::sigmoid:
      return run_op("sigmoid_backward", {y, dy})[0];
    case Activation::tanh:
      return run_op("tanh_backward", {y, dy})[0];
    case Activation::linear:
      break;
  }
  return dy;
}

// Optimizer updates: every input has the parameter's shape, and the outputs are the parameter and
// the slots (every input but the gradient, input 1).
std::vector<Shape> update_shapes(const std::string& op, const ShapeList& in, size_t min_inputs,
                                 size_t max_inputs) {
  if (in.size() < min_inputs || in.size() > max_inputs)
    throw Error("op '" + op + "' takes " + std::to_string(min_inputs) +
                (max_inputs > min_inputs ? " or " + std::to_string(max_inputs) : std::string()) +
                " inputs (param, grad, slots...), got " + std::to_string(in.size()));
  for (size_t i = 1; i < in.size(); ++i)
    if (in[i] != in[0])
      throw Error(op_context(op, in) + ": the gradient and every slot must have the parameter's shape");
  std::vector<Shape> out{in[0]};
  for (size_t i = 2; i < in.size(); ++i) out.push_back(in[i]);
  return out;
}

void define_ops(std::vector<std::unique_ptr<OpDef>>& defs) {
  auto def = [&](const std::string& name) -> OpDef& {
    defs.push_back(std::make_unique<OpDef>());
    defs.back()->name = name;
    defs.back()->id = int(defs.size() - 1);
    return *defs.back();
  };
  auto same_shape = [](const ShapeList& in, const Attributes&) { return one_shape(in[0]); };
  auto unary = [&](const std::string& name, BackwardFn backward) {
    OpDef& d = def(name);
    d.infer = [name](const ShapeList& in, const Attributes&) {
      need_inputs(name, in, 1);
      return one_shape(in[0]);
    };
    d.backward = std::move(backward);
  };
  auto pair_same = [&](const std::string& name) -> OpDef& {
    OpDef& d = def(name);
    d.infer = [name](const ShapeList& in, const Attributes&) {
      need_inputs(name, in, 2);
      if (in[0] != in[1]) throw Error(op_context(name, in) + ": both inputs must have the same shape");
      return one_shape(in[0]);
    };
    return d;
  };

  OpDef& copy = def("copy");
  copy.infer = same_shape;
  copy.backward = [](const Node&, const Grads& g) { return Grads{g[0]}; };

  OpDef& fill = def("fill");
  fill.shape_only_inputs = true;
  fill.infer = [](const ShapeList& in, const Attributes& a) {
    if (in.size() == 1) return one_shape(in[0]);
    return one_shape(a.get_ints("shape", {}));
  };

  unary("neg", [](const Node&, const Grads& g) { return Grads{ops::neg(g[0])}; });
  unary("exp", [](const Node& n, const Grads& g) { return Grads{ops::mul(g[0], n.outputs[0])}; });
  unary("log", [](const Node& n, const Grads& g) { return Grads{ops::div(g[0], n.inputs[0])}; });
  unary("sqrt",
        [](const Node& n, const Grads& g) { return Grads{ops::div(ops::scale(g[0], 0.5), n.outputs[0])}; });
  unary("square",
        [](const Node& n, const Grads& g) { return Grads{ops::mul(ops::scale(g[0], 2.0), n.inputs[0])}; });
  unary("relu", [](const Node& n, const Grads& g) {
    return Grads{run_op("relu_backward", {n.inputs[0], g[0]})[0]};
  });
  unary("sigmoid", [](const Node& n, const Grads& g) {
    return Grads{run_op("sigmoid_backward", {n.outputs[0], g[0]})[0]};
  });
  unary("tanh", [](const Node& n, const Grads& g) {
    return Grads{run_op("tanh_backward", {n.outputs[0], g[0]})[0]};
  });
  unary("scale", [](const Node& n, const Grads& g) {
    return Grads{ops::scale(g[0], n.attrs.get_float("alpha", 1.0))};
  });
  unary("clip", [](const Node& n, const Grads& g) {
    return Grads{run_op("clip_backward", {n.inputs[0], g[0]}, n.attrs)[0]};
  });
  for (const char* forward : {"relu", "sigmoid", "tanh", "clip"}) pair_same(std::string(forward) + "_backward").gradient_of = forward;

  auto binary = [&](const std::string& name, BackwardFn backward) {
    OpDef& d = def(name);
    d.broadcasts = true;
    d.infer = [name](const ShapeList& in, const Attributes&) {
      need_inputs(name, in, 2);
      return one_shape(broadcast_shapes(name, in[0], in[1]));
    };
    d.backward = std::move(backward);
  };
  binary("add", [](const Node& n, const Grads& g) {
    return Grads{wants(n, 0) ? sum_to(g[0], n.inputs[0].shape()) : Tensor(),
                 wants(n, 1) ? sum_to(g[0], n.inputs[1].shape()) : Tensor()};
  });
  binary("sub", [](const Node& n, const Grads& g) {
    return Grads{wants(n, 0) ? sum_to(g[0], n.inputs[0].shape()) : Tensor(),
                 wants(n, 1) ? sum_to(ops::neg(g[0]), n.inputs[1].shape()) : Tensor()};
  });
  binary("mul", [](const Node& n, const Grads& g) {
    const Tensor &a = n.inputs[0], &b = n.inputs[1];
    return Grads{wants(n, 0) ? sum_to(ops::mul(g[0], b), a.shape()) : Tensor(),
                 wants(n, 1) ? sum_to(ops::mul(g[0], a), b.shape()) : Tensor()};
  });
  binary("div", [](const Node& n, const Grads& g) {
    const Tensor &a = n.inputs[0], &b = n.inputs[1];
    Tensor da = wants(n, 0) ? sum_to(ops::div(g[0], b), a.shape()) : Tensor();
    Tensor db =
        wants(n, 1) ? sum_to(ops::neg(ops::div(ops::mul(g[0], n.outputs[0]), b)), b.shape()) : Tensor();
    return Grads{da, db};
  });

  // reduce_sum(x; axes, keepdims): kernels always see y at x's rank (summed axes of size 1, and
  // keepdims = 1 among their attributes); without keepdims the core drops those axes from y's shape.
  OpDef& reduce = def("reduce_sum");
  reduce.kernel_keeps_rank = true;
  reduce.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("reduce_sum", in, 1);
    Shape kept = in[0];
    for (int64_t axis : a.get_ints("axes", {})) {
      int64_t r = axis < 0 ? axis + int64_t(kept.size()) : axis;
      if (r < 0 || r >= int64_t(kept.size()))
        throw Error(op_context("reduce_sum", in) + ": axis " + std::to_string(axis) + " is out of range");
      kept[size_t(r)] = 1;
    }
    if (a.get_int("keepdims", 0)) return one_shape(kept);
    std::vector<bool> summed(kept.size(), false);
    for (int64_t axis : a.get_ints("axes", {})) summed[size_t(axis < 0 ? axis + int64_t(kept.size()) : axis)] = true;
    Shape out;
    for (size_t i = 0; i < kept.size(); ++i)
      if (!summed[i]) out.push_back(kept[i]);
    return one_shape(out);
  };
  reduce.backward = [](const Node& n, const Grads& g) {
    const Shape& x = n.inputs[0].shape();
    Shape kept = x;
    for (int64_t axis : n.attrs.get_ints("axes", {})) kept[size_t(axis < 0 ? axis + int64_t(x.size()) : axis)] = 1;
    return Grads{ops::mul(ops::full(x, 1.0f), ops::reshape(g[0], kept))};
  };

  OpDef& softmax = def("softmax");
  softmax.infer = same_shape;
  softmax.gives_probabilities = true;
  softmax.backward = [](const Node& n, const Grads& g) {
    const Tensor& y = n.outputs[0];
    Tensor dot = ops::reduce_sum(ops::mul(g[0], y), {-1}, true);
    return Grads{ops::mul(y, ops::sub(g[0], dot))};
  };
  OpDef& log_softmax = def("log_softmax");
  log_softmax.infer = same_shape;
  log_softmax.backward = [](const Node& n, const Grads& g) {
    Tensor total = ops::reduce_sum(g[0], {-1}, true);
    return Grads{ops::sub(g[0], ops::mul(ops::exp(n.outputs[0]), total))};
  };

  // Losses: one op forward and one backward, instead of a chain of element-wise ops, reductions and
  // their gradient rules (a dozen kernel calls, which cost more than the arithmetic on small batches).
  // Inputs: prediction (or logits) and target of the same shape; output: the scalar loss, shape ().
  // `over_classes`: the last axis holds the classes; `target_gradient`: the target gets -dp.
  auto loss_pair = [&](const std::string& name, bool over_classes, bool target_gradient, FallbackFn forward,
                       FallbackFn backward) {
    OpDef& d = def(name);
    d.infer = [name, over_classes](const ShapeList& in, const Attributes&) {
      need_inputs(name, in, 2);
      if (in[0] != in[1])
        throw Error(op_context(name, in) + ": the prediction and the target must have the same shape");
      if (over_classes && in[0].empty())
        throw Error(op_context(name, in) + ": the logits need a class axis (the last)");
      return one_shape(Shape{});
    };
    d.fallback = std::move(forward);
    const std::string backward_name = name + "_backward";
    OpDef& b = def(backward_name);
    b.gradient_of = name;
    b.infer = [backward_name](const ShapeList& in, const Attributes&) {
      need_inputs(backward_name, in, 3);
      if (in[0] != in[1] || shape_size(in[2]) != 1)
        throw Error(op_context(backward_name, in) +
                    ": takes the prediction, the target (same shape) and the loss's gradient (one value)");
      return one_shape(in[0]);
    };
    b.fallback = std::move(backward);
    d.backward = [&b, target_gradient](const Node& n, const Grads& g) {
      Tensor d_pred = run_op(b, {n.inputs[0], n.inputs[1], g[0]}, {})[0];
      Tensor d_target;
      if (wants(n, 1)) {
        if (!target_gradient) throw Error("op '" + n.op->name + "' has no gradient for its target");
        d_target = ops::neg(d_pred);
      }
      return Grads{d_pred, d_target};
    };
  };
  // The rows of a loss over classes: every element but the last axis.
  auto class_rows = [](const Tensor& z) {
    return double(std::max<int64_t>(z.size() / std::max<int64_t>(z.dim(-1), 1), 1));
  };
  // mean((p - t)²) over every element; d/dp = 2 (p - t) / n.
  loss_pair(
      "mean_squared_error", false, true,
      [](const std::vector<Tensor>& in, const Attributes&) {
        return std::vector<Tensor>{ops::mean(ops::square(ops::sub(in[0], in[1])))};
      },
      [](const std::vector<Tensor>& in, const Attributes&) {
        double n = double(std::max<int64_t>(in[0].size(), 1));
        return std::vector<Tensor>{ops::mul(ops::scale(ops::sub(in[0], in[1]), 2.0 / n), in[2])};
      });
  // -Σ t · log_softmax(z) / N over rows of the last axis (N rows); d/dz = (softmax(z) · Σt - t) / N,
  // Σt over the row (1 for one-hot and probability targets). The target is data: no gradient.
  loss_pair(
      "softmax_cross_entropy", true, false,
      [class_rows](const std::vector<Tensor>& in, const Attributes&) {
        return std::vector<Tensor>{
            ops::scale(ops::sum(ops::mul(in[1], ops::log_softmax(in[0]))), -1.0 / class_rows(in[0]))};
      },
      [class_rows](const std::vector<Tensor>& in, const Attributes&) {
        Tensor mass = ops::reduce_sum(in[1], {-1}, true);
        Tensor d = ops::sub(ops::mul(ops::softmax(in[0]), mass), in[1]);
        return std::vector<Tensor>{ops::mul(ops::scale(d, 1.0 / class_rows(in[0])), in[2])};
      });

  // The gradients of y = op(a)·op(b) from dy, for whichever of a and b the node wants.
  auto matmul_grads = [](const Node& n, const Tensor& dy) {
    const Tensor &a = n.inputs[0], &b = n.inputs[1];
    bool ta = n.attrs.get_int("transpose_a", 0), tb = n.attrs.get_int("transpose_b", 0);
    Tensor da, db;
    bool wa = wants(n, 0), wb = wants(n, 1);
    if (!ta && !tb) {
      if (wa) da = ops::matmul(dy, b, false, true);
      if (wb) db = ops::matmul(a, dy, true, false);
    } else if (!ta && tb) {
      if (wa) da = ops::matmul(dy, b, false, false);
      if (wb) db = ops::matmul(dy, a, true, false);
    } else if (ta && !tb) {
      if (wa) da = ops::matmul(b, dy, false, true);
      if (wb) db = ops::matmul(a, dy, false, false);
    } else {
      if (wa) da = ops::matmul(b, dy, true, true);
      if (wb) db = ops::matmul(dy, a, true, true);
    }
    return Grads{da, db};
  };

  OpDef& matmul = def("matmul");
  matmul.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("matmul", in, 2);
    return one_shape(matmul_out("matmul", in, a));
  };
  matmul.backward = [matmul_grads](const Node& n, const Grads& g) { return matmul_grads(n, g[0]); };

  // matmul_bias: activation(op(a)·op(b) + bias), bias (N,) added to every row.
  OpDef& matmul_bias = def("matmul_bias");
  matmul_bias.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("matmul_bias", in, 3);
    Shape y = matmul_out("matmul_bias", in, a);
    check_bias("matmul_bias", in, 2, y[1]);
    read_activation("matmul_bias", a);
    return one_shape(y);
  };
  matmul_bias.backward = [matmul_grads](const Node& n, const Grads& g) {
    Tensor dz = activation_gradient(read_activation("matmul_bias", n.attrs), n.outputs[0], g[0]);
    Grads out = matmul_grads(n, dz);
    out.push_back(wants(n, 2) ? ops::reduce_sum(dz, {0}, false) : Tensor());
    return out;
  };
  matmul_bias.fallback = [](const std::vector<Tensor>& in, const Attributes& a) {
    Tensor z = ops::matmul(in[0], in[1], a.get_int("transpose_a", 0), a.get_int("transpose_b", 0));
    z = ops::add(z, ops::reshape(in[2], {1, in[2].dim(0)}));
    return std::vector<Tensor>{apply_activation(read_activation("matmul_bias", a), z)};
  };

  // dx and dw (and, for conv2d_bias, db) of a convolution from the gradient before its activation.
  auto conv_grads = [](const Node& n, const Tensor& dz, bool with_bias) {
    Attributes a = n.attrs;
    a.set("input_shape", n.inputs[0].shape());
    a.set("filter_shape", n.inputs[1].shape());
    Grads out(with_bias ? 3 : 2);
    if (wants(n, 0)) out[0] = run_op("conv2d_backward_data", {dz, n.inputs[1]}, a)[0];
    bool want_db = with_bias && wants(n, 2);
    if (wants(n, 1) && want_db) {
      std::vector<Tensor> both = run_op("conv2d_backward_filter_bias", {n.inputs[0], dz}, a);
      out[1] = both[0];
      out[2] = both[1];
    } else if (wants(n, 1)) {
      out[1] = run_op("conv2d_backward_filter", {n.inputs[0], dz}, a)[0];
    } else if (want_db) {
      out[2] = ops::reduce_sum(dz, {0, 1, 2}, false);
    }
    return out;
  };

  OpDef& conv = def("conv2d");
  conv.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("conv2d", in, 2);
    return one_shape(conv_out("conv2d", in[0], in[1], a));
  };
  conv.backward = [conv_grads](const Node& n, const Grads& g) { return conv_grads(n, g[0], false); };

  // conv2d_bias: activation(conv2d(x, w) + b), b (O,).
  OpDef& conv_bias = def("conv2d_bias");
  conv_bias.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("conv2d_bias", in, 3);
    Shape y = conv_out("conv2d_bias", in[0], in[1], a);
    check_bias("conv2d_bias", in, 2, y[3]);
    read_activation("conv2d_bias", a);
    return one_shape(y);
  };
  conv_bias.backward = [conv_grads](const Node& n, const Grads& g) {
    Tensor dz = activation_gradient(read_activation("conv2d_bias", n.attrs), n.outputs[0], g[0]);
    return conv_grads(n, dz, true);
  };
  conv_bias.fallback = [](const std::vector<Tensor>& in, const Attributes& a) {
    Tensor z = run_op("conv2d", {in[0], in[1]}, a)[0];
    z = ops::add(z, ops::reshape(in[2], {1, 1, 1, in[2].dim(0)}));
    return std::vector<Tensor>{apply_activation(read_activation("conv2d_bias", a), z)};
  };

  OpDef& conv_bd = def("conv2d_backward_data");
  conv_bd.gradient_of = "conv2d";
  conv_bd.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("conv2d_backward_data", in, 2);
    Shape x = a.get_ints("input_shape", {});
    if (conv_out("conv2d_backward_data", x, in[1], a) != in[0])
      throw Error(op_context("conv2d_backward_data", in) + ": dy does not match input_shape " +
                  shape_to_string(x));
    return one_shape(x);
  };
  OpDef& conv_bf = def("conv2d_backward_filter");
  conv_bf.gradient_of = "conv2d";
  conv_bf.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("conv2d_backward_filter", in, 2);
    Shape w = a.get_ints("filter_shape", {});
    if (conv_out("conv2d_backward_filter", in[0], w, a) != in[1])
      throw Error(op_context("conv2d_backward_filter", in) + ": dy does not match filter_shape " +
                  shape_to_string(w));
    return one_shape(w);
  };
  // conv2d_backward_filter_bias: dw as conv2d_backward_filter, and db = Σ dy over (N, OH, OW),
  // in one pass over dy.
  OpDef& conv_bfb = def("conv2d_backward_filter_bias");
  conv_bfb.gradient_of = "conv2d_bias";
  conv_bfb.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("conv2d_backward_filter_bias", in, 2);
    Shape w = a.get_ints("filter_shape", {});
    if (conv_out("conv2d_backward_filter_bias", in[0], w, a) != in[1])
      throw Error(op_context("conv2d_backward_filter_bias", in) + ": dy does not match filter_shape " +
                  shape_to_string(w));
    return std::vector<Shape>{w, {w[3]}};
  };
  conv_bfb.fallback = [](const std::vector<Tensor>& in, const Attributes& a) {
    Tensor dw = run_op("conv2d_backward_filter", in, a)[0];
    return std::vector<Tensor>{dw, ops::reduce_sum(in[1], {0, 1, 2}, false)};
  };

  OpDef& maxpool = def("max_pool2d");
  maxpool.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("max_pool2d", in, 1);
    return one_shape(pool_out("max_pool2d", in[0], a));
  };
  maxpool.backward = [](const Node& n, const Grads& g) {
    return Grads{run_op("max_pool2d_backward", {n.inputs[0], g[0]}, n.attrs)[0]};
  };
  OpDef& maxpool_b = def("max_pool2d_backward");
  maxpool_b.gradient_of = "max_pool2d";
  maxpool_b.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("max_pool2d_backward", in, 2);
    if (pool_out("max_pool2d_backward", in[0], a) != in[1])
      throw Error(op_context("max_pool2d_backward", in) + ": dy does not match the pooled shape");
    return one_shape(in[0]);
  };
  OpDef& avgpool = def("avg_pool2d");
  avgpool.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("avg_pool2d", in, 1);
    return one_shape(pool_out("avg_pool2d", in[0], a));
  };
  avgpool.backward = [](const Node& n, const Grads& g) {
    Attributes a = n.attrs;
    a.set("input_shape", n.inputs[0].shape());
    return Grads{run_op("avg_pool2d_backward", {g[0]}, a)[0]};
  };
  OpDef& avgpool_b = def("avg_pool2d_backward");
  avgpool_b.gradient_of = "avg_pool2d";
  avgpool_b.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("avg_pool2d_backward", in, 1);
    Shape x = a.get_ints("input_shape", {});
    if (pool_out("avg_pool2d_backward", x, a) != in[0])
      throw Error(op_context("avg_pool2d_backward", in) + ": dy does not match input_shape " +
                  shape_to_string(x));
    return one_shape(x);
  };

  OpDef& dropout = def("dropout_mask");
  dropout.shape_only_inputs = true;
  dropout.infer = [](const ShapeList& in, const Attributes& a) {
    double rate = a.get_float("rate", 0.0);
    if (!(rate >= 0.0 && rate < 1.0))
      throw Error("op 'dropout_mask': rate must be in [0, 1), got " + std::to_string(rate));
    if (in.size() == 1) return one_shape(in[0]);
    return one_shape(a.get_ints("shape", {}));
  };

  OpDef& reshape = def("reshape");
  reshape.has_kernel = false;
  reshape.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("reshape", in, 1);
    Shape target = a.get_ints("shape", {});
    int64_t known = 1, unknown = -1;
    for (size_t i = 0; i < target.size(); ++i) {
      if (target[i] == -1) {
        if (unknown >= 0)
          throw Error("reshape to " + shape_to_string(target) + ": only one dimension may be -1");
        unknown = int64_t(i);
      } else if (target[i] < 0) {
        throw Error("reshape to " + shape_to_string(target) + ": negative dimension");
      } else {
        known *= target[i];
      }
    }
    int64_t total = shape_size(in[0]);
    if (unknown >= 0) {
      if (known == 0 || total % known != 0)
        throw Error("cannot reshape " + shape_to_string(in[0]) + " to " + shape_to_string(target));
      target[size_t(unknown)] = total / known;
    } else if (known != total) {
      throw Error("cannot reshape " + shape_to_string(in[0]) + " (" + std::to_string(total) + " values) to " +
                  shape_to_string(target) + " (" + std::to_string(known) + " values)");
    }
    return one_shape(target);
  };
  reshape.backward = [](const Node& n, const Grads& g) {
    return Grads{ops::reshape(g[0], n.inputs[0].shape())};
  };

  define_layout_ops(def);

  // Optimizer updates, one op per parameter instead of a dozen element-wise passes. The fallbacks
  // are the same rules written with basic ops, as the optimizers were before these ops existed.
  auto update = [&](const std::string& name, size_t min_inputs, size_t max_inputs, FallbackFn fallback) {
    OpDef& d = def(name);
    d.in_place_update = true;
    d.infer = [name, min_inputs, max_inputs](const ShapeList& in, const Attributes&) {
      return update_shapes(name, in, min_inputs, max_inputs);
    };
    d.fallback = std::move(fallback);
  };
  update("sgd_update", 2, 3, [](const std::vector<Tensor>& in, const Attributes& a) {
    double lr = a.get_float("lr", 0.01), momentum = a.get_float("momentum", 0.0);
    const Tensor &p = in[0], &g = in[1];
    if (in.size() == 2) {
      assign(p, ops::add(p, ops::scale(g, -lr)));
      return in;
    }
    Tensor v = ops::add(ops::scale(in[2], momentum), ops::scale(g, -lr));
    Tensor step = a.get_int("nesterov", 0) ? ops::add(ops::scale(v, momentum), ops::scale(g, -lr)) : v;
    Tensor updated = ops::add(p, step);
    assign(in[2], v);
    assign(p, updated);
    return in;
  });
  update("adadelta_update", 4, 4, [](const std::vector<Tensor>& in, const Attributes& a) {
    double lr = a.get_float("lr", 1.0), rho = a.get_float("rho", 0.95), eps = a.get_float("epsilon", 1e-7);
    const Tensor &p = in[0], &g = in[1], &acc = in[2], &delta_acc = in[3];
    Tensor acc2 = ops::add(ops::scale(acc, rho), ops::scale(ops::square(g), 1.0 - rho));
    Tensor delta = ops::div(ops::mul(g, ops::sqrt(ops::scale(delta_acc, 1.0, eps))),
                            ops::sqrt(ops::scale(acc2, 1.0, eps)));
    Tensor delta_acc2 = ops::add(ops::scale(delta_acc, rho), ops::scale(ops::square(delta), 1.0 - rho));
    Tensor updated = ops::add(p, ops::scale(delta, -lr));
    assign(acc, acc2);
    assign(delta_acc, delta_acc2);
    assign(p, updated);
    return in;
  });
  update("adam_update", 4, 5, [](const std::vector<Tensor>& in, const Attributes& a) {
    double alpha = a.get_float("alpha", 0.001), b1 = a.get_float("beta_1", 0.9),
           b2 = a.get_float("beta_2", 0.999), eps = a.get_float("epsilon", 1e-7);
    const Tensor &p = in[0], &g = in[1];
    Tensor m = ops::add(ops::scale(in[2], b1), ops::scale(g, 1.0 - b1));
    Tensor v = ops::add(ops::scale(in[3], b2), ops::scale(ops::square(g), 1.0 - b2));
    Tensor denominator_source = v, v_hat;
    if (in.size() == 5) {
      v_hat = ops::add(in[4], ops::relu(ops::sub(v, in[4])));
      denominator_source = v_hat;
    }
    Tensor updated =
        ops::sub(p, ops::div(ops::scale(m, alpha), ops::scale(ops::sqrt(denominator_source), 1.0, eps)));
    assign(in[2], m);
    assign(in[3], v);
    if (in.size() == 5) assign(in[4], v_hat);
    assign(p, updated);
    return in;
  });
  update("rmsprop_update", 3, 4, [](const std::vector<Tensor>& in, const Attributes& a) {
    double lr = a.get_float("lr", 0.001), rho = a.get_float("rho", 0.9), eps = a.get_float("epsilon", 1e-7),
           momentum = a.get_float("momentum", 0.0);
    const Tensor &p = in[0], &g = in[1];
    Tensor v = ops::add(ops::scale(in[2], rho), ops::scale(ops::square(g), 1.0 - rho));
    Tensor step = ops::div(ops::scale(g, lr), ops::scale(ops::sqrt(v), 1.0, eps));
    Tensor m;
    if (in.size() == 4) {
      m = ops::add(ops::scale(in[3], momentum), step);
      step = m;
    }
    Tensor updated = ops::sub(p, step);
    assign(in[2], v);
    if (in.size() == 4) assign(in[3], m);
    assign(p, updated);
    return in;
  });
}

// Looks ops up by name without building a std::string for the key.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct OpTable {
  std::vector<std::unique_ptr<OpDef>> defs;
  std::vector<const OpDef*> list;
  std::unordered_map<std::string, const OpDef*, NameHash, std::equal_to<>> by_name;
  OpTable() {
    define_ops(defs);
    for (auto& d : defs) {
      list.push_back(d.get());
      by_name[d->name] = d.get();
    }
  }
};
OpTable& mutable_op_table() {
  static OpTable table;
  return table;
}
const OpTable& op_table() {
  return mutable_op_table();
}

const OpDef& need_op(std::string_view name) {
  auto& t = op_table();
  auto it = t.by_name.find(name);
  if (it == t.by_name.end())
    throw Error("unknown op '" + std::string(name) + "' (see docs/ops.md for the op set)");
  return *it->second;
}

// An op looked up once per call site.
#define LAMINA_OP(name)                            \
  ([]() -> const OpDef& {                          \
    static const OpDef& cached_op = need_op(name); \
    return cached_op;                              \
  }())

// Views for a kernel call; ops have few operands, so they live on the stack.
class Views {
 public:
  explicit Views(size_t n) {
    data_ = small_.data();
    if (n > small_.size()) {
      big_.resize(n);
      data_ = big_.data();
    }
  }
  lamina_view& operator[](size_t i) { return data_[i]; }
  const lamina_view* data() const { return data_; }

 private:
  std::array<lamina_view, 6> small_;
  std::vector<lamina_view> big_;
  lamina_view* data_;
};

}  // namespace

void profile_record(const std::string& name, double seconds) {
  OpProfile* prof = profile();
  if (!prof) return;
  std::lock_guard lock(prof->mutex);
  auto& slot = prof->totals[name];
  slot.first += seconds;
  slot.second += 1;
}
bool profiling() {
  return profile() != nullptr;
}

namespace {

// Calls `backend`'s kernel for `op`, timing it under LAMINA_PROFILE.
void call_kernel(const OpDef& op, BackendEntry& backend, const Views& in, size_t n_in, const Views& out,
                 size_t n_out, const lamina_attrs* attrs, const std::vector<Tensor>& given) {
  OpProfile* prof = profile();
  auto start = prof ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  lamina_error error{};
  if (backend.kernels[size_t(op.id)](backend.table.self, in.data(), int32_t(n_in), out.data(), int32_t(n_out),
                                     attrs, &error) != LAMINA_OK)
    throw Error(op_context(op.name, ShapeList(given)) + " failed on backend '" + backend.name +
                "': " + error.message);
  if (prof) {
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::lock_guard lock(prof->mutex);
    auto& slot = prof->totals[backend.name + " " + op.name];
    slot.first += dt;
    slot.second += 1;
  }
}

// Runs a kernel on freshly allocated outputs.
std::vector<Tensor> launch(const OpDef& op, BackendEntry& backend, const std::vector<Tensor>& given,
                           std::vector<Shape>& out_shapes, const Attributes& attrs) {
  std::vector<Tensor> outputs;
  outputs.reserve(out_shapes.size());
  bool empty = false;
  for (Shape& s : out_shapes) {
    empty |= shape_size(s) == 0;
    outputs.push_back(make_tensor(std::move(s), &backend));
  }
  if (empty) return outputs;
  size_t n_in = op.shape_only_inputs ? 0 : given.size();
  Views in(n_in), out(outputs.size());
  std::vector<Tensor> moved;  // copies of inputs from another backend's memory, alive for the call
  for (size_t i = 0; i < n_in; ++i) {
    const Tensor& t = given[i];
    if (reachable(t, backend)) {
      in[i] = view_of(t);
    } else {
      moved.push_back(on_backend(t, backend));
      in[i] = view_of(moved.back());
    }
    // Broadcasting kernels see every input at the output's rank.
    if (op.broadcasts) {
      lamina_view& v = in[i];
      int32_t rank = int32_t(outputs[0].shape().size());
      if (v.ndim < rank) {
        int32_t lead = rank - v.ndim;
        for (int32_t d = v.ndim - 1; d >= 0; --d) v.shape[d + lead] = v.shape[d];
        for (int32_t d = 0; d < lead; ++d) v.shape[d] = 1;
        v.ndim = rank;
      }
    }
  }
  for (size_t i = 0; i < outputs.size(); ++i) out[i] = view_of(outputs[i]);
  bool keepdims = op.kernel_keeps_rank;
  if (keepdims) {  // y at x's rank: each summed axis of size 1 (what the kernel contract says)
    lamina_view& y = out[0];
    const Shape& x = given[0].shape();
    y.ndim = int32_t(x.size());
    for (size_t d = 0; d < x.size(); ++d) y.shape[d] = x[d];
    for (int64_t axis : attrs.get_ints("axes", {})) y.shape[axis < 0 ? axis + int64_t(x.size()) : axis] = 1;
  }
  CAttrs c(attrs, keepdims ? "keepdims" : nullptr, 1);
  call_kernel(op, backend, in, n_in, out, outputs.size(), c.view(), given);
  if (StepRecording* r = active_recording()) {
    if (moved.empty())
      record_launch(*r, op, backend, in.data(), n_in, out.data(), outputs.size(), attrs,
                    keepdims ? "keepdims" : nullptr, 1, given, outputs);
    else
      spoil_recording(*r);  // an input was copied from another backend
  }
  return outputs;
}

// In-place updates: the outputs are inputs 0, 2, 3, ... themselves.
std::vector<Tensor> run_update(const OpDef& op, const std::vector<Tensor>& given, const Attributes& attrs) {
  if (g_grad_enabled)
    for (const Tensor& t : given)
      if (needs_grad(t))
        throw Error("op '" + op.name +
                    "' updates its inputs in place and cannot be recorded for autograd; run it under "
                    "NoGradGuard, as optimizers are");
  if (StepRecording* r = active_recording()) spoil_recording(*r);  // in place: not repeatable
  BackendEntry& backend = Registry::get().active_backend();
  std::vector<Tensor> result{given[0]};
  for (size_t i = 2; i < given.size(); ++i) result.push_back(given[i]);
  if (!backend.supports(op)) {
    if (!op.fallback) throw Error("backend '" + backend.name + "' has no kernel for op '" + op.name + "'");
    op.fallback(given, attrs);
    return result;
  }
  // Parameters in another backend's memory are updated through a copy, then written back.
  bool copied = false;
  for (const Tensor& t : given) copied |= !reachable(t, backend);
  std::vector<Tensor> work;
  if (copied) {
    work = given;
    for (Tensor& t : work)
      if (!reachable(t, backend)) t = on_backend(t, backend);
  }
  const std::vector<Tensor>& operands = copied ? work : given;
  Views in(operands.size()), out(result.size());
  for (size_t i = 0; i < operands.size(); ++i) in[i] = view_of(operands[i]);
  out[0] = in[0];
  for (size_t i = 2; i < operands.size(); ++i) out[i - 1] = in[i];
  if (shape_size(given[0].shape()) > 0) {
    CAttrs c(attrs);
    call_kernel(op, backend, in, operands.size(), out, result.size(), c.view(), given);
  }
  if (copied)
    for (size_t i = 0; i < given.size(); ++i)
      if (i != 1 && work[i].impl() != given[i].impl()) assign(given[i], work[i]);
  return result;
}

}  // namespace

const OpDef* find_op(const std::string& name) {
  auto& t = op_table();
  auto it = t.by_name.find(std::string_view(name));
  return it == t.by_name.end() ? nullptr : it->second;
}
const std::vector<const OpDef*>& all_ops() {
  return op_table().list;
}

// ------------------------------------------------------------------------------------------------
// Plugin ops

namespace {

// Records ops for autograd inside a backward rule (gradients() turns recording off).
struct RecordingGuard {
  bool previous = g_grad_enabled;
  RecordingGuard() { g_grad_enabled = true; }
  ~RecordingGuard() { g_grad_enabled = previous; }
};

Tensor run_composition(const lamina_op_class& c, const std::string& name, const std::vector<Tensor>& in,
                       const Attributes& attrs) {
  std::vector<lamina_tensor> handles;
  for (const Tensor& t : in) handles.push_back(reinterpret_cast<lamina_tensor>(t.impl()));
  CAttrs ca(attrs);
  lamina_tensor out = nullptr;
  lamina_error error{};
  if (c.compose(handles.data(), int32_t(handles.size()), ca.view(), &out, &error) != LAMINA_OK || !out)
    throw Error("op '" + name +
                "': its composition failed: " + (error.message[0] ? error.message : "no output"));
  return Tensor(reinterpret_cast<TensorImpl*>(out), false);
}

}  // namespace

const OpDef& define_plugin_op(const lamina_op_class& c) {
  if (c.struct_size < offsetof(lamina_op_class, kernels) + sizeof(c.kernels) || !c.name || !*c.name ||
      !c.compose || c.n_inputs < 1 || c.n_inputs > LAMINA_MAX_DIMS || c.kernel_count < 0 ||
      (c.kernel_count > 0 && !c.kernels))
    throw Error(std::string("op table '") + (c.name ? c.name : "") +
                "' is incomplete (needs a name, 1 to 8 inputs and a composition)");
  OpTable& t = mutable_op_table();
  std::string name = c.name;
  if (t.by_name.count(name))
    throw Error("an op named '" + name + "' already exists; name plugin ops '<plugin>.<op>'");
  auto def = std::make_unique<OpDef>();
  def->name = name;
  def->id = int(t.defs.size());
  const lamina_op_class table = c;  // the plugin's struct may be a temporary
  def->infer = [table, name](const ShapeList& shapes, const Attributes& attrs) -> std::vector<Shape> {
    if (int32_t(shapes.size()) != table.n_inputs)
      throw Error("op '" + name + "' takes " + std::to_string(table.n_inputs) +
                  (table.n_inputs == 1 ? " input" : " inputs") + ", got " + std::to_string(shapes.size()));
    if (!table.output_shape) return {shapes[0]};
    std::vector<lamina_view> views(shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i) {
      views[i] = lamina_view{};
      views[i].ndim = int32_t(shapes[i].size());
      for (size_t d = 0; d < shapes[i].size() && d < LAMINA_MAX_DIMS; ++d) views[i].shape[d] = shapes[i][d];
    }
    CAttrs ca(attrs);
    int64_t out[LAMINA_MAX_DIMS] = {};
    int32_t ndim = 0;
    lamina_error error{};
    if (table.output_shape(views.data(), int32_t(views.size()), ca.view(), out, &ndim, &error) != LAMINA_OK)
      throw Error("op '" + name + "': " + error.message);
    if (ndim < 0 || ndim > LAMINA_MAX_DIMS) throw Error("op '" + name + "': output rank out of range");
    return {Shape(out, out + ndim)};
  };
  def->fallback = [table, name](const std::vector<Tensor>& in, const Attributes& attrs) {
    return std::vector<Tensor>{run_composition(table, name, in, attrs)};
  };
  // d(inputs) of Σ composition(inputs) · dy: the composition recomputed on detached inputs.
  def->backward = [table, name](const Node& n, const std::vector<Tensor>& g) {
    std::vector<Tensor> leaves;
    for (const Tensor& t : n.inputs) leaves.push_back(detached(t).set_requires_grad(needs_grad(t)));
    Tensor loss;
    {
      RecordingGuard recording;
      Tensor y = run_composition(table, name, leaves, n.attrs);
      loss = ops::sum(ops::mul(y, g[0]));
    }
    return gradients(loss, leaves);
  };
  for (int32_t i = 0; i < c.kernel_count; ++i)
    if (c.kernels[i].backend && c.kernels[i].run)
      def->plugin_kernels.emplace_back(c.kernels[i].backend, c.kernels[i].run);
  const OpDef& added = *def;
  t.defs.push_back(std::move(def));
  t.list.push_back(&added);
  t.by_name[name] = &added;
  return added;
}

bool grad_enabled() {
  return g_grad_enabled;
}
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) {
  g_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_enabled = previous_;
}

static std::vector<Tensor> run_op(const OpDef& op, const std::vector<Tensor>& given,
                                  const Attributes& attrs) {
  for (const Tensor& t : given)
    if (!t.defined()) throw Error("op '" + op.name + "': an input tensor is undefined");
  std::vector<Shape> out_shapes = op.infer(ShapeList(given), attrs);
  if (op.in_place_update) return run_update(op, given, attrs);

  std::vector<Tensor> outputs;
  if (!op.has_kernel) {  // reshape: a view on the same buffer
    auto* impl = new TensorImpl;
    impl->shape = std::move(out_shapes[0]);
    impl->buffer = given[0].impl()->buffer;
    impl->offset = given[0].impl()->offset;
    outputs.push_back(Tensor(impl, false));
  } else {
    BackendEntry& backend = Registry::get().active_backend();
    if (backend.supports(op)) {
      outputs = launch(op, backend, given, out_shapes, attrs);
    } else if (op.fallback) {
      NoGradGuard composed;  // recorded below as the fused op, with its own gradient rule
      outputs = op.fallback(given, attrs);
    } else {
      throw Error("backend '" + backend.name + "' has no kernel for op '" + op.name + "'");
    }
  }

  if (op.gives_probabilities) outputs[0].impl()->logits = given[0];

  if (g_grad_enabled && op.backward) {
    bool any = false;
    for (const Tensor& t : given) any |= needs_grad(t);
    if (any) {
      auto node = std::make_shared<Node>();
      node->op = &op;
      node->inputs = given;
      node->attrs = attrs;
      node->sequence = g_sequence.fetch_add(1);
      node->outputs.reserve(outputs.size());
      for (size_t i = 0; i < outputs.size(); ++i) {
        node->outputs.push_back(detached(outputs[i]));
        outputs[i].impl()->grad_fn = node;
        outputs[i].impl()->output_index = int(i);
      }
    }
  }
  return outputs;
}

std::vector<Tensor> run_op(const std::string& name, const std::vector<Tensor>& given,
                           const Attributes& attrs) {
  return run_op(need_op(name), given, attrs);
}

// Plugins name their ops with string literals, the same pointer on every call: a small per-thread
// table from name pointers to ops skips hashing the name. A hit is confirmed by comparing the text,
// so a buffer reused for another name is still looked up correctly.
std::vector<Tensor> run_named_op(const char* name, const std::vector<Tensor>& given,
                                 const Attributes& attrs) {
  struct Slot {
    const char* name = nullptr;
    const OpDef* op = nullptr;
  };
  thread_local std::array<Slot, 64> slots;
  Slot& slot = slots[(reinterpret_cast<uintptr_t>(name) >> 4) % slots.size()];
  if (!(slot.name == name && slot.op && std::strcmp(name, slot.op->name.c_str()) == 0))
    slot = {name, &need_op(std::string_view(name))};
  return run_op(*slot.op, given, attrs);
}

std::vector<Tensor> gradients(const Tensor& loss, const std::vector<Tensor>& wrt) {
  if (loss.size() != 1)
    throw Error("gradients(): the loss must be a single value, got shape " + shape_to_string(loss.shape()));
  NoGradGuard no_grad;
  std::vector<Tensor> result(wrt.size());
  if (!loss.impl()->grad_fn) return result;

  // Collect the graph, then walk it newest first: a node's output gradients are complete once
  // every node created after it has run.
  std::vector<Node*> nodes;
  std::unordered_map<Node*, size_t> index;  // position in `nodes`
  std::vector<Node*> stack{loss.impl()->grad_fn.get()};
  nodes.reserve(64);
  stack.reserve(64);
  index.reserve(64);
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (!index.emplace(n, 0).second) continue;
    nodes.push_back(n);
    for (const Tensor& t : n->inputs)
      if (t.impl()->grad_fn && !index.count(t.impl()->grad_fn.get()))
        stack.push_back(t.impl()->grad_fn.get());
  }
  std::sort(nodes.begin(), nodes.end(), [](Node* a, Node* b) { return a->sequence > b->sequence; });
  for (size_t i = 0; i < nodes.size(); ++i) index[nodes[i]] = i;
  std::vector<std::vector<Tensor>> out_grads(nodes.size());

  std::unordered_map<TensorImpl*, Tensor> leaf_grads;
  auto accumulate = [](Tensor& slot, const Tensor& g) { slot = slot.defined() ? ops::add(slot, g) : g; };
  {
    Node* top = loss.impl()->grad_fn.get();
    auto& og = out_grads[index[top]];
    og.resize(top->outputs.size());
    og[size_t(loss.impl()->output_index)] = ops::full(loss.shape(), 1.0f);
  }

  for (size_t k = 0; k < nodes.size(); ++k) {
    Node* n = nodes[k];
    auto& og = out_grads[k];
    og.resize(n->outputs.size());
    bool any = false;
    for (size_t i = 0; i < og.size(); ++i) {
      if (!og[i].defined())
        og[i] = ops::full(n->outputs[i].shape(), 0.0f);
      else
        any = true;
    }
    if (!any) continue;
    std::vector<Tensor> ig = n->op->backward(*n, og);
    for (size_t i = 0; i < n->inputs.size() && i < ig.size(); ++i) {
      if (!ig[i].defined()) continue;
      const Tensor& in = n->inputs[i];
      if (in.impl()->grad_fn) {
        Node* producer = in.impl()->grad_fn.get();
        auto& slots = out_grads[index.at(producer)];
        slots.resize(producer->outputs.size());
        accumulate(slots[size_t(in.impl()->output_index)], ig[i]);
      } else if (in.impl()->requires_grad) {
        accumulate(leaf_grads[in.impl()], ig[i]);
      }
    }
    og.clear();
  }
  for (size_t i = 0; i < wrt.size(); ++i) {
    auto it = leaf_grads.find(wrt[i].impl());
    if (it != leaf_grads.end()) result[i] = it->second;
  }
  return result;
}

void assign(const Tensor& target, const Tensor& value) {
  if (StepRecording* r = active_recording()) spoil_recording(*r);  // an overwrite: not repeatable
  if (target.shape() != value.shape())
    throw Error("assign: value of shape " + shape_to_string(value.shape()) +
                " does not fit a tensor of shape " + shape_to_string(target.shape()));
  Buffer& b = *target.impl()->buffer;
  BackendEntry& backend = b.backend ? *b.backend : Registry::get().active_backend();
  const OpDef& copy = LAMINA_OP("copy");
  if (!backend.supports(copy) || (!b.backend && !backend.table.host_memory)) {
    std::vector<float> v = value.to_vector();
    if (!b.backend) {
      std::memcpy(const_cast<Tensor&>(target).host_data(), v.data(), v.size() * sizeof(float));
      return;
    }
    lamina_error error{};
    if (backend.table.copy_in(backend.table.self, b.handle, target.impl()->offset, v.data(),
                              v.size() * sizeof(float), &error) != LAMINA_OK)
      throw Error(std::string("assign failed: ") + error.message);
    return;
  }
  Tensor src = on_backend(value, backend);
  lamina_view in = view_of(src), out = view_of(target);
  lamina_attrs none{0, nullptr};
  lamina_error error{};
  if (backend.kernels[size_t(copy.id)](backend.table.self, &in, 1, &out, 1, &none, &error) != LAMINA_OK)
    throw Error(std::string("assign failed on backend '") + backend.name + "': " + error.message);
}

namespace ops {
static Tensor one(const OpDef& op, const std::vector<Tensor>& in, const Attributes& a = {}) {
  return run_op(op, in, a)[0];
}
Tensor add(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("add"), {a, b});
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("sub"), {a, b});
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("mul"), {a, b});
}
Tensor div(const Tensor& a, const Tensor& b) {
  return one(LAMINA_OP("div"), {a, b});
}
Tensor neg(const Tensor& x) {
  return one(LAMINA_OP("neg"), {x});
}
Tensor exp(const Tensor& x) {
  return one(LAMINA_OP("exp"), {x});
}
Tensor log(const Tensor& x) {
  return one(LAMINA_OP("log"), {x});
}
Tensor sqrt(const Tensor& x) {
  return one(LAMINA_OP("sqrt"), {x});
}
Tensor square(const Tensor& x) {
  return one(LAMINA_OP("square"), {x});
}
Tensor relu(const Tensor& x) {
  return one(LAMINA_OP("relu"), {x});
}
Tensor sigmoid(const Tensor& x) {
  return one(LAMINA_OP("sigmoid"), {x});
}
Tensor tanh(const Tensor& x) {
  return one(LAMINA_OP("tanh"), {x});
}
Tensor scale(const Tensor& x, double alpha, double beta) {
  return one(LAMINA_OP("scale"), {x}, Attributes().set("alpha", alpha).set("beta", beta));
}
Tensor clip(const Tensor& x, double low, double high) {
  return one(LAMINA_OP("clip"), {x}, Attributes().set("low", low).set("high", high));
}
Tensor softmax(const Tensor& x) {
  return one(LAMINA_OP("softmax"), {x});
}
Tensor log_softmax(const Tensor& x) {
  return one(LAMINA_OP("log_softmax"), {x});
}
Tensor reduce_sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdims) {
  return one(LAMINA_OP("reduce_sum"), {x}, Attributes().set("axes", axes).set("keepdims", int64_t(keepdims)));
}
Tensor sum(const Tensor& x) {
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < x.ndim(); ++i) axes.push_back(i);
  return reduce_sum(x, axes, false);
}
Tensor mean(const Tensor& x) {
  return scale(sum(x), 1.0 / double(std::max<int64_t>(x.size(), 1)));
}
Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  return one(LAMINA_OP("matmul"), {a, b},
             Attributes().set("transpose_a", int64_t(ta)).set("transpose_b", int64_t(tb)));
}
Tensor matmul_bias(const Tensor& a, const Tensor& b, const Tensor& bias, bool ta, bool tb,
                   const std::string& activation) {
  return one(LAMINA_OP("matmul_bias"), {a, b, bias},
             Attributes()
                 .set("transpose_a", int64_t(ta))
                 .set("transpose_b", int64_t(tb))
                 .set("activation", activation));
}
Tensor mean_squared_error(const Tensor& pred, const Tensor& target) {
  return one(LAMINA_OP("mean_squared_error"), {pred, target});
}
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& target) {
  return one(LAMINA_OP("softmax_cross_entropy"), {logits, target});
}
Tensor reshape(const Tensor& x, const Shape& shape) {
  return one(LAMINA_OP("reshape"), {x}, Attributes().set("shape", shape));
}
Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  return one(LAMINA_OP("concat"), xs, Attributes().set("axis", axis));
}
Tensor slice(const Tensor& x, const std::vector<int64_t>& axes, const std::vector<int64_t>& begin,
             const std::vector<int64_t>& end, const std::vector<int64_t>& step) {
  Attributes a;
  a.set("axes", axes).set("begin", begin).set("end", end);
  if (!step.empty()) a.set("step", step);
  return one(LAMINA_OP("slice"), {x}, a);
}
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads_before, const std::vector<int64_t>& pads_after,
           double value) {
  return one(LAMINA_OP("pad"), {x},
             Attributes().set("pads_before", pads_before).set("pads_after", pads_after).set("value", value));
}
Tensor transpose(const Tensor& x, const std::vector<int64_t>& perm) {
  return one(LAMINA_OP("transpose"), {x}, Attributes().set("perm", perm));
}
Tensor conv2d(const Tensor& x, const Tensor& w, const std::vector<int64_t>& strides,
              const std::vector<int64_t>& pads) {
  return one(LAMINA_OP("conv2d"), {x, w}, Attributes().set("strides", strides).set("pads", pads));
}
Tensor conv2d_bias(const Tensor& x, const Tensor& w, const Tensor& b, const std::vector<int64_t>& strides,
                   const std::vector<int64_t>& pads, const std::string& activation) {
  return one(LAMINA_OP("conv2d_bias"), {x, w, b},
             Attributes().set("strides", strides).set("pads", pads).set("activation", activation));
}
Tensor max_pool2d(const Tensor& x, const std::vector<int64_t>& pool, const std::vector<int64_t>& strides,
                  const std::vector<int64_t>& pads) {
  return one(LAMINA_OP("max_pool2d"), {x},
             Attributes().set("pool", pool).set("strides", strides).set("pads", pads));
}
Tensor avg_pool2d(const Tensor& x, const std::vector<int64_t>& pool, const std::vector<int64_t>& strides,
                  const std::vector<int64_t>& pads) {
  return one(LAMINA_OP("avg_pool2d"), {x},
             Attributes().set("pool", pool).set("strides", strides).set("pads", pads));
}
Tensor dropout_mask(const Shape& shape, double rate, uint64_t seed) {
  return one(LAMINA_OP("dropout_mask"), {},
             Attributes().set("shape", shape).set("rate", rate).set("seed", int64_t(seed)));
}
Tensor full(const Shape& shape, float value) {
  return one(LAMINA_OP("fill"), {}, Attributes().set("shape", shape).set("value", double(value)));
}
}  // namespace ops

}  // namespace lamina
