// compile / fit / evaluate / predict: losses, metrics, the training loop and its log.
#include "autograd.hpp"
#include "backend_entry.hpp"
#include "distributed.hpp"
#include "graph.hpp"
#include "initializers.hpp"
#include "op_registry.hpp"
#include "plugins.hpp"
#include "prefetch.hpp"
#include "profiler.hpp"
#include "regularization.hpp"
#include "replay.hpp"
#include "tensor_impl.hpp"
#include "text.hpp"

#include <lamina/callbacks.hpp>

#include <lamina/backend.hpp>
#include <lamina/distributed.hpp>
#include <lamina/sdk/json.hpp>

#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>

namespace lamina {

namespace {

constexpr double kEpsilon = 1e-7;  // Keras' backend epsilon

std::string canonical_loss(const std::string& name) {
  std::string k = lower(name);
  k.erase(std::remove(k.begin(), k.end(), '_'), k.end());
  if (k == "meansquarederror" || k == "mse") return "mean_squared_error";
  if (k == "binarycrossentropy") return "binary_crossentropy";
  if (k == "categoricalcrossentropy") return "categorical_crossentropy";
  if (k == "sparsecategoricalcrossentropy") return "sparse_categorical_crossentropy";
  throw Error("unknown loss '" + name +
              "' (known: mean_squared_error, binary_crossentropy, categorical_crossentropy, "
              "sparse_categorical_crossentropy)");
}

// One-hot rows for sparse labels (N) or (N, 1).
Tensor one_hot(const Tensor& labels, int64_t classes) {
  std::vector<float> y = labels.to_vector();
  std::vector<float> out(y.size() * size_t(classes), 0.0f);
  for (size_t i = 0; i < y.size(); ++i) {
    int64_t c =
        y[i] >= 0 && y[i] < float(classes) ? int64_t(y[i]) : -1;  // range first: no undefined conversion
    if (c < 0 || c >= classes || float(c) != y[i])
      throw Error("sparse label " + std::to_string(y[i]) + " at row " + std::to_string(i) +
                  " is not a class index in [0, " + std::to_string(classes) + ")");
    out[i * size_t(classes) + size_t(c)] = 1.0f;
  }
  return Tensor::from_vector(out, {int64_t(y.size()), classes});
}

// The loss, averaged over the batch, as a scalar tensor (differentiable when recording).
Tensor compute_loss(const std::string& loss, const Tensor& pred, const Tensor& target_in, bool from_logits) {
  Tensor target = target_in;
  int64_t batch = pred.dim(0);
  if (loss == "sparse_categorical_crossentropy") target = one_hot(target_in, pred.dim(-1));
  if (loss == "mean_squared_error")
    return pred.shape() == target.shape() ? ops::mean_squared_error(pred, target)
                                          : ops::mean(ops::square(ops::sub(pred, target)));
  if (loss == "binary_crossentropy") {
    Tensor p = ops::clip(from_logits ? ops::sigmoid(pred) : pred, kEpsilon, 1.0 - kEpsilon);
    Tensor pos = ops::mul(target, ops::log(p));
    Tensor neg = ops::mul(ops::scale(target, -1.0, 1.0), ops::log(ops::scale(p, -1.0, 1.0)));
    return ops::scale(ops::sum(ops::add(pos, neg)), -1.0 / double(pred.size()));
  }
  // categorical: with a softmax output, work from its logits (as TensorFlow does) for stability, in
  // fit and evaluate alike; the softmax op declares its output probabilities of its input.
  if (from_logits) return ops::softmax_cross_entropy(pred, target);
  if (const Tensor& logits = pred.impl()->logits; logits.defined())
    return ops::softmax_cross_entropy(logits, target);
  Tensor log_p = ops::log(ops::clip(pred, kEpsilon, 1.0 - kEpsilon));
  return ops::scale(ops::sum(ops::mul(target, log_p)), -1.0 / double(batch));
}

struct MetricCounter {
  std::string name;  // as the user wrote it: "accuracy" or "acc", "mse", "mae"
  double total = 0;
  int64_t count = 0;
  double value() const { return count ? total / double(count) : 0.0; }
};

// Adds one batch to the metrics, on the host.
void update_metrics(std::vector<MetricCounter>& metrics, const std::string& loss, const Tensor& pred,
                    const Tensor& target) {
  if (metrics.empty()) return;
  std::vector<float> p = pred.to_vector(), y = target.to_vector();
  int64_t n = pred.dim(0), k = pred.size() / std::max<int64_t>(n, 1);
  for (MetricCounter& m : metrics) {
    std::string key = lower(m.name);
    if (key == "accuracy" || key == "acc") {
      for (int64_t i = 0; i < n; ++i) {
        const float* pi = p.data() + i * k;
        bool hit;
        if (loss == "sparse_categorical_crossentropy") {
          hit = int64_t(std::max_element(pi, pi + k) - pi) == int64_t(y[size_t(i)]);
        } else if (k == 1) {
          hit = (pi[0] > 0.5f) == (y[size_t(i)] > 0.5f);
        } else {
          const float* yi = y.data() + i * k;
          hit = std::max_element(pi, pi + k) - pi == std::max_element(yi, yi + k) - yi;
        }
        m.total += hit ? 1.0 : 0.0;
      }
      m.count += n;
    } else if (key == "mse" || key == "mae" || key == "mean_squared_error" || key == "mean_absolute_error") {
      bool squared = key == "mse" || key == "mean_squared_error";
      for (size_t i = 0; i < p.size() && i < y.size(); ++i) {
        double d = double(p[i]) - double(y[i]);
        m.total += squared ? d * d : std::fabs(d);
      }
      m.count += int64_t(p.size());
    }
  }
}

std::vector<MetricCounter> make_metrics(const std::vector<std::string>& names) {
  std::vector<MetricCounter> out;
  for (const std::string& n : names) {
    std::string key = lower(n);
    if (key != "accuracy" && key != "acc" && key != "mse" && key != "mae" && key != "mean_squared_error" &&
        key != "mean_absolute_error")
      throw Error("unknown metric '" + n + "' (known: accuracy, acc, mse, mae)");
    out.push_back({n, 0, 0});
  }
  return out;
}

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// The Keras-style progress display.
class Progress {
 public:
  Progress(int verbose, int64_t total) : verbose_(verbose), total_(total), start_(clock::now()) {
    tty_ = verbose == 1 && isatty(fileno(stdout));
  }
  // Whether update() draws anything (a live bar on a terminal).
  bool live() const { return tty_; }
  void update(int64_t seen, const std::string& logs) {
    if (!tty_) return;
    auto now = clock::now();
    if (seen < total_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    std::string s = "\r" + progress::bar_line(seen, total_, seconds(now), logs);
    std::cout << s << std::string(last_len_ > s.size() ? last_len_ - s.size() : 0, ' ') << std::flush;
    last_len_ = s.size();
  }
  // The closing line of an epoch: "60000/60000 - 31.2s - 1923 samples/s - loss: ... - val_acc: ..."
  void finish(double train_seconds, const std::string& logs) {
    if (verbose_ == 0) return;
    std::string s =
        (tty_ ? "\r" : "") + progress::epoch_line(total_, seconds(clock::now()), train_seconds, logs, tty_);
    std::cout << s << std::string(tty_ && last_len_ > s.size() ? last_len_ - s.size() : 0, ' ') << "\n"
              << std::flush;
  }

 private:
  using clock = std::chrono::steady_clock;
  double seconds(clock::time_point t) const { return std::chrono::duration<double>(t - start_).count(); }
  int verbose_;
  int64_t total_;
  bool tty_;
  clock::time_point start_, last_{};
  size_t last_len_ = 0;
};

}  // namespace

namespace {

// Rows [begin, end) of a global batch of `rows` that rank `rank` of `ranks` trains on: contiguous,
// as even as possible; N ranks at batch b split a global batch of N x b into b rows each.
std::pair<int64_t, int64_t> shard(int64_t rows, int rank, int ranks) {
  return {rows * rank / ranks, rows * (rank + 1) / ranks};
}

// Each rank's gradient of its mean loss, weighted by its share of the global batch and summed over
// the ranks: the gradient of the mean loss over the whole global batch. `loss` (this rank's mean
// loss) becomes the global batch's mean loss. A gradient undefined on every rank stays undefined.
void average_gradients(const lamina_communicator& c, const std::vector<Tensor>& params,
                       std::vector<Tensor>& grads, double share, double& loss) {
  BackendEntry& backend = Registry::get().active_backend();
  if (c.allreduce_sum_device && !backend.table.host_memory) {
    // Gradients on a device (e.g. cudnn with the nccl communicator): each is scaled by this rank's
    // share and summed in place where it lives; only the flags and the loss travel through the host.
    std::vector<float> small(params.size() + 1, 0.0f);
    {
      NoGradGuard no_grad;
      for (size_t i = 0; i < params.size(); ++i) {
        small[i] = grads[i].defined() ? 1.0f : 0.0f;
        grads[i] = grads[i].defined() ? grads[i] * float(share) : Tensor::zeros(params[i].shape());
        grads[i] = on_backend(grads[i], backend);
      }
    }
    small[params.size()] = float(loss * share);
    distributed::allreduce(c, small.data(), small.size(), "the loss");
    ErrorSlot error;
    if (backend.table.synchronize && backend.table.synchronize(backend.table.self, &error) != LAMINA_OK)
      throw Error("distributed training: synchronising backend '" + backend.name +
                  "' failed: " + error.message);
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < params.size(); ++i) {
      lamina_view v = view_of(grads[i]);
      if (c.allreduce_sum_device(c.self, v.data, v.offset, size_t(grads[i].size()), &error) != LAMINA_OK)
        throw Error(std::string("distributed training: the allreduce of the gradients failed on rank ") +
                    std::to_string(c.rank) + " of " + std::to_string(c.size) + ": " + error.message);
      if (small[i] == 0.0f) grads[i] = Tensor();  // no rank had it
    }
    if (profiling())
      profile_record(std::string(c.name) + " allreduce (the gradients, on the device)",
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    loss = double(small[params.size()]);
    return;
  }
  size_t total = 2;  // the weighted loss and, per parameter, whether a rank has its gradient
  for (const Tensor& p : params) total += size_t(p.size()) + 1;
  std::vector<float> flat(total, 0.0f);
  size_t at = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    if (grads[i].defined()) {
      std::vector<float> g = grads[i].to_vector();
      for (size_t k = 0; k < g.size(); ++k) flat[at + k] = float(double(g[k]) * share);
      flat[at + g.size()] = 1.0f;
    }
    at += size_t(params[i].size()) + 1;
  }
  flat[at] = float(loss * share);
  distributed::allreduce(c, flat.data(), flat.size(), "the gradients");
  at = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const size_t count = size_t(params[i].size());
    if (flat[at + count] > 0.0f)
      grads[i] = Tensor::from_vector(
          std::vector<float>(flat.begin() + long(at), flat.begin() + long(at + count)), params[i].shape());
    at += count + 1;
  }
  loss = double(flat[at]);
}

// The non-trainable weights a training step moved on each rank (BatchNormalization's moving
// statistics, from each rank's share of the batch), replaced by their average weighted by the
// shares: every rank then holds the statistics of the whole global batch's update, the same values.
void average_state(const lamina_communicator& c, std::vector<Tensor>& state, double share) {
  size_t total = 0;
  for (const Tensor& w : state) total += size_t(w.size());
  std::vector<float> flat;
  flat.reserve(total);
  for (const Tensor& w : state)
    for (float v : w.to_vector()) flat.push_back(float(double(v) * share));
  distributed::allreduce(c, flat.data(), flat.size(), "the moving statistics");
  NoGradGuard no_grad;
  size_t at = 0;
  for (Tensor& w : state) {
    const size_t n = size_t(w.size());
    assign(w, Tensor::from_vector(std::vector<float>(flat.begin() + long(at), flat.begin() + long(at + n)),
                                  w.shape()));
    at += n;
  }
}

}  // namespace

struct Model::Training {
  CompileOptions options;
  std::vector<std::string> losses;   // per output, canonical names
  std::vector<double> loss_weights;  // per output
  const OptimizerPlugin* optimizer = nullptr;
  void* instance = nullptr;
  std::vector<Tensor> params;
  std::vector<Tensor> state;  // non-trainable weights (BatchNormalization's moving statistics)
  std::vector<std::vector<Tensor>> slots;
  ModelTerms terms;  // the regularizers and constraints that apply
  int64_t iteration = 0;
  // Training's own randomness (data order, dropout seeds) and position, so that a run saved and
  // resumed continues exactly as an uninterrupted one (TrainingState).
  std::mt19937_64 rng;
  bool rng_started = false;
  std::vector<int64_t> order;
  int64_t epoch = 0;
  ~Training() {
    if (instance) optimizer->table.destroy(instance);
  }
};

namespace {

// The regularizers and constraints of the model's layers (nested models' included) that apply:
// Keras penalizes and constrains trainable weights only.
ModelTerms collect_terms(const Model& model, const std::vector<Tensor>& params) {
  ModelTerms out;
  std::set<const TensorImpl*> trainable, seen;
  for (const Tensor& p : params) trainable.insert(p.impl());
  std::function<void(const Model&)> visit = [&](const Model& m) {
    for (size_t k = 0; k < m.size(); ++k) {
      const Layer& layer = m.layer(k);
      if (layer.model()) {
        visit(*layer.model());
        continue;
      }
      const LayerTerms* terms = LayerAccess::terms(layer);
      if (!terms) continue;
      out.activity = out.activity || terms->activity.active();
      for (size_t i = 0; i < layer.weights().size(); ++i) {
        const Tensor& w = layer.weights()[i];
        if (!trainable.count(w.impl()) || !seen.insert(w.impl()).second) continue;
        if (terms->weight_penalties[i].active()) out.penalties.emplace_back(w, terms->weight_penalties[i]);
        if (terms->constraints[i].active()) out.constraints.emplace_back(w, terms->constraints[i]);
      }
    }
  };
  visit(model);
  return out;
}

Tensor plus(const Tensor& a, const Tensor& b) {
  return b.defined() ? ops::add(a, b) : a;
}

}  // namespace

bool Model::compiled() const {
  return training_ != nullptr;
}
const CompileOptions& Model::compile_options() const {
  if (!training_) throw Error("the model is not compiled; call compile() first");
  return training_->options;
}

void Model::compile(const CompileOptions& options) {
  if (layers_.empty() || outputs_.empty()) throw Error("compile(): the model has no layers");
  auto t = std::make_unique<Training>();
  t->options = options;
  const std::vector<std::string> outputs = output_names();
  auto known = [&](const std::string& key, const char* what) {
    if (std::find(outputs.begin(), outputs.end(), key) == outputs.end())
      throw Error(std::string("compile(): ") + what + " names output '" + key +
                  "', but the model's outputs are " + [&] {
                    std::string s;
                    for (const auto& o : outputs) s += (s.empty() ? "" : ", ") + o;
                    return s;
                  }());
  };
  for (const auto& [key, loss] : options.losses) known(key, "losses");
  for (const auto& [key, weight] : options.loss_weights) known(key, "loss_weights");
  for (const std::string& out : outputs) {
    auto it = options.losses.find(out);
    t->losses.push_back(canonical_loss(it != options.losses.end() ? it->second : options.loss));
    auto w = options.loss_weights.find(out);
    t->loss_weights.push_back(w != options.loss_weights.end() ? w->second : 1.0);
  }
  make_metrics(options.metrics);  // validates the names
  const OptimizerSpec& spec = options.optimizer;
  std::string cls = spec.class_name;
  if (cls.rfind("Custom>", 0) == 0) cls = cls.substr(7);
  t->optimizer = &Registry::get().optimizer(cls);
  std::string cfg = sdk::json_text(spec.config);
  ErrorSlot error;
  t->instance = t->optimizer->table.create(cfg.c_str(), &error);
  if (!t->instance)
    throw Error(error.message[0] ? error.message : "optimizer " + spec.class_name + ": invalid config");
  std::set<const TensorImpl*> seen;  // a weight shared by two layers (a nested model) is one parameter
  for (auto& l : layers_)
    for (size_t i = 0; i < l->weights().size(); ++i)
      if (seen.insert(l->weights()[i].impl()).second)
        (l->weight_trainable(i) ? t->params : t->state).push_back(l->weights()[i]);
  t->terms = collect_terms(*this, t->params);
  int32_t n_slots = t->optimizer->table.slot_count(t->instance);
  for (const Tensor& p : t->params) {
    std::vector<Tensor> s;
    for (int32_t k = 0; k < n_slots; ++k) {
      Tensor z = make_tensor(p.shape(), p.impl()->buffer->backend ? p.impl()->buffer->backend
                                                                  : &Registry::get().active_backend());
      assign(z, Tensor::zeros(p.shape()));
      s.push_back(z);
    }
    t->slots.push_back(std::move(s));
  }
  training_ = std::move(t);
}

double Model::learning_rate() const {
  auto& t = *training_;
  return t.optimizer->table.get_learning_rate ? t.optimizer->table.get_learning_rate(t.instance) : 0.0;
}
void Model::set_learning_rate(double value) {
  auto& t = *training_;
  if (t.optimizer->table.set_learning_rate) t.optimizer->table.set_learning_rate(t.instance, value);
}

namespace {

std::string dims_text(const Shape& s) {
  std::string out = "(None";
  for (int64_t d : s) out += ", " + std::to_string(d);
  return out + ")";
}

// Checks inputs (and targets) against the model: counts, sample counts and shapes. `losses` per
// output, when targets are given.
void check_data(const Model& model, const std::vector<Tensor>& xs, const std::vector<Tensor>* ys,
                const std::string& what, const std::vector<std::string>& losses) {
  const auto& inputs = model.inputs();
  const std::vector<std::string> in_names = model.input_names(), out_names = model.output_names();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = xs[i];
    const std::string which = inputs.size() == 1 ? "x" : "input '" + in_names[i] + "'";
    if (!x.defined()) throw Error(what + ": " + which + " is empty");
    const Shape& expected = inputs[i].shape();
    Shape got(x.shape().begin() + (x.ndim() ? 1 : 0), x.shape().end());
    if (got != expected) {
      std::string hint;
      if (shape_size(got) == shape_size(expected)) {
        Shape s{-1};
        s.insert(s.end(), expected.begin(), expected.end());
        hint = "; the sizes agree, so reshape it, e.g. x.reshape(" + shape_to_string(s) + ")";
      }
      throw Error(what + ": " + which + " has shape " + shape_to_string(x.shape()) +
                  " but the model expects " + dims_text(expected) + hint);
    }
    if (x.dim(0) != xs[0].dim(0))
      throw Error(what + ": " + which + " has " + std::to_string(x.dim(0)) +
                  " samples but the first input has " + std::to_string(xs[0].dim(0)));
  }
  if (!ys) return;
  const auto& outputs = model.outputs();
  for (size_t j = 0; j < outputs.size(); ++j) {
    const Tensor& y = (*ys)[j];
    const std::string which = outputs.size() == 1 ? "y" : "the targets of output '" + out_names[j] + "'";
    const std::string& loss = losses[j];
    if (!y.defined()) throw Error(what + ": " + which + " is empty");
    if (y.dim(0) != xs[0].dim(0))
      throw Error(what + ": x has " + std::to_string(xs[0].dim(0)) + " samples but " + which + " has " +
                  std::to_string(y.dim(0)));
    const Shape& out = outputs[j].shape();
    Shape shape(y.shape().begin() + 1, y.shape().end());
    if (loss == "sparse_categorical_crossentropy") {
      if (!(shape.empty() || (shape.size() == 1 && shape[0] == 1)))
        throw Error(
            what + ": sparse_categorical_crossentropy needs class indices of shape (N,) or (N, 1), got " +
            shape_to_string(y.shape()) + (outputs.size() == 1 ? "" : " for output '" + out_names[j] + "'"));
    } else if (shape != out) {
      std::string hint;
      if (loss == "categorical_crossentropy" && (shape.empty() || (shape.size() == 1 && shape[0] == 1)))
        hint = "; these look like class indices: one-hot encode them with to_categorical(y, " +
               std::to_string(out.empty() ? 0 : out.back()) + ") or use loss sparse_categorical_crossentropy";
      throw Error(what + ": " + (outputs.size() == 1 ? "labels y" : which) + " have shape " +
                  shape_to_string(y.shape()) + " but the model's output" +
                  (outputs.size() == 1 ? "" : " '" + out_names[j] + "'") + " is " + dims_text(out) + hint);
    }
  }
}

// One tensor per name, in the order of `names`, from a list or a name → tensor map.
std::vector<Tensor> ordered(const Tensors& given, const std::vector<std::string>& names,
                            const std::string& what, const char* kind) {
  auto list_names = [&] {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  if (!given.named.empty()) {
    std::vector<Tensor> out;
    for (const auto& [key, t] : given.named)
      if (std::find(names.begin(), names.end(), key) == names.end())
        throw Error(what + ": there is no " + kind + " named '" + key + "'; the model's " + kind + "s are " +
                    list_names());
    for (const auto& n : names) {
      auto it = given.named.find(n);
      if (it == given.named.end()) throw Error(what + ": no tensor was given for " + kind + " '" + n + "'");
      out.push_back(it->second);
    }
    return out;
  }
  if (given.list.size() != names.size())
    throw Error(what + ": the model has " + std::to_string(names.size()) + " " + kind + "s (" + list_names() +
                ") but " + std::to_string(given.list.size()) + " tensors were given");
  return given.list;
}

}  // namespace

std::vector<Tensor> Model::inputs_of(const Tensors& x, const std::string& what) const {
  return ordered(x, input_names(), what, "input");
}
std::vector<Tensor> Model::targets_of(const Tensors& y, const std::string& what) const {
  return ordered(y, output_names(), what, "output");
}

namespace {

// Per output: its loss (for the logs when there are several) and metric counters, named as Keras
// names them ("loss", "accuracy" for one output; "probs_loss", "probs_accuracy" for several).
struct EpochLog {
  std::vector<std::string> loss_names;
  std::vector<double> loss_sums;
  std::vector<std::vector<MetricCounter>> metrics;
  EpochLog(const std::vector<std::string>& outputs, const std::vector<std::string>& metric_names) {
    for (const std::string& o : outputs) {
      const std::string prefix = outputs.size() == 1 ? "" : o + "_";
      loss_names.push_back(prefix + "loss");
      loss_sums.push_back(0.0);
      metrics.push_back(make_metrics(metric_names));
      for (MetricCounter& m : metrics.back()) m.name = prefix + m.name;
    }
  }
  bool several() const { return loss_names.size() > 1; }
  void add(std::map<std::string, double>& logs, double seen) const {
    if (several())
      for (size_t j = 0; j < loss_names.size(); ++j)
        logs[loss_names[j]] = seen > 0 ? loss_sums[j] / seen : 0.0;
    for (const auto& ms : metrics)
      for (const MetricCounter& m : ms) logs[m.name] = m.value();
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    if (several()) out = loss_names;
    for (const auto& ms : metrics)
      for (const MetricCounter& m : ms) out.push_back(m.name);
    return out;
  }
  // The counters of every rank summed (data-parallel).
  void reduce(const lamina_communicator& c) {
    std::vector<float> sums;
    for (double& l : loss_sums) sums.push_back(float(l));
    for (auto& ms : metrics)
      for (const MetricCounter& m : ms) sums.push_back(float(m.total)), sums.push_back(float(m.count));
    distributed::allreduce(c, sums.data(), sums.size(), "the metrics");
    size_t at = 0;
    for (double& l : loss_sums) l = sums[at++];
    for (auto& ms : metrics)
      for (MetricCounter& m : ms) m.total = sums[at], m.count = int64_t(sums[at + 1]), at += 2;
  }
};

// The weighted sum of the outputs' losses; `parts` gets each output's loss (several outputs only).
Tensor total_loss(const std::vector<std::string>& losses, const std::vector<double>& weights,
                  const std::vector<Tensor>& preds, const std::vector<Tensor>& targets, bool from_logits,
                  std::vector<Tensor>* parts) {
  if (preds.size() == 1) return compute_loss(losses[0], preds[0], targets[0], from_logits);
  Tensor total;
  for (size_t j = 0; j < preds.size(); ++j) {
    Tensor l = compute_loss(losses[j], preds[j], targets[j], from_logits);
    if (parts) parts->push_back(l);
    Tensor weighted = weights[j] == 1.0 ? l : ops::scale(l, weights[j]);
    total = total.defined() ? ops::add(total, weighted) : weighted;
  }
  return total;
}

}  // namespace

History Model::fit(const Tensors& x_in, const Tensors& y_in, const FitOptions& options) {
  if (!training_) throw Error("fit(): the model is not compiled; call compile(loss, optimizer) first");
  std::vector<Tensor> xs = inputs_of(x_in, "fit"), ys = targets_of(y_in, "fit");
  check_data(*this, xs, &ys, "fit", training_->losses);
  if (options.batch_size < 1) throw Error("fit(): batch_size must be at least 1");
  for (Tensor& t : xs) t = to_host(t);
  for (Tensor& t : ys) t = to_host(t);
  FitOptions with_validation = options;
  if (options.validation_split > 0.0) {
    if (options.validation_split >= 1.0) throw Error("fit(): validation_split must be in [0, 1)");
    int64_t n = xs[0].dim(0), split = n - int64_t(double(n) * options.validation_split);
    std::vector<Tensor> vx, vy;
    for (Tensor& t : xs) vx.push_back(t.slice(split, n)), t = t.slice(0, split);
    for (Tensor& t : ys) vy.push_back(t.slice(split, n)), t = t.slice(0, split);
    with_validation.validation_data = std::make_pair(Tensors(vx), Tensors(vy));
    with_validation.validation_split = 0.0;
  }
  // In a job of N ranks, batch_size is per rank: the global batch holds N x batch_size rows.
  const lamina_communicator* comm = distributed::active_communicator();
  // The sample order carries over from the previous fit() (and from a saved file), as one long
  // run's would; the model keeps it.
  std::vector<int64_t>& order = training_->order;
  if (order.size() != size_t(xs[0].dim(0))) {
    order.assign(size_t(xs[0].dim(0)), 0);
    std::iota(order.begin(), order.end(), 0);
  }
  TensorBatches data(xs, ys, options.batch_size * (comm ? comm->size : 1), &order);
  return fit(data, with_validation);
}

History Model::fit(BatchSource& data, const FitOptions& options) {
  if (!training_) throw Error("fit(): the model is not compiled; call compile(loss, optimizer) first");
  Training& t = *training_;
  if (options.epochs < 0) throw Error("fit(): epochs must not be negative");
  if (options.validation_split > 0.0)
    throw Error(
        "fit(): validation_split needs the data in memory; give validation_data or validation_batches");
  std::optional<std::pair<std::vector<Tensor>, std::vector<Tensor>>> validation;
  if (options.validation_data) {
    validation.emplace(inputs_of(options.validation_data->first, "fit (validation_data)"),
                       targets_of(options.validation_data->second, "fit (validation_data)"));
    check_data(*this, validation->first, &validation->second, "fit (validation_data)", t.losses);
  }

  const int64_t n = data.size();
  // Data-parallel (distributed.hpp): every rank starts from rank 0's weights, trains on its share
  // of each global batch and applies the same averaged gradients; only rank 0 prints.
  const lamina_communicator* comm = distributed::active_communicator();
  const int ranks = comm ? comm->size : 1, my_rank = comm ? comm->rank : 0;
  const int verbose = my_rank == 0 ? options.verbose : 0;
  if (comm) {
    for (auto& layer : layers_) {
      std::vector<Tensor> weights = layer->get_weights();
      if (weights.empty()) continue;
      for (Tensor& w : weights) {
        std::vector<float> values = w.to_vector();
        distributed::broadcast(*comm, values.data(), values.size(), 0, "rank 0's weights");
        w = Tensor::from_vector(values, w.shape());
      }
      layer->set_weights(weights);
    }
  }
  History history;
  for (auto& cb : options.callbacks) cb->on_train_begin(*this);
  stop_training = false;
  if (options.initial_epoch < 0) throw Error("fit(): initial_epoch must not be negative");
  if (!t.rng_started) {
    t.rng.seed(rng()());
    t.rng_started = true;
  }
  // The optimizer's slot handles per parameter, gathered once rather than at every step.
  std::vector<std::vector<lamina_tensor>> slot_handles;
  for (const auto& slots : t.slots) {
    slot_handles.emplace_back();
    for (const Tensor& s : slots) slot_handles.back().push_back(reinterpret_cast<lamina_tensor>(s.impl()));
  }
  const std::vector<std::string> outputs = output_names();
  // Steps that repeat the same kernels run them directly (replay.hpp); models with one input and
  // one output.
  StepReplay replay;
  const bool replayable = inputs_.size() == 1 && outputs_.size() == 1;
  BackendEntry& backend = Registry::get().active_backend();
  // The next batch is read on a worker thread while a step trains, when that pays (prefetch.hpp).
  BatchPrefetcher input(data);
  for (int epoch = options.initial_epoch; epoch < options.epochs && !stop_training; ++epoch) {
    for (auto& cb : options.callbacks) cb->on_epoch_begin(*this, epoch);
    if (verbose) std::cout << "Epoch " << epoch + 1 << "/" << options.epochs << "\n" << std::flush;
    input.begin_epoch(options.shuffle, t.rng);
    auto start = std::chrono::steady_clock::now();
    Progress progress(verbose, n);
    EpochLog log(outputs, t.options.metrics);
    double loss_sum = 0;
    int64_t seen = 0, batch_index = 0;
    bool diverged = false;  // the loss became NaN/inf and a callback stopped training
    for (; batch_index < data.num_batches(); ++batch_index) {
      auto [xb, yb] = input.get(batch_index);
      if (batch_index + 1 < data.num_batches()) input.prepare(batch_index + 1);  // read while this one trains
      if (xb.size() != inputs_.size() || yb.size() != outputs_.size())
        throw Error("fit (" + data.description() + "): batches hold " + std::to_string(xb.size()) +
                    " inputs and " + std::to_string(yb.size()) + " targets, but the model has " +
                    std::to_string(inputs_.size()) + " inputs and " + std::to_string(outputs_.size()) +
                    " outputs");
      if (epoch == options.initial_epoch && batch_index == 0)
        check_data(*this, xb, &yb, "fit (" + data.description() + ")", t.losses);
      const int64_t global_rows = xb[0].dim(0);
      if (comm) {
        auto [begin, end] = shard(global_rows, my_rank, ranks);
        for (Tensor& x : xb) x = x.slice(begin, end);
        for (Tensor& y : yb) y = y.slice(begin, end);
      }
      const int64_t bs = xb[0].dim(0);
      std::vector<Tensor> preds, parts;
      Tensor loss;
      double value = 0;
      std::vector<Tensor> grads(t.params.size());
      if (bs > 0) {  // a rank's share of a short last batch can be empty
        // Sparse labels become one-hot rows here, before the step, so that the step itself makes no
        // tensor from host values and can be replayed; the loss is then the categorical one.
        std::vector<Tensor> targets;
        std::vector<std::string> step_losses;
        for (size_t j = 0; j < yb.size(); ++j) {
          const bool sparse = t.losses[j] == "sparse_categorical_crossentropy";
          const Shape& out = outputs_[j].shape();
          targets.push_back(sparse ? one_hot(yb[j], out.empty() ? 1 : out.back()) : yb[j]);
          step_losses.push_back(sparse ? std::string("categorical_crossentropy") : t.losses[j]);
        }
        // On a device backend the batch goes to the device here, before the step, as the first
        // kernel would have copied it: the step then reads device memory only and can be replayed.
        if (replayable && !backend.table.host_memory) {
          xb[0] = on_backend(xb[0], backend);
          targets[0] = on_backend(targets[0], backend);
        }
        if (replayable && replay.ready_for(xb[0], targets[0])) {
          (void)t.rng();  // the draw a normal step makes, so that the random stream stays the same
          replay.run(xb[0], targets[0]);
          preds = {replay.pred()};
          loss = replay.loss();
          grads = replay.gradients();
        } else {
          RecordingPtr recording = replayable ? replay.begin(xb[0], targets[0]) : RecordingPtr();
          {
            RecordingScope scope(recording.get());
            std::optional<ActivityPenalties> activity;
            if (t.terms.activity) activity.emplace();
            preds = forward(xb, true, t.rng(), outputs_);
            loss = total_loss(step_losses, t.loss_weights, preds, targets, t.options.from_logits, &parts);
            // Keras' reported loss includes the regularizers' terms; each output's own loss does not.
            if (activity) loss = plus(loss, activity->total());
            loss = plus(loss, t.terms.weight_penalties());
            grads = gradients(loss, t.params);
          }
          if (replayable) replay.finish(std::move(recording), preds[0], loss, grads);
        }
        value = loss.item();
      }
      if (comm) average_gradients(*comm, t.params, grads, double(bs) / double(global_rows), value);
      if (!std::isfinite(value)) {
        // A callback such as TerminateOnNaN may end training here; without one the run cannot go on.
        for (auto& cb : options.callbacks) cb->on_batch_end(*this, batch_index, {{"loss", value}});
        if (stop_training) {
          diverged = true;
          break;
        }
        throw Error("training stopped: the loss became " +
                    std::string(std::isnan(value) ? "NaN" : "infinite") + " at epoch " +
                    std::to_string(epoch + 1) + ", batch " + std::to_string(batch_index + 1) +
                    "; the model diverged — try a lower learning rate or check the data for NaN/inf values");
      }
      {
        NoGradGuard no_grad;
        ++t.iteration;
        for (size_t i = 0; i < t.params.size(); ++i) {
          if (!grads[i].defined()) continue;
          const std::vector<lamina_tensor>& slots = slot_handles[i];
          ErrorSlot error;
          if (t.optimizer->table.apply(t.instance, reinterpret_cast<lamina_tensor>(t.params[i].impl()),
                                       reinterpret_cast<lamina_tensor>(grads[i].impl()), slots.data(),
                                       int32_t(slots.size()), t.iteration, &error) != LAMINA_OK)
            throw Error(std::string("optimizer ") + t.optimizer->table.class_name + ": " + error.message);
        }
        t.terms.apply_constraints();
      }
      if (comm && !t.state.empty()) average_state(*comm, t.state, double(bs) / double(global_rows));
      input.wait();  // the source is the worker's only while the step runs, never during a callback
      loss_sum += value * double(global_rows);
      seen += global_rows;
      if (bs > 0) {
        NoGradGuard no_grad;
        for (size_t j = 0; j < parts.size(); ++j) log.loss_sums[j] += double(parts[j].item()) * double(bs);
        for (size_t j = 0; j < preds.size(); ++j)  // this rank's rows; summed over ranks per epoch
          update_metrics(log.metrics[j], t.losses[j], preds[j], yb[j]);
      }
      // The per-batch logs only when someone reads them: a small model takes tens of microseconds
      // a step, and formatting them costs a few.
      if (!options.callbacks.empty()) {
        std::map<std::string, double> logs{{"loss", loss_sum / double(seen)}};
        log.add(logs, double(seen));
        for (auto& cb : options.callbacks) cb->on_batch_end(*this, batch_index, logs);
      }
      if (stop_training) break;  // a callback asked to stop (Keras checks after every batch)
      if (progress.live()) {
        std::map<std::string, double> logs;
        log.add(logs, double(seen));
        std::string text = " - loss: " + format_value(loss_sum / double(seen));
        for (const std::string& k : log.keys()) text += " - " + k + ": " + format_value(logs[k]);
        progress.update(seen, text);
      }
    }
    input.wait();  // after an early stop
    double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (comm) log.reduce(*comm);
    std::map<std::string, double> logs{{"loss", diverged ? std::nan("")
                                                : seen   ? loss_sum / double(seen)
                                                         : 0.0}};
    log.add(logs, double(seen));
    std::vector<std::string> keys{"loss"};
    for (const std::string& k : log.keys()) keys.push_back(k);
    if (validation || options.validation_batches) {
      auto v = validation
                   ? evaluate(Tensors(validation->first), Tensors(validation->second), options.batch_size, 0)
                   : evaluate(*options.validation_batches, 0);
      for (auto& [k, value] : v) logs["val_" + k] = value;
      keys.push_back("val_loss");
      for (const std::string& k : log.keys()) keys.push_back("val_" + k);
    }
    std::string text;
    for (auto& k : keys) text += " - " + k + ": " + format_value(logs[k]);
    progress.finish(train_seconds, text);
    t.epoch = epoch + 1;
    history.epoch.push_back(epoch);
    for (auto& k : keys) history.history[k].push_back(logs[k]);
    for (auto& cb : options.callbacks) cb->on_epoch_end(*this, epoch, logs);
  }
  for (auto& cb : options.callbacks) cb->on_train_end(*this);
  return history;
}

std::map<std::string, double> Model::evaluate(const Tensors& x_in, const Tensors& y_in, int64_t batch_size,
                                              int verbose) {
  if (!training_) throw Error("evaluate(): the model is not compiled; call compile(loss, optimizer) first");
  std::vector<Tensor> xs = inputs_of(x_in, "evaluate"), ys = targets_of(y_in, "evaluate");
  check_data(*this, xs, &ys, "evaluate", training_->losses);
  if (batch_size < 1) throw Error("evaluate(): batch_size must be at least 1");
  const lamina_communicator* comm = distributed::active_communicator();
  TensorBatches data(xs, ys, batch_size * (comm ? comm->size : 1));
  return evaluate(data, verbose);
}

std::map<std::string, double> Model::evaluate(BatchSource& data, int verbose) {
  if (!training_) throw Error("evaluate(): the model is not compiled; call compile(loss, optimizer) first");
  Training& t = *training_;
  NoGradGuard no_grad;
  const int64_t n = data.size();
  EpochLog log(output_names(), t.options.metrics);
  double loss_sum = 0;
  auto start = std::chrono::steady_clock::now();
  Tensor penalties = t.terms.weight_penalties();  // the weights do not change while evaluating
  const double weights_penalty = penalties.defined() ? double(penalties.item()) : 0.0;
  // In a job of many, each rank evaluates its share of every batch and the sums are reduced.
  const lamina_communicator* comm = distributed::active_communicator();
  BatchPrefetcher input(data);  // the next batch read while this one runs (prefetch.hpp)
  for (int64_t b = 0; b < data.num_batches(); ++b) {
    auto [xb, yb] = input.get(b);
    if (b + 1 < data.num_batches()) input.prepare(b + 1);
    if (xb.size() != inputs_.size() || yb.size() != outputs_.size())
      throw Error("evaluate (" + data.description() + "): batches hold " + std::to_string(xb.size()) +
                  " inputs and " + std::to_string(yb.size()) + " targets, but the model has " +
                  std::to_string(inputs_.size()) + " inputs and " + std::to_string(outputs_.size()) +
                  " outputs");
    if (b == 0) check_data(*this, xb, &yb, "evaluate (" + data.description() + ")", t.losses);
    if (comm) {
      auto [begin, end] = shard(xb[0].dim(0), comm->rank, comm->size);
      for (Tensor& x : xb) x = x.slice(begin, end);
      for (Tensor& y : yb) y = y.slice(begin, end);
      if (xb[0].dim(0) == 0) continue;
    }
    const double rows = double(xb[0].dim(0));
    std::optional<ActivityPenalties> activity;
    if (t.terms.activity) activity.emplace();
    std::vector<Tensor> preds = forward(xb, false, 0, outputs_), parts;
    Tensor loss = total_loss(t.losses, t.loss_weights, preds, yb, t.options.from_logits, &parts);
    if (activity) loss = plus(loss, activity->total());
    loss_sum += (double(loss.item()) + weights_penalty) * rows;
    for (size_t j = 0; j < parts.size(); ++j) log.loss_sums[j] += double(parts[j].item()) * rows;
    for (size_t j = 0; j < preds.size(); ++j) update_metrics(log.metrics[j], t.losses[j], preds[j], yb[j]);
  }
  if (comm) {
    std::vector<float> sum{float(loss_sum)};
    distributed::allreduce(*comm, sum.data(), sum.size(), "the loss");
    loss_sum = sum[0];
    log.reduce(*comm);
    if (comm->rank != 0) verbose = 0;
  }
  std::map<std::string, double> out{{"loss", n ? loss_sum / double(n) : 0.0}};
  log.add(out, double(n));
  if (verbose) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << n << "/" << n << " - " << format_value(s).substr(0, format_value(s).size() - 3) << "s";
    for (auto& [k, v] : out) std::cout << " - " << k << ": " << format_value(v);
    std::cout << "\n";
  }
  return out;
}

OptimizerState Model::optimizer_state() const {
  if (!training_) throw Error("optimizer_state(): the model is not compiled; call compile() first");
  const Training& t = *training_;
  OptimizerState s;
  s.optimizer.class_name = t.optimizer->table.class_name;
  boost::system::error_code ec;
  boost::json::value config = boost::json::parse(t.optimizer->table.get_config(t.instance), ec);
  if (!ec && config.is_object()) s.optimizer.config = config.as_object();
  s.iterations = t.iteration;
  int32_t n = t.optimizer->table.slot_count(t.instance);
  for (int32_t k = 0; k < n; ++k) s.slot_names.emplace_back(t.optimizer->table.slot_name(t.instance, k));
  // compile() collected the parameters in this same order.
  std::set<const TensorImpl*> seen;
  for (const auto& l : layers_)
    for (size_t i = 0; i < l->weights().size(); ++i)
      if (l->weight_trainable(i) && seen.insert(l->weights()[i].impl()).second)
        s.weights.push_back(l->name() + "/" + l->weight_names()[i]);
  s.slots = t.slots;
  return s;
}

void Model::set_optimizer_state(int64_t iterations, const std::vector<std::vector<Tensor>>& slots) {
  if (!training_) throw Error("set_optimizer_state(): the model is not compiled; call compile() first");
  Training& t = *training_;
  if (iterations < 0) throw Error("set_optimizer_state(): iterations must not be negative");
  if (slots.size() != t.slots.size())
    throw Error("set_optimizer_state(): the model has " + std::to_string(t.slots.size()) +
                " trainable weights, the state has " + std::to_string(slots.size()));
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].size() != t.slots[i].size())
      throw Error("set_optimizer_state(): trainable weight #" + std::to_string(i + 1) + " needs " +
                  std::to_string(t.slots[i].size()) + " slots, the state has " +
                  std::to_string(slots[i].size()));
    for (size_t k = 0; k < slots[i].size(); ++k)
      if (slots[i][k].shape() != t.slots[i][k].shape())
        throw Error("set_optimizer_state(): slot " + std::to_string(k) + " of trainable weight #" +
                    std::to_string(i + 1) + " has shape " + shape_to_string(t.slots[i][k].shape()) +
                    ", the state has " + shape_to_string(slots[i][k].shape()));
  }
  NoGradGuard no_grad;
  for (size_t i = 0; i < slots.size(); ++i)
    for (size_t k = 0; k < slots[i].size(); ++k) assign(t.slots[i][k], slots[i][k]);
  t.iteration = iterations;
}

TrainingState Model::training_state() const {
  if (!training_) throw Error("training_state(): the model is not compiled; call compile() first");
  const Training& t = *training_;
  TrainingState s;
  s.epoch = t.epoch;
  if (t.rng_started) {
    std::ostringstream text;
    text << t.rng;
    s.rng = text.str();
  }
  s.data_order = t.order;
  return s;
}

void Model::set_training_state(const TrainingState& s) {
  if (!training_) throw Error("set_training_state(): the model is not compiled; call compile() first");
  if (s.epoch < 0) throw Error("set_training_state(): epoch must not be negative");
  std::mt19937_64 generator;
  if (!s.rng.empty()) {
    std::istringstream text(s.rng);
    text >> generator;
    if (text.fail()) throw Error("set_training_state(): the generator state is not a std::mt19937_64 state");
  }
  // A permutation of 0..n-1, or the next epoch would read rows that do not exist.
  std::vector<bool> seen(s.data_order.size(), false);
  for (int64_t i : s.data_order) {
    if (i < 0 || size_t(i) >= seen.size() || seen[size_t(i)])
      throw Error("set_training_state(): the data order is not a permutation of its " +
                  std::to_string(seen.size()) + " sample indices");
    seen[size_t(i)] = true;
  }
  Training& t = *training_;
  t.epoch = s.epoch;
  t.rng = generator;
  t.rng_started = !s.rng.empty();
  t.order = s.data_order;
}

Tensor Model::predict(const Tensors& x, int64_t batch_size) const {
  if (outputs_.size() != 1)
    throw Error("predict(): model '" + name_ + "' has " + std::to_string(outputs_.size()) +
                " outputs; predict_outputs() gives them all");
  return predict_outputs(x, batch_size)[0];
}

namespace {

// Runs `run` on batches of the inputs and gathers each wanted output's rows on the host.
std::vector<Tensor> batched(const std::vector<Tensor>& xs, int64_t batch_size,
                            const std::vector<Shape>& shapes,
                            const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& run) {
  NoGradGuard no_grad;
  const int64_t n = xs[0].dim(0);
  std::vector<Tensor> out;
  for (Shape s : shapes) {
    s.insert(s.begin(), n);
    out.push_back(Tensor::empty_host(s));
  }
  std::vector<Tensor> slices;
  for (int64_t b = 0; b < n; b += batch_size) {
    int64_t e = std::min(n, b + batch_size);
    slices.clear();
    for (const Tensor& x : xs) slices.push_back(x.slice(b, e));
    std::vector<Tensor> values = run(slices);
    for (size_t j = 0; j < values.size(); ++j) {
      std::vector<float> v = values[j].to_vector();
      const int64_t row = shape_size(shapes[j]);
      std::memcpy(out[j].host_data() + b * row, v.data(), v.size() * sizeof(float));
    }
  }
  return out;
}

}  // namespace

std::vector<Tensor> Model::predict_outputs(const Tensors& x_in, int64_t batch_size) const {
  if (outputs_.empty()) throw Error("predict(): the model has no layers");
  if (batch_size < 1) throw Error("predict(): batch_size must be at least 1");
  std::vector<Tensor> xs = inputs_of(x_in, "predict");
  check_data(*this, xs, nullptr, "predict", {});
  for (Tensor& x : xs) x = to_host(x);
  std::vector<Shape> shapes;
  for (const KerasTensor& t : outputs_) shapes.push_back(t.shape());
  return batched(xs, batch_size, shapes,
                 [&](const std::vector<Tensor>& b) { return forward(b, false, 0, outputs_); });
}

Tensor Model::predict_until(const Tensors& x_in, size_t index, int64_t batch_size) const {
  if (layers_.empty()) throw Error("predict(): the model has no layers");
  if (index >= layers_.size())
    throw Error("predict_until(): layer index " + std::to_string(index) + " is out of range");
  if (batch_size < 1) throw Error("predict(): batch_size must be at least 1");
  std::vector<Tensor> xs = inputs_of(x_in, "predict");
  check_data(*this, xs, nullptr, "predict", {});
  for (Tensor& x : xs) x = to_host(x);
  const KerasTensor wanted = output_of(*layers_[index]);
  return batched(xs, batch_size, {wanted.shape()},
                 [&](const std::vector<Tensor>& b) { return forward(b, false, 0, {wanted}); })[0];
}

}  // namespace lamina
