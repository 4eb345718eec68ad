// Reductions over axes: reduce_sum, softmax, log_softmax.
#include "op_set.hpp"

#include "../autograd.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

namespace lamina {

void define_reduce_ops(OpSet& set) {
  OpDef& reduce = set.def("reduce_sum");
  reduce.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("reduce_sum", in, 1);
    Shape out = in[0];
    for (int64_t axis : a.get_ints("axes", {})) {
      int64_t r = axis < 0 ? axis + int64_t(out.size()) : axis;
      if (r < 0 || r >= int64_t(out.size()))
        throw Error(op_context("reduce_sum", in) + ": axis " + std::to_string(axis) + " is out of range");
      out[size_t(r)] = 1;
    }
    return one_shape(out);
  };
  reduce.backward = [](const Node& n, const Grads& g) {
    return Grads{ops::mul(ops::full(n.inputs[0].shape(), 1.0f), g[0])};
  };

  OpDef& softmax = set.def("softmax");
  softmax.infer = same_shape;
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
