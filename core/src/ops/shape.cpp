// Shape ops the core computes itself: reshape (a view on the same buffer).
#include "op_set.hpp"

#include "../autograd.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

namespace lamina {

void define_shape_ops(OpSet& set) {
  OpDef& reshape = set.def("reshape", {"shape"});
  reshape.has_kernel = false;
  reshape.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("reshape", in, 1);
    Shape target = a.get_ints("shape", {});
    int64_t known = 1, unknown = -1;
    for (size_t i = 0; i < target.size(); ++i) {
      if (target[i] == -1) {
        if (unknown >= 0)
          throw Error("reshape to " + shape_to_string(target) + ": only one dimension may be -1");
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
    return one_shape(target);
  };
  reshape.backward = [](const Node& n, const Grads& g) {
    return Grads{ops::reshape(g[0], n.inputs[0].shape())};
  };
}

}  // namespace lamina
