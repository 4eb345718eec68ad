// Random ops: dropout_mask and random_normal (their seeds are attributes).
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
  OpDef& normal = set.def("random_normal", {"mean", "stddev", "seed", "shape"});
  normal.shape_only_inputs = true;
  normal.infer = [](const ShapeList& in, const Attributes& a) {
    double stddev = a.get_float("stddev", 1.0);
    if (!(stddev >= 0.0))
      throw Error("op 'random_normal': stddev must be >= 0, got " + std::to_string(stddev));
    if (in.size() == 1) return one_shape(in[0]);
    return one_shape(a.get_ints("shape", {}));
  };
}

}  // namespace lamina
