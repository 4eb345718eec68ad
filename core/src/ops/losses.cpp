// Losses: mean_squared_error and softmax_cross_entropy, each a forward op and its backward op.
#include "op_set.hpp"

#include "../autograd.hpp"
#include "../dispatch.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace lamina {

void define_loss_ops(OpSet& set) {
  // Losses: one op forward and one backward, instead of a chain of element-wise ops, reductions and
  // their gradient rules (a dozen kernel calls, which cost more than the arithmetic on small batches).
  // Inputs: prediction (or logits) and target of the same shape; output: the scalar loss, shape ().
  // `over_classes`: the last axis holds the classes; `target_gradient`: the target gets -dp.
  auto loss_pair = [&](const std::string& name, bool over_classes, bool target_gradient, FallbackFn forward,
                       FallbackFn backward) {
    OpDef& d = set.def(name);
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
    OpDef& b = set.def(backward_name);
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
}

}  // namespace lamina
