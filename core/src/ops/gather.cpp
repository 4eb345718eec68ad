// gather (rows of a table picked by indices: Embedding's lookup) and gather_backward (its
// gradient, a scatter-add into a table of zeros). The shape rules, the index check and the host
// loops are written once in <lamina/sdk/gather.hpp>; host-memory backends enter those loops as
// their kernels, and any other backend runs them here on a host copy (the fallback).
#include "op_set.hpp"

#include "../attributes.hpp"
#include "../autograd.hpp"
#include "../dispatch.hpp"
#include "../launch_recorder.hpp"
#include "../plugins.hpp"
#include "../tensor_impl.hpp"

#include <lamina/error.hpp>
#include <lamina/sdk/gather.hpp>

#include <stdexcept>

namespace lamina {

namespace gather = sdk::gather;

namespace {

template <class Rule>
auto checked(const std::string& op, const ShapeList& in, Rule&& rule) {
  try {
    return rule();
  } catch (const std::invalid_argument& e) {
    throw Error(op_context(op, in) + ": " + e.what());
  }
}

// The op on a host copy of its inputs, its result moved to the active backend. A step that runs it
// cannot be replayed as a list of kernel launches, so it tells the recorder.
FallbackFn on_host(const std::string& op) {
  return [op](const std::vector<Tensor>& in, const Attributes& attrs) {
    if (LaunchRecorder* r = active_recorder()) r->spoil();
    std::vector<Tensor> host{to_host(in[0]), to_host(in[1])};
    std::vector<Shape> shapes = find_op(op)->infer(ShapeList(in), attrs);
    Tensor out = make_tensor(shapes[0], nullptr);
    std::vector<float> a = host[0].to_vector(), idx = host[1].to_vector(), y(size_t(shape_size(shapes[0])));
    try {
      if (op == "gather") {
        gather::gather_rows(a.data(), in[0].shape()[0], in[0].shape()[1], idx.data(), int64_t(idx.size()),
                            y.data());
      } else {
        gather::scatter_add_rows(a.data(), idx.data(), int64_t(idx.size()), shapes[0][0], shapes[0][1],
                                 y.data());
      }
    } catch (const std::invalid_argument& e) {
      throw Error("op '" + op + "': " + e.what());
    }
    out = Tensor::from_vector(y, shapes[0]);
    return std::vector<Tensor>{on_backend(out, Registry::get().active_backend())};
  };
}

}  // namespace

void define_gather_ops(OpSet& set) {
  // gather(table (rows, width), indices): y = table[indices] (indices' shape + (width,)). The
  // indices are data: they get no gradient.
  OpDef& g = set.def("gather");
  g.infer = [](const ShapeList& in, const Attributes&) {
    need_inputs("gather", in, 2);
    return checked("gather", in, [&] { return one_shape(gather::gather_shape(in[0], in[1])); });
  };
  g.backward = [](const Node& n, const std::vector<Tensor>& dy) {
    std::vector<Tensor> grads(2);
    if (wants(n, 0))
      grads[0] = run_op("gather_backward", {dy[0], n.inputs[1]},
                        Attributes().set("input_dim", n.inputs[0].shape()[0]))[0];
    return grads;
  };
  g.fallback = on_host("gather");

  // gather_backward(dy, indices; input_dim): zeros(input_dim, width) with each dy row added to the
  // row its index names.
  OpDef& gb = set.def("gather_backward", {"input_dim"});
  gb.gradient_of = "gather";
  gb.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("gather_backward", in, 2);
    return checked("gather_backward", in, [&] {
      return one_shape(gather::gather_backward_shape(in[0], in[1], a.get_int("input_dim", 0)));
    });
  };
  gb.backward = [](const Node& n, const std::vector<Tensor>& g) {
    std::vector<Tensor> grads(2);
    if (wants(n, 0)) grads[0] = run_op("gather", {g[0], n.inputs[1]}, {})[0];
    return grads;
  };
  gb.fallback = on_host("gather_backward");
}

}  // namespace lamina
