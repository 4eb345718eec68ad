// Layout ops: concat, slice, slice_backward, pad and transpose. They move elements without
// arithmetic; their shape rules and the copies behind the kernels are written once in
// <lamina/sdk/layout.hpp>, shared with every backend. Each op's gradient is another layout op.
#include "op_set.hpp"

#include "../attributes.hpp"
#include "../autograd.hpp"
#include "../dispatch.hpp"
#include "../plugins.hpp"
#include "../tensor_impl.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>
#include <lamina/sdk/layout.hpp>

namespace lamina {

namespace layout = sdk::layout;

namespace {

// Runs a shape rule of layout.hpp, naming the op and its input shapes in the message.
template <class Rule>
auto checked(const std::string& op, const ShapeList& in, Rule&& rule) {
  try {
    return rule();
  } catch (const std::invalid_argument& e) {
    std::string shapes;
    for (size_t i = 0; i < in.size(); ++i) shapes += (i ? ", " : "") + shape_to_string(in[i]);
    throw Error("op '" + op + "' on " + shapes + ": " + e.what());
  }
}

std::vector<layout::AxisSlice> slices_of(const Shape& whole, const Attributes& a) {
  return layout::resolve_slice(whole, a.get_ints("axes", {}), a.get_ints("begin", {}), a.get_ints("end", {}),
                               a.get_ints("step", {}));
}

// The op's result computed on the host from the plan every backend runs, for a backend that has
// no kernel for it (one written before these ops existed); the output moves to that backend.
FallbackFn on_host(const std::string& op) {
  return [op](const std::vector<Tensor>& in, const Attributes& attrs) {
    std::vector<Tensor> host;
    std::vector<lamina_view> views;
    for (const Tensor& t : in) host.push_back(to_host(t));
    for (const Tensor& t : host) views.push_back(view_of(t));
    std::vector<Shape> shapes = find_op(op)->infer(ShapeList(in), attrs);
    Tensor out = make_tensor(shapes[0], nullptr);
    lamina_view out_view = view_of(out);
    CAttrs c(attrs);
    layout::run_copy_plan(layout::plan_copy(op.c_str(), views.data(), int32_t(views.size()), out_view, c.view()),
                          views.data(), out_view);
    return std::vector<Tensor>{on_backend(out, Registry::get().active_backend())};
  };
}

}  // namespace

void define_layout_ops(OpSet& set) {
  // concat(x0, x1, ...; axis): joined along `axis`; d(x_i) is dy's slice of x_i's extent.
  OpDef& concat = set.def("concat", {"axis"});
  concat.infer = [](const ShapeList& in, const Attributes& a) {
    return checked("concat", in, [&] {
      return std::vector<Shape>{layout::concat_shape(in.to_vector(), a.get_int("axis", -1))};
    });
  };
  concat.backward = [](const Node& n, const std::vector<Tensor>& g) {
    size_t axis = size_t(layout::normalize_axis(n.attrs.get_int("axis", -1), g[0].shape().size()));
    std::vector<Tensor> grads(n.inputs.size());
    int64_t at = 0;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      int64_t extent = n.inputs[i].dim(int64_t(axis));
      if (wants(n, i)) grads[i] = ops::slice(g[0], {int64_t(axis)}, {at}, {at + extent});
      at += extent;
    }
    return grads;
  };
  concat.fallback = on_host("concat");

  // slice(x; axes, begin, end, step): Python's x[begin:end:step] on each named axis.
  OpDef& slice = set.def("slice", {"axes", "begin", "end", "step"});
  slice.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("slice", in, 1);
    return checked("slice", in, [&] { return std::vector<Shape>{layout::slice_shape(slices_of(in[0], a))}; });
  };
  slice.backward = [](const Node& n, const std::vector<Tensor>& g) {
    Attributes a = n.attrs;
    a.set("input_shape", n.inputs[0].shape());
    return std::vector<Tensor>{run_op("slice_backward", {g[0]}, a)[0]};
  };
  slice.fallback = on_host("slice");

  // slice_backward(dy; input_shape, and slice's attributes): zeros of input_shape with dy in the
  // slice's box.
  OpDef& slice_backward = set.def("slice_backward", {"input_shape", "axes", "begin", "end", "step"});
  slice_backward.gradient_of = "slice";
  slice_backward.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("slice_backward", in, 1);
    Shape whole = a.get_ints("input_shape", {});
    Shape part = checked("slice_backward", in, [&] { return layout::slice_shape(slices_of(whole, a)); });
    if (part != in[0])
      throw Error("op 'slice_backward': dy of shape " + shape_to_string(in[0]) +
                  " does not match the slice of input_shape " + shape_to_string(whole) + ", which is " +
                  shape_to_string(part));
    return std::vector<Shape>{whole};
  };
  slice_backward.backward = [](const Node& n, const std::vector<Tensor>& g) {
    return std::vector<Tensor>{run_op("slice", {g[0]}, n.attrs)[0]};
  };
  slice_backward.fallback = on_host("slice_backward");

  // pad(x; pads_before, pads_after, value): x surrounded by `value`; d(x) is dy's interior.
  OpDef& pad = set.def("pad", {"pads_before", "pads_after", "value"});
  pad.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("pad", in, 1);
    return checked("pad", in, [&] {
      return std::vector<Shape>{
          layout::pad_shape(in[0], a.get_ints("pads_before", {}), a.get_ints("pads_after", {}))};
    });
  };
  pad.backward = [](const Node& n, const std::vector<Tensor>& g) {
    Shape before = n.attrs.get_ints("pads_before", {}), end = before, axes;
    for (size_t k = 0; k < before.size(); ++k) {
      axes.push_back(int64_t(k));
      end[k] += n.inputs[0].shape()[k];
    }
    return std::vector<Tensor>{ops::slice(g[0], axes, before, end)};
  };
  pad.fallback = on_host("pad");

  // transpose(x; perm): output axis k is x's axis perm[k] (no perm: reversed axes).
  OpDef& transpose = set.def("transpose", {"perm"});
  transpose.infer = [](const ShapeList& in, const Attributes& a) {
    need_inputs("transpose", in, 1);
    return checked("transpose", in, [&] {
      return std::vector<Shape>{layout::transpose_shape(in[0], a.get_ints("perm", {}))};
    });
  };
  transpose.backward = [](const Node& n, const std::vector<Tensor>& g) {
    Shape perm = layout::resolve_perm(n.attrs.get_ints("perm", {}), n.inputs[0].shape().size()),
          inverse(perm.size());
    for (size_t k = 0; k < perm.size(); ++k) inverse[size_t(perm[k])] = int64_t(k);
    return std::vector<Tensor>{ops::transpose(g[0], inverse)};
  };
  transpose.fallback = on_host("transpose");
}

}  // namespace lamina
