// Plugin ops (plugin_ops.hpp).
#include "plugin_ops.hpp"

#include "attributes.hpp"
#include "autograd.hpp"
#include "tensor_impl.hpp"

#include <lamina/error.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace lamina {

namespace {

Tensor run_composition(const lamina_op_class& c, const std::string& name, const std::vector<Tensor>& in,
                       const Attributes& attrs) {
  std::vector<lamina_tensor> handles;
  for (const Tensor& t : in) handles.push_back(reinterpret_cast<lamina_tensor>(t.impl()));
  CAttrs ca(attrs);
  lamina_tensor out = nullptr;
  ErrorSlot error;
  if (c.compose(handles.data(), int32_t(handles.size()), ca.view(), &out, &error) != LAMINA_OK || !out)
    throw Error("op '" + name +
                "': its composition failed: " + (error.message[0] ? error.message : "no output"));
  return Tensor(reinterpret_cast<TensorImpl*>(out), false);
}

}  // namespace

const OpDef& define_plugin_op(const lamina_op_class& c) {
  if (c.struct_size < offsetof(lamina_op_class, kernels) + sizeof(c.kernels) || !c.name || !*c.name ||
      !c.compose || c.n_inputs < 1 || c.n_inputs > LAMINA_MAX_DIMS || c.kernel_count < 0 ||
      (c.kernel_count > 0 && !c.kernels))
    throw Error(std::string("op table '") + (c.name ? c.name : "") +
                "' is incomplete (needs a name, 1 to 8 inputs and a composition)");
  std::string name = c.name;
  if (find_op(name))
    throw Error("an op named '" + name + "' already exists; name plugin ops '<plugin>.<op>'");
  auto def = std::make_unique<OpDef>();
  def->name = name;
  const lamina_op_class table = c;  // the plugin's struct may be a temporary
  def->infer = [table, name](const ShapeList& shapes, const Attributes& attrs) -> std::vector<Shape> {
    if (int32_t(shapes.size()) != table.n_inputs)
      throw Error("op '" + name + "' takes " + std::to_string(table.n_inputs) +
                  (table.n_inputs == 1 ? " input" : " inputs") + ", got " + std::to_string(shapes.size()));
    if (!table.output_shape) return {shapes[0]};
    std::vector<lamina_view> views(shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i) {
      views[i] = lamina_view{};
      views[i].ndim = int32_t(shapes[i].size());
      for (size_t d = 0; d < shapes[i].size() && d < LAMINA_MAX_DIMS; ++d) views[i].shape[d] = shapes[i][d];
    }
    CAttrs ca(attrs);
    int64_t out[LAMINA_MAX_DIMS] = {};
    int32_t ndim = 0;
    ErrorSlot error;
    if (table.output_shape(views.data(), int32_t(views.size()), ca.view(), out, &ndim, &error) != LAMINA_OK)
      throw Error("op '" + name + "': " + error.message);
    if (ndim < 0 || ndim > LAMINA_MAX_DIMS) throw Error("op '" + name + "': output rank out of range");
    return {Shape(out, out + ndim)};
  };
  def->fallback = [table, name](const std::vector<Tensor>& in, const Attributes& attrs) {
    return std::vector<Tensor>{run_composition(table, name, in, attrs)};
  };
  // d(inputs) of Σ composition(inputs) · dy: the composition recomputed on detached inputs.
  def->backward = [table, name](const Node& n, const std::vector<Tensor>& g) {
    std::vector<Tensor> leaves;
    for (const Tensor& t : n.inputs) leaves.push_back(detached(t).set_requires_grad(needs_grad(t)));
    Tensor loss;
    {
      RecordingGuard recording;
      Tensor y = run_composition(table, name, leaves, n.attrs);
      loss = ops::sum(ops::mul(y, g[0]));
    }
    return gradients(loss, leaves);
  };
  for (int32_t i = 0; i < c.kernel_count; ++i)
    if (c.kernels[i].backend && c.kernels[i].run)
      def->plugin_kernels.emplace_back(c.kernels[i].backend, c.kernels[i].run);
  return add_op(std::move(def));
}

}  // namespace lamina
