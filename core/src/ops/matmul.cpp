// Matrix products: matmul and matmul_bias (bias and activation fused).
#include "op_set.hpp"

#include "../autograd.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

#include <vector>

namespace lamina {

void define_matmul_ops(OpSet& set) {
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

  OpDef& matmul = set.def("matmul", {"transpose_a", "transpose_b"});
  matmul.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("matmul", in, 2);
    return one_shape(matmul_out("matmul", in, a));
  };
  matmul.backward = [matmul_grads](const Node& n, const Grads& g) { return matmul_grads(n, g[0]); };

  // matmul_bias: activation(op(a)·op(b) + bias), bias (N,) added to every row.
  OpDef& matmul_bias = set.def("matmul_bias", {"transpose_a", "transpose_b", "activation"});
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
}

}  // namespace lamina
