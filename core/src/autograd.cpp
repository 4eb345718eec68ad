// Autograd (autograd.hpp): the grad mode, graph recording and the backward pass.
#include "autograd.hpp"

#include "op_registry.hpp"
#include "tensor_impl.hpp"

#include <lamina/error.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <unordered_map>

namespace lamina {

namespace {

thread_local bool g_grad_enabled = true;
std::atomic<uint64_t> g_sequence{0};

}  // namespace

bool grad_enabled() {
  return g_grad_enabled;
}
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) {
  g_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_enabled = previous_;
}
RecordingGuard::RecordingGuard() : previous_(g_grad_enabled) {
  g_grad_enabled = true;
}
RecordingGuard::~RecordingGuard() {
  g_grad_enabled = previous_;
}

bool needs_grad(const Tensor& t) {
  return t.impl()->requires_grad || t.impl()->grad_fn;
}

void record_node(const OpDef& op, const std::vector<Tensor>& inputs, const Attributes& attrs,
                 std::vector<Tensor>& outputs) {
  bool any = false;
  for (const Tensor& t : inputs) any |= needs_grad(t);
  if (!any) return;
  auto node = std::make_shared<Node>();
  node->op = &op;
  node->inputs = inputs;
  node->attrs = attrs;
  node->sequence = g_sequence.fetch_add(1);
  node->outputs.reserve(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    node->outputs.push_back(detached(outputs[i]));
    outputs[i].impl()->grad_fn = node;
    outputs[i].impl()->output_index = int(i);
  }
}

std::vector<Tensor> gradients(const Tensor& loss, const std::vector<Tensor>& wrt) {
  if (loss.size() != 1)
    throw Error("gradients(): the loss must be a single value, got shape " + shape_to_string(loss.shape()));
  NoGradGuard no_grad;
  std::vector<Tensor> result(wrt.size());
  if (!loss.impl()->grad_fn) return result;

  // Collect the graph, then walk it newest first: a node's output gradients are complete once
  // every node created after it has run.
  std::vector<Node*> nodes;
  std::unordered_map<Node*, size_t> index;  // position in `nodes`
  std::vector<Node*> stack{loss.impl()->grad_fn.get()};
  nodes.reserve(64);
  stack.reserve(64);
  index.reserve(64);
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (!index.emplace(n, 0).second) continue;
    nodes.push_back(n);
    for (const Tensor& t : n->inputs)
      if (t.impl()->grad_fn && !index.count(t.impl()->grad_fn.get()))
        stack.push_back(t.impl()->grad_fn.get());
  }
  std::sort(nodes.begin(), nodes.end(), [](Node* a, Node* b) { return a->sequence > b->sequence; });
  for (size_t i = 0; i < nodes.size(); ++i) index[nodes[i]] = i;
  std::vector<std::vector<Tensor>> out_grads(nodes.size());

  std::unordered_map<TensorImpl*, Tensor> leaf_grads;
  auto accumulate = [](Tensor& slot, const Tensor& g) { slot = slot.defined() ? ops::add(slot, g) : g; };
  {
    Node* top = loss.impl()->grad_fn.get();
    auto& og = out_grads[index[top]];
    og.resize(top->outputs.size());
    og[size_t(loss.impl()->output_index)] = ops::full(loss.shape(), 1.0f);
  }

  for (size_t k = 0; k < nodes.size(); ++k) {
    Node* n = nodes[k];
    auto& og = out_grads[k];
    og.resize(n->outputs.size());
    bool any = false;
    for (size_t i = 0; i < og.size(); ++i) {
      if (og[i].defined())
        any = true;
      else if (!n->op->optional_output_gradients)
        og[i] = ops::full(n->outputs[i].shape(), 0.0f);
    }
    if (!any) continue;
    std::vector<Tensor> ig = n->op->backward(*n, og);
    for (size_t i = 0; i < n->inputs.size() && i < ig.size(); ++i) {
      if (!ig[i].defined()) continue;
      const Tensor& in = n->inputs[i];
      if (in.impl()->grad_fn) {
        Node* producer = in.impl()->grad_fn.get();
        auto& slots = out_grads[index.at(producer)];
        slots.resize(producer->outputs.size());
        accumulate(slots[size_t(in.impl()->output_index)], ig[i]);
      } else if (in.impl()->requires_grad) {
        accumulate(leaf_grads[in.impl()], ig[i]);
      }
    }
    og.clear();
  }
  for (size_t i = 0; i < wrt.size(); ++i) {
    auto it = leaf_grads.find(wrt[i].impl());
    if (it != leaf_grads.end()) result[i] = it->second;
  }
  return result;
}

}  // namespace lamina
