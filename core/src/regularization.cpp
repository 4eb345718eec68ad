#include "regularization.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>
#include <lamina/sdk/json.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <initializer_list>
#include <set>

namespace lamina {

namespace json = boost::json;

bool LayerTerms::empty() const {
  if (activity.active()) return false;
  for (const Penalty& p : weight_penalties)
    if (p.active()) return false;
  for (const Constraint& c : constraints)
    if (c.active()) return false;
  return true;
}

namespace {

// Messages show values as Keras writes them ("0.01", not "1E-2").
std::string shown(const json::value& v) { return sdk::json_text(v); }

struct KeyReader {
  std::string where, key;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(where + ": config key '" + key + "' " + what);
  }

  // {"class_name": ..., "config": {...}} as Keras writes it; "module" and "registered_name" come
  // with it in Keras 3.
  std::pair<std::string, json::object> object_form(const json::object& o) const {
    for (const auto& kv : o)
      if (kv.key() != "class_name" && kv.key() != "config" && kv.key() != "module" &&
          kv.key() != "registered_name")
        fail("has the unknown entry '" + std::string(kv.key()) +
             "'; a regularizer or constraint is {\"class_name\": ..., \"config\": {...}}");
    const json::value* name = o.if_contains("class_name");
    if (!name || !name->is_string()) fail("needs a \"class_name\" string");
    json::object config;
    if (const json::value* c = o.if_contains("config")) {
      if (c->is_object())
        config = c->as_object();
      else if (!c->is_null())
        fail("has a \"config\" that is not an object");
    }
    return {std::string(name->as_string()), config};
  }

  void only(const json::object& config, const std::string& cls, std::initializer_list<const char*> known) const {
    for (const auto& kv : config) {
      bool ok = false;
      for (const char* k : known) ok = ok || kv.key() == k;
      if (!ok) {
        std::string list;
        for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        fail("gives " + cls + " the unknown argument '" + std::string(kv.key()) + "'; " + cls + " takes " +
             (list.empty() ? std::string("no arguments") : list));
      }
    }
  }

  double number(const json::object& config, const char* name, double fallback) const {
    const json::value* v = config.if_contains(name);
    if (!v || v->is_null()) return fallback;
    if (!v->is_number()) fail("has " + std::string(name) + " " + shown(*v) + ", which is not a number");
    double x = v->to_number<double>();
    if (!std::isfinite(x) || x < 0)
      fail("has " + std::string(name) + " " + shown(*v) + "; it must be a finite number, 0 or more");
    return x;
  }
};

Penalty read_penalty(const KeyReader& r, const json::value& v) {
  if (v.is_null()) return {};
  const char* forms =
      "use \"l1\", \"l2\", \"l1_l2\" or {\"class_name\": \"L1\" | \"L2\" | \"L1L2\", \"config\": {\"l1\": ..., "
      "\"l2\": ...}}";
  if (v.is_string()) {
    // Keras' names: "l1" and "l2" mean 0.01; tf_keras' "l1_l2" means 0.01 of each, Keras 3's "l1l2"
    // and "L1L2" mean 0 of each (the class defaults).
    const std::string s(v.as_string());
    if (s == "l1" || s == "L1") return {0.01, 0.0};
    if (s == "l2" || s == "L2") return {0.0, 0.01};
    if (s == "l1_l2") return {0.01, 0.01};
    if (s == "l1l2" || s == "L1L2") return {0.0, 0.0};
    r.fail("is \"" + s + "\", which is not a regularizer lamina knows; " + forms);
  }
  if (!v.is_object()) r.fail("is " + shown(v) + "; " + forms);
  auto [cls, config] = r.object_form(v.as_object());
  if (cls == "L1") {
    r.only(config, cls, {"l1"});
    return {r.number(config, "l1", 0.01), 0.0};
  }
  if (cls == "L2") {
    r.only(config, cls, {"l2"});
    return {0.0, r.number(config, "l2", 0.01)};
  }
  if (cls == "L1L2") {
    r.only(config, cls, {"l1", "l2"});
    return {r.number(config, "l1", 0.0), r.number(config, "l2", 0.0)};
  }
  if (cls == "OrthogonalRegularizer")
    r.fail("is an OrthogonalRegularizer, which lamina does not apply yet; remove it or use L1 / L2 / L1L2");
  r.fail("names the regularizer class '" + cls + "', which lamina does not know; " + forms);
}

std::vector<int64_t> read_axes(const KeyReader& r, const json::object& config, size_t rank) {
  std::vector<int64_t> axes;
  const json::value* v = config.if_contains("axis");
  json::array list;
  if (!v)
    list.push_back(0);
  else if (v->is_int64() || v->is_uint64())
    list.push_back(*v);
  else if (v->is_array())
    list = v->as_array();
  else
    r.fail("has axis " + shown(*v) + "; give an axis or a list of axes");
  std::set<int64_t> seen;
  for (const json::value& a : list) {
    if (!a.is_int64() && !a.is_uint64()) r.fail("has axis " + shown(a) + ", which is not an integer");
    int64_t axis = a.to_number<int64_t>();
    const int64_t n = int64_t(rank);
    if (axis < -n || axis >= n)
      r.fail("has axis " + std::to_string(axis) + ", outside the weight's " + std::to_string(rank) + " axes");
    if (axis < 0) axis += n;
    if (!seen.insert(axis).second) r.fail("names axis " + std::to_string(axis) + " twice");
    axes.push_back(axis);
  }
  return axes;
}

Constraint read_constraint(const KeyReader& r, const json::value& v, size_t rank) {
  using Kind = Constraint::Kind;
  if (v.is_null()) return {};
  const char* forms =
      "use \"max_norm\", \"min_max_norm\", \"unit_norm\", \"non_neg\" or {\"class_name\": \"MaxNorm\", \"config\": "
      "{\"max_value\": 2, \"axis\": 0}}";
  std::string cls;
  json::object config;
  if (v.is_string()) {
    // Keras' function-style names and tf_keras' older spellings, as the classes with defaults.
    const std::string s(v.as_string());
    if (s == "max_norm" || s == "maxnorm")
      cls = "MaxNorm";
    else if (s == "min_max_norm")
      cls = "MinMaxNorm";
    else if (s == "unit_norm" || s == "unitnorm")
      cls = "UnitNorm";
    else if (s == "non_neg" || s == "nonneg")
      cls = "NonNeg";
    else
      cls = s;
  } else if (v.is_object()) {
    std::tie(cls, config) = r.object_form(v.as_object());
  } else {
    r.fail("is " + shown(v) + "; " + forms);
  }
  Constraint c;
  if (cls == "NonNeg") {
    r.only(config, cls, {});
    c.kind = Kind::non_neg;
    return c;
  }
  if (cls == "MaxNorm") {
    r.only(config, cls, {"max_value", "axis"});
    c.kind = Kind::max_norm;
    c.max_value = r.number(config, "max_value", 2.0);
  } else if (cls == "UnitNorm") {
    r.only(config, cls, {"axis"});
    c.kind = Kind::unit_norm;
  } else if (cls == "MinMaxNorm") {
    r.only(config, cls, {"min_value", "max_value", "rate", "axis"});
    c.kind = Kind::min_max_norm;
    c.min_value = r.number(config, "min_value", 0.0);
    c.max_value = r.number(config, "max_value", 1.0);
    c.rate = r.number(config, "rate", 1.0);
    if (c.min_value > c.max_value) r.fail("has min_value above max_value");
    if (c.rate > 1.0) r.fail("has rate above 1; rate is in [0, 1]");
  } else {
    r.fail("names the constraint '" + cls + "', which lamina does not know; " + forms);
  }
  c.axes = read_axes(r, config, rank);
  return c;
}

// The key prefix of a weight: "kernel" → "kernel", "depthwise_kernel" → "depthwise", as Keras
// names depthwise_regularizer and recurrent_constraint. A nested weight ("cell/kernel") uses its
// last part.
std::string key_prefix(const std::string& weight_name) {
  std::string base = weight_name.substr(weight_name.rfind('/') + 1);
  const std::string suffix = "_kernel";
  if (base.size() > suffix.size() && base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0)
    return base.substr(0, base.size() - suffix.size());
  return base;
}

}  // namespace

LayerTerms read_layer_terms(const std::string& where, const json::object& config,
                            const std::vector<std::string>& weight_names, const std::vector<Shape>& weight_shapes) {
  LayerTerms terms;
  for (size_t i = 0; i < weight_names.size(); ++i) {
    const std::string prefix = key_prefix(weight_names[i]);
    Penalty p;
    Constraint c;
    if (const json::value* v = config.if_contains(prefix + "_regularizer"))
      p = read_penalty({where, prefix + "_regularizer"}, *v);
    if (const json::value* v = config.if_contains(prefix + "_constraint"))
      c = read_constraint({where, prefix + "_constraint"}, *v, weight_shapes[i].size());
    terms.weight_penalties.push_back(p);
    terms.constraints.push_back(c);
  }
  if (const json::value* v = config.if_contains("activity_regularizer"))
    terms.activity = read_penalty({where, "activity_regularizer"}, *v);
  return terms;
}

Tensor penalty_of(const Penalty& penalty, const Tensor& x) {
  Tensor total;
  if (penalty.l1 != 0.0)  // |x| = relu(x) + relu(-x), whose gradient is sign(x)
    total = ops::scale(ops::sum(ops::add(ops::relu(x), ops::relu(ops::neg(x)))), penalty.l1);
  if (penalty.l2 != 0.0) {
    Tensor l2 = ops::scale(ops::sum(ops::square(x)), penalty.l2);
    total = total.defined() ? ops::add(total, l2) : l2;
  }
  return total;
}

void apply_constraint(const Constraint& c, const Tensor& w) {
  using Kind = Constraint::Kind;
  if (!c.active()) return;
  NoGradGuard no_grad;
  if (c.kind == Kind::non_neg) {
    assign(w, ops::relu(w));
    return;
  }
  // Keras' formulas, epsilon 1e-7 included: w · desired / (ε + ‖w‖) with the norm over `axes`.
  Tensor norms = ops::sqrt(ops::reduce_sum(ops::square(w), c.axes, true));
  Tensor denominator = ops::scale(norms, 1.0, 1e-7);
  Tensor desired;
  if (c.kind == Kind::unit_norm)
    desired = Tensor();
  else if (c.kind == Kind::max_norm)
    desired = ops::clip(norms, 0.0, c.max_value);
  else
    desired = ops::add(ops::scale(ops::clip(norms, c.min_value, c.max_value), c.rate),
                       ops::scale(norms, 1.0 - c.rate));
  assign(w, desired.defined() ? ops::mul(w, ops::div(desired, denominator)) : ops::div(w, denominator));
}

Tensor ModelTerms::weight_penalties() const {
  Tensor total;
  for (const auto& [w, penalty] : penalties) {
    Tensor term = penalty_of(penalty, w);
    total = total.defined() ? ops::add(total, term) : term;
  }
  return total;
}

void ModelTerms::apply_constraints() const {
  for (const auto& [w, constraint] : constraints) apply_constraint(constraint, w);
}

namespace {
thread_local ActivityPenalties* active_scope = nullptr;
}

ActivityPenalties::ActivityPenalties() : previous_(active_scope) { active_scope = this; }
ActivityPenalties::~ActivityPenalties() { active_scope = previous_; }
ActivityPenalties* ActivityPenalties::current() { return active_scope; }

void ActivityPenalties::add(const Penalty& penalty, const Tensor& output) {
  if (!penalty.active() || output.ndim() == 0 || output.dim(0) == 0) return;
  Tensor term = ops::scale(penalty_of(penalty, output), 1.0 / double(output.dim(0)));
  total_ = total_.defined() ? ops::add(total_, term) : term;
}

}  // namespace lamina
