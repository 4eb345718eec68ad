// 2-D pooling (NHWC): max_pool2d, avg_pool2d and their backward ops.
#include "op_set.hpp"

#include "../autograd.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

namespace lamina {

void define_pool_ops(OpSet& set) {
  OpDef& maxpool = set.def("max_pool2d", {"pool", "strides", "pads"});
  maxpool.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("max_pool2d", in, 1);
    return one_shape(pool_out("max_pool2d", in[0], a));
  };
  maxpool.backward = [](const Node& n, const Grads& g) {
    return Grads{run_op("max_pool2d_backward", {n.inputs[0], g[0]}, n.attrs)[0]};
  };
  OpDef& maxpool_b = set.def("max_pool2d_backward", {"pool", "strides", "pads"});
  maxpool_b.gradient_of = "max_pool2d";
  maxpool_b.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("max_pool2d_backward", in, 2);
    if (pool_out("max_pool2d_backward", in[0], a) != in[1])
      throw Error(op_context("max_pool2d_backward", in) + ": dy does not match the pooled shape");
    return one_shape(in[0]);
  };
  OpDef& avgpool = set.def("avg_pool2d", {"pool", "strides", "pads"});
  avgpool.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("avg_pool2d", in, 1);
    return one_shape(pool_out("avg_pool2d", in[0], a));
  };
  avgpool.backward = [](const Node& n, const Grads& g) {
    Attributes a = n.attrs;
    a.set("input_shape", n.inputs[0].shape());
    return Grads{run_op("avg_pool2d_backward", {g[0]}, a)[0]};
  };
  OpDef& avgpool_b = set.def("avg_pool2d_backward", {"pool", "strides", "pads", "input_shape"});
  avgpool_b.gradient_of = "avg_pool2d";
  avgpool_b.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("avg_pool2d_backward", in, 1);
    Shape x = a.get_ints("input_shape", {});
    if (pool_out("avg_pool2d_backward", x, a) != in[0])
      throw Error(op_context("avg_pool2d_backward", in) + ": dy does not match input_shape " +
                  shape_to_string(x));
    return one_shape(x);
  };
}

}  // namespace lamina
