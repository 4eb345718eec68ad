// 2-D convolution (NHWC): conv2d, conv2d_bias and their backward ops; conv2d_transpose.
#include "op_set.hpp"

#include "../autograd.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

#include <vector>

namespace lamina {

void define_conv_ops(OpSet& set) {
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

  OpDef& conv = set.def("conv2d", {"strides", "pads", "dilation", "groups"});
  conv.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("conv2d", in, 2);
    return one_shape(conv_out("conv2d", in[0], in[1], a));
  };
  conv.backward = [conv_grads](const Node& n, const Grads& g) { return conv_grads(n, g[0], false); };

  // conv2d_bias: activation(conv2d(x, w) + b), b (O,).
  OpDef& conv_bias = set.def("conv2d_bias", {"strides", "pads", "dilation", "groups", "activation"});
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

  OpDef& conv_bd = set.def("conv2d_backward_data", {"strides", "pads", "dilation", "groups", "activation",
                                                    "input_shape", "filter_shape"});
  conv_bd.gradient_of = "conv2d";
  conv_bd.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("conv2d_backward_data", in, 2);
    Shape x = a.get_ints("input_shape", {});
    if (conv_out("conv2d_backward_data", x, in[1], a) != in[0])
      throw Error(op_context("conv2d_backward_data", in) + ": dy does not match input_shape " +
                  shape_to_string(x));
    return one_shape(x);
  };
  OpDef& conv_bf = set.def("conv2d_backward_filter", {"strides", "pads", "dilation", "groups", "activation",
                                                      "input_shape", "filter_shape"});
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
  OpDef& conv_bfb = set.def("conv2d_backward_filter_bias", {"strides", "pads", "dilation", "groups",
                                                            "activation", "input_shape", "filter_shape"});
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

  // conv2d_transpose: x (N,H,W,C), w (KH,KW,O,C) → y (N,OH,OW,O), the convolution whose gradient
  // w.r.t. its input is conv2d's: y = conv2d_backward_data(x, w) for a conv2d taking y's shape to
  // x's. `output_size` [OH, OW] picks y's size among those a strided conv2d maps onto (H, W).
  // Backends enter their conv2d_backward_data kernel under this name; the fallback runs it by name.
  auto transpose_attrs = [](const Shape& x, const Shape& w, const Attributes& a) {
    auto size = a.get_ints("output_size", {});
    if (x.size() != 4 || w.size() != 4 || size.size() != 2)
      throw Error(op_context("conv2d_transpose", {x, w}) +
                  ": expects x (N,H,W,C), w (KH,KW,O,C) and output_size [OH, OW]");
    Attributes full = a;
    full.set("input_shape", Shape{x[0], size[0], size[1], w[2]});
    full.set("filter_shape", w);
    return full;
  };
  OpDef& conv_t = set.def("conv2d_transpose", {"strides", "pads", "output_size"});
  conv_t.infer = [transpose_attrs](const ShapeList& in, const Attributes& a) {
    need_inputs("conv2d_transpose", in, 2);
    Shape y = transpose_attrs(in[0], in[1], a).get_ints("input_shape", {});
    if (in[0][3] != in[1][3])
      throw Error(op_context("conv2d_transpose", in) + ": input has " + std::to_string(in[0][3]) +
                  " channels, the kernel (KH,KW,O,C) expects " + std::to_string(in[1][3]));
    if (conv_out("conv2d_transpose", y, in[1], a) != in[0])
      throw Error(op_context("conv2d_transpose", in) + ": output_size " + shape_to_string(Shape{y[1], y[2]}) +
                  " is not one that the strides and pads map onto the input's height and width");
    return one_shape(y);
  };
  // y = Aᵀx with A = conv2d(·, w): dx = A·dy = conv2d(dy, w); dw is conv2d's filter gradient with
  // dy in the input's place and x in the output gradient's.
  conv_t.backward = [](const Node& n, const Grads& g) {
    Grads out(2);
    Attributes a;
    a.set("strides", n.attrs.get_ints("strides", {1, 1})).set("pads", n.attrs.get_ints("pads", {0, 0, 0, 0}));
    if (wants(n, 0)) out[0] = run_op("conv2d", {g[0], n.inputs[1]}, a)[0];
    if (wants(n, 1)) {
      a.set("input_shape", g[0].shape()).set("filter_shape", n.inputs[1].shape());
      out[1] = run_op("conv2d_backward_filter", {g[0], n.inputs[0]}, a)[0];
    }
    return out;
  };
  conv_t.fallback = [transpose_attrs](const std::vector<Tensor>& in, const Attributes& a) {
    return run_op("conv2d_backward_data", in, transpose_attrs(in[0].shape(), in[1].shape(), a));
  };
}

}  // namespace lamina
