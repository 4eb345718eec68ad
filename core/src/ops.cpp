// The op set: shape inference, dispatch to the active backend, and gradient rules.
// Backends only see kernel contracts (docs/ops.md); broadcasting, axes and autograd live here.
#include "internal.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <cstring>
#include <unordered_map>

namespace lamina {

// ------------------------------------------------------------------------------------------------
// Attributes

Attributes& Attributes::set(const std::string& name, int64_t value) {
  Item it{name, LAMINA_ATTR_INT, {value}, 0.0, {}};
  for (auto& i : items_)
    if (i.name == name) return i = it, *this;
  items_.push_back(it);
  return *this;
}
Attributes& Attributes::set(const std::string& name, double value) {
  Item it{name, LAMINA_ATTR_FLOAT, {}, value, {}};
  for (auto& i : items_)
    if (i.name == name) return i = it, *this;
  items_.push_back(it);
  return *this;
}
Attributes& Attributes::set(const std::string& name, const std::vector<int64_t>& values) {
  if (values.size() > LAMINA_MAX_DIMS) throw Error("attribute '" + name + "' has more than 8 values");
  Item it{name, LAMINA_ATTR_INTS, values, 0.0, {}};
  for (auto& i : items_)
    if (i.name == name) return i = it, *this;
  items_.push_back(it);
  return *this;
}
Attributes& Attributes::set(const std::string& name, const std::string& value) {
  Item it{name, LAMINA_ATTR_STRING, {}, 0.0, value};
  for (auto& i : items_)
    if (i.name == name) return i = it, *this;
  items_.push_back(it);
  return *this;
}
const Attributes::Item* Attributes::find(const std::string& name) const {
  for (auto& i : items_)
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
  return i ? i->ints : fallback;
}

namespace {

struct CAttrs {
  std::vector<lamina_attr> items;
  lamina_attrs view{};
  explicit CAttrs(const Attributes& a) {
    for (const auto& i : a.items()) {
      lamina_attr c{};
      c.name = i.name.c_str();
      c.type = i.type;
      c.count = int32_t(i.ints.size());
      for (size_t k = 0; k < i.ints.size() && k < LAMINA_MAX_DIMS; ++k) c.ints[k] = i.ints[k];
      c.real = i.real;
      c.text = i.text.c_str();
      items.push_back(c);
    }
    view = {int32_t(items.size()), items.data()};
  }
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

void need_inputs(const std::string& op, const std::vector<Shape>& in, size_t n) {
  if (in.size() != n)
    throw Error("op '" + op + "' takes " + std::to_string(n) + " inputs, got " + std::to_string(in.size()));
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

std::vector<int64_t> pair_attr(const Attributes& a, const char* name, std::vector<int64_t> fallback, size_t n) {
  auto v = a.get_ints(name, std::move(fallback));
  if (v.size() != n) throw Error(std::string("op attribute '") + name + "' needs " + std::to_string(n) + " values");
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
    throw Error(op_context(op, {x, w}) + ": input has " + std::to_string(x[3]) + " channels, the kernel expects " +
                std::to_string(w[2]));
  auto s = pair_attr(a, "strides", {1, 1}, 2);
  auto p = pair_attr(a, "pads", {0, 0, 0, 0}, 4);
  return {x[0], window_out(op, x[1], w[0], s[0], p[0], p[1]), window_out(op, x[2], w[1], s[1], p[2], p[3]), w[3]};
}

Shape pool_out(const std::string& op, const Shape& x, const Attributes& a) {
  if (x.size() != 4) throw Error(op_context(op, {x}) + ": input must be (N, H, W, C)");
  auto k = pair_attr(a, "pool", {2, 2}, 2);
  auto s = pair_attr(a, "strides", k, 2);
  auto p = pair_attr(a, "pads", {0, 0, 0, 0}, 4);
  if (k[0] < 1 || k[1] < 1) throw Error("op '" + op + "': pool size must be positive");
  return {x[0], window_out(op, x[1], k[0], s[0], p[0], p[1]), window_out(op, x[2], k[1], s[1], p[2], p[3]), x[3]};
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

bool needs_grad(const Tensor& t) { return t.impl()->requires_grad || t.impl()->grad_fn; }
// Whether input i of the node needs a gradient (skips e.g. the data gradient of the first layer).
bool wants(const Node& n, size_t i) { return needs_grad(n.inputs[i]); }

void define_ops(std::vector<std::unique_ptr<OpDef>>& defs) {
  auto def = [&](const std::string& name) -> OpDef& {
    defs.push_back(std::make_unique<OpDef>());
    defs.back()->name = name;
    defs.back()->id = int(defs.size() - 1);
    return *defs.back();
  };
  auto same_shape = [](const std::vector<Shape>& in, Attributes&) { return std::vector<Shape>{in.at(0)}; };
  auto unary = [&](const std::string& name, BackwardFn backward) {
    OpDef& d = def(name);
    d.infer = [name](const std::vector<Shape>& in, Attributes&) {
      need_inputs(name, in, 1);
      return std::vector<Shape>{in[0]};
    };
    d.backward = std::move(backward);
  };
  auto pair_same = [&](const std::string& name) {
    OpDef& d = def(name);
    d.infer = [name](const std::vector<Shape>& in, Attributes&) {
      need_inputs(name, in, 2);
      if (in[0] != in[1])
        throw Error(op_context(name, in) + ": both inputs must have the same shape");
      return std::vector<Shape>{in[0]};
    };
  };

  OpDef& copy = def("copy");
  copy.infer = same_shape;
  copy.backward = [](const Node&, const Grads& g) { return Grads{g[0]}; };

  OpDef& fill = def("fill");
  fill.shape_only_inputs = true;
  fill.infer = [](const std::vector<Shape>& in, Attributes& a) {
    if (in.size() == 1) return std::vector<Shape>{in[0]};
    return std::vector<Shape>{a.get_ints("shape", {})};
  };

  unary("neg", [](const Node&, const Grads& g) { return Grads{ops::neg(g[0])}; });
  unary("exp", [](const Node& n, const Grads& g) { return Grads{ops::mul(g[0], n.outputs[0])}; });
  unary("log", [](const Node& n, const Grads& g) { return Grads{ops::div(g[0], n.inputs[0])}; });
  unary("sqrt", [](const Node& n, const Grads& g) { return Grads{ops::div(ops::scale(g[0], 0.5), n.outputs[0])}; });
  unary("square", [](const Node& n, const Grads& g) { return Grads{ops::mul(ops::scale(g[0], 2.0), n.inputs[0])}; });
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
  pair_same("relu_backward");
  pair_same("sigmoid_backward");
  pair_same("tanh_backward");
  pair_same("clip_backward");

  auto binary = [&](const std::string& name, BackwardFn backward) {
    OpDef& d = def(name);
    d.infer = [name](const std::vector<Shape>& in, Attributes&) {
      need_inputs(name, in, 2);
      return std::vector<Shape>{broadcast_shapes(name, in[0], in[1])};
    };
    d.backward = std::move(backward);
  };
  binary("add", [](const Node& n, const Grads& g) {
    return Grads{sum_to(g[0], n.inputs[0].shape()), sum_to(g[0], n.inputs[1].shape())};
  });
  binary("sub", [](const Node& n, const Grads& g) {
    return Grads{sum_to(g[0], n.inputs[0].shape()), sum_to(ops::neg(g[0]), n.inputs[1].shape())};
  });
  binary("mul", [](const Node& n, const Grads& g) {
    const Tensor &a = n.inputs[0], &b = n.inputs[1];
    return Grads{wants(n, 0) ? sum_to(ops::mul(g[0], b), a.shape()) : Tensor(),
                 wants(n, 1) ? sum_to(ops::mul(g[0], a), b.shape()) : Tensor()};
  });
  binary("div", [](const Node& n, const Grads& g) {
    const Tensor &a = n.inputs[0], &b = n.inputs[1];
    Tensor da = sum_to(ops::div(g[0], b), a.shape());
    Tensor db = sum_to(ops::neg(ops::div(ops::mul(g[0], n.outputs[0]), b)), b.shape());
    return Grads{da, db};
  });

  OpDef& reduce = def("reduce_sum");
  reduce.infer = [](const std::vector<Shape>& in, Attributes& a) {
    need_inputs("reduce_sum", in, 1);
    Shape out = in[0];
    for (int64_t axis : a.get_ints("axes", {})) {
      int64_t r = axis < 0 ? axis + int64_t(out.size()) : axis;
      if (r < 0 || r >= int64_t(out.size()))
        throw Error(op_context("reduce_sum", in) + ": axis " + std::to_string(axis) + " is out of range");
      out[size_t(r)] = 1;
    }
    return std::vector<Shape>{out};
  };
  reduce.backward = [](const Node& n, const Grads& g) {
    return Grads{ops::mul(ops::full(n.inputs[0].shape(), 1.0f), g[0])};
  };

  OpDef& softmax = def("softmax");
  softmax.infer = same_shape;
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

  OpDef& matmul = def("matmul");
  matmul.infer = [](const std::vector<Shape>& in, Attributes& a) {
    need_inputs("matmul", in, 2);
    const Shape &x = in[0], &y = in[1];
    if (x.size() != 2 || y.size() != 2) throw Error(op_context("matmul", in) + ": both inputs must be 2-D");
    bool ta = a.get_int("transpose_a", 0), tb = a.get_int("transpose_b", 0);
    int64_t m = ta ? x[1] : x[0], k = ta ? x[0] : x[1];
    int64_t k2 = tb ? y[1] : y[0], n = tb ? y[0] : y[1];
    if (k != k2)
      throw Error(op_context("matmul", in) + ": inner dimensions differ (" + std::to_string(k) + " vs " +
                  std::to_string(k2) + ")");
    return std::vector<Shape>{{m, n}};
  };
  matmul.backward = [](const Node& n, const Grads& g) {
    const Tensor &a = n.inputs[0], &b = n.inputs[1], &dy = g[0];
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

  OpDef& conv = def("conv2d");
  conv.infer = [](const std::vector<Shape>& in, Attributes& a) {
    need_inputs("conv2d", in, 2);
    return std::vector<Shape>{conv_out("conv2d", in[0], in[1], a)};
  };
  conv.backward = [](const Node& n, const Grads& g) {
    Attributes a = n.attrs;
    a.set("input_shape", n.inputs[0].shape());
    a.set("filter_shape", n.inputs[1].shape());
    Tensor dx, dw;
    if (wants(n, 0)) dx = run_op("conv2d_backward_data", {g[0], n.inputs[1]}, a)[0];
    if (wants(n, 1)) dw = run_op("conv2d_backward_filter", {n.inputs[0], g[0]}, a)[0];
    return Grads{dx, dw};
  };
  OpDef& conv_bd = def("conv2d_backward_data");
  conv_bd.infer = [](const std::vector<Shape>& in, Attributes& a) {
    need_inputs("conv2d_backward_data", in, 2);
    Shape x = a.get_ints("input_shape", {});
    if (conv_out("conv2d_backward_data", x, in[1], a) != in[0])
      throw Error(op_context("conv2d_backward_data", in) + ": dy does not match input_shape " + shape_to_string(x));
    return std::vector<Shape>{x};
  };
  OpDef& conv_bf = def("conv2d_backward_filter");
  conv_bf.infer = [](const std::vector<Shape>& in, Attributes& a) {
    need_inputs("conv2d_backward_filter", in, 2);
    Shape w = a.get_ints("filter_shape", {});
    if (conv_out("conv2d_backward_filter", in[0], w, a) != in[1])
      throw Error(op_context("conv2d_backward_filter", in) + ": dy does not match filter_shape " +
                  shape_to_string(w));
    return std::vector<Shape>{w};
  };

  OpDef& maxpool = def("max_pool2d");
  maxpool.infer = [](const std::vector<Shape>& in, Attributes& a) {
    need_inputs("max_pool2d", in, 1);
    return std::vector<Shape>{pool_out("max_pool2d", in[0], a)};
  };
  maxpool.backward = [](const Node& n, const Grads& g) {
    return Grads{run_op("max_pool2d_backward", {n.inputs[0], g[0]}, n.attrs)[0]};
  };
  OpDef& maxpool_b = def("max_pool2d_backward");
  maxpool_b.infer = [](const std::vector<Shape>& in, Attributes& a) {
    need_inputs("max_pool2d_backward", in, 2);
    if (pool_out("max_pool2d_backward", in[0], a) != in[1])
      throw Error(op_context("max_pool2d_backward", in) + ": dy does not match the pooled shape");
    return std::vector<Shape>{in[0]};
  };
  OpDef& avgpool = def("avg_pool2d");
  avgpool.infer = [](const std::vector<Shape>& in, Attributes& a) {
    need_inputs("avg_pool2d", in, 1);
    return std::vector<Shape>{pool_out("avg_pool2d", in[0], a)};
  };
  avgpool.backward = [](const Node& n, const Grads& g) {
    Attributes a = n.attrs;
    a.set("input_shape", n.inputs[0].shape());
    return Grads{run_op("avg_pool2d_backward", {g[0]}, a)[0]};
  };
  OpDef& avgpool_b = def("avg_pool2d_backward");
  avgpool_b.infer = [](const std::vector<Shape>& in, Attributes& a) {
    need_inputs("avg_pool2d_backward", in, 1);
    Shape x = a.get_ints("input_shape", {});
    if (pool_out("avg_pool2d_backward", x, a) != in[0])
      throw Error(op_context("avg_pool2d_backward", in) + ": dy does not match input_shape " + shape_to_string(x));
    return std::vector<Shape>{x};
  };

  OpDef& dropout = def("dropout_mask");
  dropout.shape_only_inputs = true;
  dropout.infer = [](const std::vector<Shape>& in, Attributes& a) {
    double rate = a.get_float("rate", 0.0);
    if (!(rate >= 0.0 && rate < 1.0))
      throw Error("op 'dropout_mask': rate must be in [0, 1), got " + std::to_string(rate));
    if (in.size() == 1) return std::vector<Shape>{in[0]};
    return std::vector<Shape>{a.get_ints("shape", {})};
  };

  OpDef& reshape = def("reshape");
  reshape.has_kernel = false;
  reshape.infer = [](const std::vector<Shape>& in, Attributes& a) {
    need_inputs("reshape", in, 1);
    Shape target = a.get_ints("shape", {});
    int64_t known = 1, unknown = -1;
    for (size_t i = 0; i < target.size(); ++i) {
      if (target[i] == -1) {
        if (unknown >= 0) throw Error("reshape to " + shape_to_string(target) + ": only one dimension may be -1");
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
    return std::vector<Shape>{target};
  };
  reshape.backward = [](const Node& n, const Grads& g) { return Grads{ops::reshape(g[0], n.inputs[0].shape())}; };
}

struct OpTable {
  std::vector<std::unique_ptr<OpDef>> defs;
  std::vector<const OpDef*> list;
  std::unordered_map<std::string, const OpDef*> by_name;
  OpTable() {
    define_ops(defs);
    for (auto& d : defs) {
      list.push_back(d.get());
      by_name[d->name] = d.get();
    }
  }
};
const OpTable& op_table() {
  static OpTable table;
  return table;
}

}  // namespace

const OpDef* find_op(const std::string& name) {
  auto& t = op_table();
  auto it = t.by_name.find(name);
  return it == t.by_name.end() ? nullptr : it->second;
}
const std::vector<const OpDef*>& all_ops() { return op_table().list; }

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

std::vector<Tensor> run_op(const std::string& name, const std::vector<Tensor>& given, const Attributes& attrs_in) {
  const OpDef* op = find_op(name);
  if (!op) throw Error("unknown op '" + name + "' (see docs/ops.md for the op set)");
  for (const Tensor& t : given)
    if (!t.defined()) throw Error("op '" + name + "': an input tensor is undefined");
  Attributes attrs = attrs_in;
  std::vector<Shape> in_shapes;
  for (const Tensor& t : given) in_shapes.push_back(t.shape());
  std::vector<Shape> out_shapes = op->infer(in_shapes, attrs);

  std::vector<Tensor> outputs;
  if (!op->has_kernel) {  // reshape: a view on the same buffer
    auto* impl = new TensorImpl;
    impl->shape = out_shapes[0];
    impl->buffer = given[0].impl()->buffer;
    impl->offset = given[0].impl()->offset;
    outputs.push_back(Tensor(impl, false));
  } else {
    BackendEntry& backend = Registry::get().active_backend();
    if (!backend.supports(*op))
      throw Error("backend '" + backend.name + "' has no kernel for op '" + name + "'");
    // Kernels see inputs of the output's rank for broadcasting ops.
    std::vector<Tensor> inputs;
    if (!op->shape_only_inputs) {
      for (const Tensor& t : given) {
        Tensor u = on_backend(t, backend);
        if (op->name == "add" || op->name == "sub" || op->name == "mul" || op->name == "div") {
          Shape s = u.shape();
          if (s.size() < out_shapes[0].size()) {
            s.insert(s.begin(), out_shapes[0].size() - s.size(), 1);
            u = detached(u);
            u.impl()->shape = s;
          }
        }
        inputs.push_back(u);
      }
    }
    if (op->name == "reduce_sum") attrs.set("keepdims", int64_t(1));
    for (const Shape& s : out_shapes) outputs.push_back(make_tensor(s, &backend));
    std::vector<lamina_view> in_views, out_views;
    for (const Tensor& t : inputs) in_views.push_back(view_of(t));
    for (const Tensor& t : outputs) out_views.push_back(view_of(t));
    CAttrs c(attrs);
    lamina_error error{};
    bool empty = false;
    for (const Shape& s : out_shapes) empty |= shape_size(s) == 0;
    OpProfile* prof = profile();
    auto start = prof ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    if (!empty && backend.kernels[size_t(op->id)](backend.table.self, in_views.data(), int32_t(in_views.size()),
                                                  out_views.data(), int32_t(out_views.size()), &c.view,
                                                  &error) != LAMINA_OK)
      throw Error(op_context(name, in_shapes) + " failed on backend '" + backend.name + "': " + error.message);
    if (prof) {
      double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::lock_guard lock(prof->mutex);
      auto& slot = prof->totals[backend.name + " " + name];
      slot.first += dt;
      slot.second += 1;
    }
  }

  if (g_grad_enabled && op->backward) {
    bool any = false;
    for (const Tensor& t : given) any |= needs_grad(t);
    if (any) {
      auto node = std::make_shared<Node>();
      node->op = op;
      node->inputs = given;
      node->attrs = attrs_in;
      node->sequence = g_sequence.fetch_add(1);
      for (size_t i = 0; i < outputs.size(); ++i) {
        node->outputs.push_back(detached(outputs[i]));
        outputs[i].impl()->grad_fn = node;
        outputs[i].impl()->output_index = int(i);
      }
    }
  }
  return outputs;
}

std::vector<Tensor> gradients(const Tensor& loss, const std::vector<Tensor>& wrt) {
  if (loss.size() != 1) throw Error("gradients(): the loss must be a single value, got shape " +
                                    shape_to_string(loss.shape()));
  NoGradGuard no_grad;
  std::vector<Tensor> result(wrt.size());
  if (!loss.impl()->grad_fn) return result;

  // Collect the graph, then walk it newest first: a node's output gradients are complete once
  // every node created after it has run.
  std::vector<Node*> nodes;
  std::unordered_map<Node*, std::vector<Tensor>> out_grads;
  std::vector<Node*> stack{loss.impl()->grad_fn.get()};
  std::unordered_map<Node*, bool> seen;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (seen[n]) continue;
    seen[n] = true;
    nodes.push_back(n);
    for (const Tensor& t : n->inputs)
      if (t.impl()->grad_fn && !seen[t.impl()->grad_fn.get()]) stack.push_back(t.impl()->grad_fn.get());
  }
  std::sort(nodes.begin(), nodes.end(), [](Node* a, Node* b) { return a->sequence > b->sequence; });

  std::unordered_map<TensorImpl*, Tensor> leaf_grads;
  auto accumulate = [](Tensor& slot, const Tensor& g) { slot = slot.defined() ? ops::add(slot, g) : g; };
  out_grads[loss.impl()->grad_fn.get()].resize(loss.impl()->grad_fn->outputs.size());
  out_grads[loss.impl()->grad_fn.get()][size_t(loss.impl()->output_index)] = ops::full(loss.shape(), 1.0f);

  for (Node* n : nodes) {
    auto& og = out_grads[n];
    og.resize(n->outputs.size());
    bool any = false;
    for (size_t i = 0; i < og.size(); ++i) {
      if (!og[i].defined()) og[i] = ops::full(n->outputs[i].shape(), 0.0f);
      else any = true;
    }
    if (!any) continue;
    std::vector<Tensor> ig = n->op->backward(*n, og);
    for (size_t i = 0; i < n->inputs.size() && i < ig.size(); ++i) {
      if (!ig[i].defined()) continue;
      const Tensor& in = n->inputs[i];
      if (in.impl()->grad_fn) {
        auto& slots = out_grads[in.impl()->grad_fn.get()];
        slots.resize(in.impl()->grad_fn->outputs.size());
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
  if (target.shape() != value.shape())
    throw Error("assign: value of shape " + shape_to_string(value.shape()) + " does not fit a tensor of shape " +
                shape_to_string(target.shape()));
  Buffer& b = *target.impl()->buffer;
  BackendEntry& backend = b.backend ? *b.backend : Registry::get().active_backend();
  const OpDef* copy = find_op("copy");
  if (!backend.supports(*copy) || (!b.backend && !backend.table.host_memory)) {
    std::vector<float> v = value.to_vector();
    if (!b.backend) {
      std::memcpy(const_cast<Tensor&>(target).host_data(), v.data(), v.size() * sizeof(float));
      return;
    }
    lamina_error error{};
    if (backend.table.copy_in(backend.table.self, b.handle, target.impl()->offset, v.data(), v.size() * sizeof(float),
                              &error) != LAMINA_OK)
      throw Error(std::string("assign failed: ") + error.message);
    return;
  }
  Tensor src = on_backend(value, backend);
  lamina_view in = view_of(src), out = view_of(target);
  lamina_attrs none{0, nullptr};
  lamina_error error{};
  if (backend.kernels[size_t(copy->id)](backend.table.self, &in, 1, &out, 1, &none, &error) != LAMINA_OK)
    throw Error(std::string("assign failed on backend '") + backend.name + "': " + error.message);
}

namespace ops {
static Tensor one(const char* name, std::vector<Tensor> in, const Attributes& a = {}) {
  return run_op(name, in, a)[0];
}
Tensor add(const Tensor& a, const Tensor& b) { return one("add", {a, b}); }
Tensor sub(const Tensor& a, const Tensor& b) { return one("sub", {a, b}); }
Tensor mul(const Tensor& a, const Tensor& b) { return one("mul", {a, b}); }
Tensor div(const Tensor& a, const Tensor& b) { return one("div", {a, b}); }
Tensor neg(const Tensor& x) { return one("neg", {x}); }
Tensor exp(const Tensor& x) { return one("exp", {x}); }
Tensor log(const Tensor& x) { return one("log", {x}); }
Tensor sqrt(const Tensor& x) { return one("sqrt", {x}); }
Tensor square(const Tensor& x) { return one("square", {x}); }
Tensor relu(const Tensor& x) { return one("relu", {x}); }
Tensor sigmoid(const Tensor& x) { return one("sigmoid", {x}); }
Tensor tanh(const Tensor& x) { return one("tanh", {x}); }
Tensor scale(const Tensor& x, double alpha, double beta) {
  return one("scale", {x}, Attributes().set("alpha", alpha).set("beta", beta));
}
Tensor clip(const Tensor& x, double low, double high) {
  return one("clip", {x}, Attributes().set("low", low).set("high", high));
}
Tensor softmax(const Tensor& x) { return one("softmax", {x}); }
Tensor log_softmax(const Tensor& x) { return one("log_softmax", {x}); }
Tensor reduce_sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdims) {
  Tensor r = one("reduce_sum", {x}, Attributes().set("axes", axes));
  if (keepdims) return r;
  Shape s;
  const Shape& xs = x.shape();
  std::vector<bool> drop(xs.size(), false);
  for (int64_t a : axes) drop[size_t(a < 0 ? a + int64_t(xs.size()) : a)] = true;
  for (size_t i = 0; i < xs.size(); ++i)
    if (!drop[i]) s.push_back(xs[i]);
  return reshape(r, s);
}
Tensor sum(const Tensor& x) {
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < x.ndim(); ++i) axes.push_back(i);
  return reduce_sum(x, axes, false);
}
Tensor mean(const Tensor& x) { return scale(sum(x), 1.0 / double(std::max<int64_t>(x.size(), 1))); }
Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  return one("matmul", {a, b}, Attributes().set("transpose_a", int64_t(ta)).set("transpose_b", int64_t(tb)));
}
Tensor reshape(const Tensor& x, const Shape& shape) { return one("reshape", {x}, Attributes().set("shape", shape)); }
Tensor conv2d(const Tensor& x, const Tensor& w, const std::vector<int64_t>& strides, const std::vector<int64_t>& pads) {
  return one("conv2d", {x, w}, Attributes().set("strides", strides).set("pads", pads));
}
Tensor max_pool2d(const Tensor& x, const std::vector<int64_t>& pool, const std::vector<int64_t>& strides,
                  const std::vector<int64_t>& pads) {
  return one("max_pool2d", {x}, Attributes().set("pool", pool).set("strides", strides).set("pads", pads));
}
Tensor avg_pool2d(const Tensor& x, const std::vector<int64_t>& pool, const std::vector<int64_t>& strides,
                  const std::vector<int64_t>& pads) {
  return one("avg_pool2d", {x}, Attributes().set("pool", pool).set("strides", strides).set("pads", pads));
}
Tensor dropout_mask(const Shape& shape, double rate, uint64_t seed) {
  return one("dropout_mask", {}, Attributes().set("shape", shape).set("rate", rate).set("seed", int64_t(seed)));
}
Tensor full(const Shape& shape, float value) {
  return one("fill", {}, Attributes().set("shape", shape).set("value", double(value)));
}
}  // namespace ops

}  // namespace lamina
