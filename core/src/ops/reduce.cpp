// Reductions over axes: reduce_sum, softmax, log_softmax.
#include "op_set.hpp"

#include "../autograd.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

namespace lamina {

void define_reduce_ops(OpSet& set) {
  // reduce_sum(x; axes, keepdims): kernels always see y at x's rank (summed axes of size 1, and
  // keepdims = 1 among their attributes); without keepdims the core drops those axes from y's shape.
  OpDef& reduce = set.def("reduce_sum", {"axes", "keepdims"});
  reduce.kernel_keeps_rank = true;
  reduce.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("reduce_sum", in, 1);
    Shape kept = in[0];
    std::vector<bool> summed(kept.size(), false);
    for (int64_t axis : a.get_ints("axes", {})) {
      int64_t r = axis < 0 ? axis + int64_t(kept.size()) : axis;
      if (r < 0 || r >= int64_t(kept.size()))
        throw Error(op_context("reduce_sum", in) + ": axis " + std::to_string(axis) + " is out of range");
      kept[size_t(r)] = 1;
      summed[size_t(r)] = true;
    }
    if (a.get_int("keepdims", 0)) return one_shape(kept);
    Shape out;
    for (size_t i = 0; i < kept.size(); ++i)
      if (!summed[i]) out.push_back(kept[i]);
    return one_shape(out);
  };
  reduce.backward = [](const Node& n, const Grads& g) {
    const Shape& x = n.inputs[0].shape();
    Shape kept = x;
    for (int64_t axis : n.attrs.get_ints("axes", {}))
      kept[size_t(axis < 0 ? axis + int64_t(x.size()) : axis)] = 1;
    return Grads{ops::mul(ops::full(x, 1.0f), ops::reshape(g[0], kept))};
  };

  OpDef& softmax = set.def("softmax");
  softmax.infer = same_shape;
  softmax.gives_probabilities = true;
  softmax.backward = [](const Node& n, const Grads& g) {
    const Tensor& y = n.outputs[0];
    Tensor dot = ops::reduce_sum(ops::mul(g[0], y), {-1}, true);
    return Grads{ops::mul(y, ops::sub(g[0], dot))};
  };
  OpDef& log_softmax = set.def("log_softmax");
  log_softmax.infer = same_shape;
  log_softmax.backward = [](const Node& n, const Grads& g) {
    Tensor total = ops::reduce_sum(g[0], {-1}, true);
    return Grads{ops::sub(g[0], ops::mul(ops::exp(n.outputs[0]), total))};
  };
}

}  // namespace lamina
