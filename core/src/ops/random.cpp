// Random ops: dropout_mask (its seed is an attribute).
#include "op_set.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

namespace lamina {

void define_random_ops(OpSet& set) {
  OpDef& dropout = set.def("dropout_mask", {"rate", "seed", "shape"});
  dropout.shape_only_inputs = true;
  dropout.infer = [](const ShapeList& in, const Attributes& a) {
    double rate = a.get_float("rate", 0.0);
    if (!(rate >= 0.0 && rate < 1.0))
      throw Error("op 'dropout_mask': rate must be in [0, 1), got " + std::to_string(rate));
    if (in.size() == 1) return one_shape(in[0]);
    return one_shape(a.get_ints("shape", {}));
  };
}

}  // namespace lamina
