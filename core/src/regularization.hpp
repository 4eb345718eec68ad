// Keras' regularizers and constraints, read once from a layer's config when the layer is built.
// A regularizer adds a penalty to the training loss: l1·Σ|w| + l2·Σw² for a weight, the same of the
// layer's output divided by the batch size for an activity regularizer (as Keras 3 and tf_keras
// both report it, in fit and in evaluate). A constraint projects a trainable weight after each
// optimizer update. docs/regularization.md lists the accepted forms.
#pragma once

#include <lamina/tensor.hpp>

#include <boost/json/object.hpp>

#include <string>
#include <utility>
#include <vector>

namespace lamina {

struct Penalty {
  double l1 = 0.0, l2 = 0.0;
  bool active() const { return l1 != 0.0 || l2 != 0.0; }
};

struct Constraint {
  enum class Kind { none, max_norm, min_max_norm, unit_norm, non_neg };
  Kind kind = Kind::none;
  double min_value = 0.0, max_value = 0.0, rate = 1.0;
  std::vector<int64_t> axes;  // the axes the norm runs over (non-negative)
  bool active() const { return kind != Kind::none; }
};

// What one layer adds to training: per weight (parallel to Layer::weights()) a penalty and a
// constraint, and the penalty on its output.
struct LayerTerms {
  std::vector<Penalty> weight_penalties;
  std::vector<Constraint> constraints;
  Penalty activity;
  bool empty() const;
};

// Reads `<w>_regularizer` and `<w>_constraint` for each weight `w` (for a weight named `x_kernel`,
// `x_regularizer` / `x_constraint`, as Keras names depthwise_kernel's) and `activity_regularizer`.
// `where` names the layer in errors.
LayerTerms read_layer_terms(const std::string& where, const boost::json::object& config,
                            const std::vector<std::string>& weight_names, const std::vector<Shape>& weight_shapes);

// l1·Σ|x| + l2·Σx², a scalar tensor; undefined for a penalty that is not active().
Tensor penalty_of(const Penalty& penalty, const Tensor& x);

// Projects `w` in place (outside autograd).
void apply_constraint(const Constraint& constraint, const Tensor& w);

// What a compiled model applies: the penalties and constraints of its trainable weights, and
// whether some layer penalizes its output.
struct ModelTerms {
  std::vector<std::pair<Tensor, Penalty>> penalties;
  std::vector<std::pair<Tensor, Constraint>> constraints;
  bool activity = false;
  // The weights' penalties summed; undefined when there are none.
  Tensor weight_penalties() const;
  void apply_constraints() const;
};

// Sums the activity penalties of the layer outputs a forward pass computes on this thread while
// it is alive (Model::forward reports each output of a layer that has one).
class ActivityPenalties {
 public:
  ActivityPenalties();
  ~ActivityPenalties();
  ActivityPenalties(const ActivityPenalties&) = delete;
  ActivityPenalties& operator=(const ActivityPenalties&) = delete;
  // The scope alive on this thread, or null.
  static ActivityPenalties* current();
  // penalty(output) / batch size, as Keras adds it.
  void add(const Penalty& penalty, const Tensor& output);
  // Their sum; undefined when no output had a penalty.
  const Tensor& total() const { return total_; }

 private:
  Tensor total_;
  ActivityPenalties* previous_;
};

}  // namespace lamina
