// The host table (host_table.hpp): what plugins call back into the core.
#include "host_table.hpp"

#include "dispatch.hpp"
#include "model.hpp"
#include "plugins.hpp"
#include "tensor_impl.hpp"

#include <lamina/error.hpp>
#include <lamina/ops.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <span>
#include <string>
#include <vector>

namespace lamina {

namespace {

// Runs `body`, turning an exception into LAMINA_ERROR plus its message (for host-table calls).
template <class Body>
lamina_status sdk_guard(lamina_error* error, Body&& body) noexcept {
  auto write = [&](const char* m) {
    if (!error) return;
    std::strncpy(error->message, m, sizeof(error->message) - 1);
    error->message[sizeof(error->message) - 1] = '\0';
  };
  try {
    body();
    return LAMINA_OK;
  } catch (const std::exception& e) {
    write(e.what());
  } catch (...) {
    write("unknown error");
  }
  return LAMINA_ERROR;
}

Registry* registry_self(void* self) {
  return static_cast<Registry*>(self);
}

lamina_status host_register_backend(void* self, const lamina_backend* b, lamina_error* error) {
  return lamina::sdk_guard(error, [&] { registry_self(self)->register_backend(*b); });
}
lamina_status host_register_layer(void* self, const lamina_layer_class* c, lamina_error* error) {
  return lamina::sdk_guard(error, [&] { registry_self(self)->register_layer(*c); });
}
lamina_status host_register_optimizer(void* self, const lamina_optimizer_class* c, lamina_error* error) {
  return lamina::sdk_guard(error, [&] { registry_self(self)->register_optimizer(*c); });
}
lamina_status host_register_communicator(void* self, const lamina_communicator* c, lamina_error* error) {
  return lamina::sdk_guard(error, [&] { registry_self(self)->register_communicator(*c); });
}
lamina_status host_register_op(void* self, const lamina_op_class* c, lamina_error* error) {
  return lamina::sdk_guard(error, [&] {
    if (!c) throw Error("register_op: no op table");
    registry_self(self)->register_op(*c);
  });
}
TensorImpl* impl_of(lamina_tensor t) {
  return reinterpret_cast<TensorImpl*>(t);
}
lamina_tensor handle_of(Tensor t) {
  return reinterpret_cast<lamina_tensor>(t.release());
}
Tensor borrow(lamina_tensor t) {
  if (!t) throw Error("a plugin passed a null tensor");
  return Tensor(impl_of(t), true);
}

void host_retain(lamina_tensor t) {
  if (t) impl_of(t)->refs.fetch_add(1, std::memory_order_relaxed);
}
void host_release(lamina_tensor t) {
  Tensor adopt(impl_of(t), false);
}
int32_t host_shape(lamina_tensor t, int64_t* shape) {
  if (!t) return 0;
  const Shape& s = impl_of(t)->shape;
  for (size_t i = 0; i < s.size(); ++i) shape[i] = s[i];
  return int32_t(s.size());
}

Attributes from_c(const lamina_attrs* attrs) {
  Attributes a;
  if (!attrs || attrs->count == 0) return a;
  for (int32_t i = 0; i < attrs->count; ++i) {
    const lamina_attr& c = attrs->items[i];
    if (!c.name) throw Error("an op attribute has no name");
    switch (c.type) {
      case LAMINA_ATTR_INT:
        a.set(c.name, c.ints[0]);
        break;
      case LAMINA_ATTR_FLOAT:
        a.set(c.name, c.real);
        break;
      case LAMINA_ATTR_INTS:
        if (c.count < 0 || c.count > LAMINA_MAX_DIMS)
          throw Error(std::string("attribute '") + c.name + "' has a bad count");
        a.set(c.name, std::vector<int64_t>(c.ints, c.ints + c.count));
        break;
      case LAMINA_ATTR_STRING:
        a.set(c.name, std::string(c.text ? c.text : ""));
        break;
      default:
        throw Error(std::string("attribute '") + c.name + "' has an unknown type");
    }
  }
  return a;
}

lamina_status host_op(const char* op, const lamina_tensor* inputs, int32_t n_inputs,
                      const lamina_attrs* attrs, lamina_tensor* outputs, int32_t n_outputs,
                      lamina_error* error) {
  return sdk_guard(error, [&] {
    const OpDef& def = named_op(op ? op : "");
    // An optimizer's update: its outputs are the parameter and the slots themselves. Its operands
    // are held on the stack: an optimizer step makes one such call per parameter.
    constexpr int32_t kUpdateOperands = 8;
    if (def.in_place_update && n_outputs == n_inputs - 1 && n_inputs <= kUpdateOperands) {
      std::array<Tensor, kUpdateOperands> held;
      for (int32_t i = 0; i < n_inputs; ++i) held[size_t(i)] = borrow(inputs[i]);
      if (run_plugin_update(def, std::span<const Tensor>(held.data(), size_t(n_inputs)), attrs)) {
        outputs[0] = handle_of(held[0]);
        for (int32_t i = 2; i < n_inputs; ++i) outputs[i - 1] = handle_of(held[size_t(i)]);
        return;
      }
    }
    std::vector<Tensor> in;
    in.reserve(size_t(std::max(n_inputs, 0)));
    for (int32_t i = 0; i < n_inputs; ++i) in.push_back(borrow(inputs[i]));
    std::vector<Tensor> out = run_named_op(op ? op : "", in, from_c(attrs));
    if (int32_t(out.size()) != n_outputs)
      throw Error(std::string("op '") + op + "' gives " + std::to_string(out.size()) +
                  " outputs, the caller expected " + std::to_string(n_outputs));
    for (int32_t i = 0; i < n_outputs; ++i) outputs[i] = handle_of(out[size_t(i)]);
  });
}
lamina_status host_assign(lamina_tensor target, lamina_tensor value, lamina_error* error) {
  return sdk_guard(error, [&] { assign(borrow(target), borrow(value)); });
}
lamina_tensor host_full(const int64_t* shape, int32_t ndim, float value, lamina_error* error) {
  lamina_tensor out = nullptr;
  sdk_guard(error, [&] {
    if (ndim < 0 || ndim > LAMINA_MAX_DIMS) throw Error("full(): bad rank");
    out = handle_of(ops::full(Shape(shape, shape + ndim), value));
  });
  return out;
}
lamina_tensor host_tensor_from_host(const int64_t* shape, int32_t ndim, const float* data,
                                    lamina_error* error) {
  lamina_tensor out = nullptr;
  sdk_guard(error, [&] {
    if (ndim < 0 || ndim > LAMINA_MAX_DIMS || (ndim > 0 && !shape))
      throw Error("tensor_from_host(): bad rank");
    Shape s(shape, shape + ndim);
    for (int64_t d : s)
      if (d < 0) throw Error("tensor_from_host(): negative dimension in " + shape_to_string(s));
    int64_t n = shape_size(s);
    if (n > 0 && !data) throw Error("tensor_from_host(): no data for " + shape_to_string(s));
    Tensor t = Tensor::from_vector(std::vector<float>(data, data + n), s);
    out = handle_of(on_backend(t, Registry::get().active_backend()));
  });
  return out;
}
lamina_status host_add_weight(lamina_layer_builder builder, const char* name, const int64_t* shape,
                              int32_t ndim, const char* initializer_json, int32_t trainable,
                              lamina_error* error) {
  return sdk_guard(error, [&] {
    if (!builder) throw Error("add_weight() called outside build()");
    if (ndim < 0 || ndim > LAMINA_MAX_DIMS) throw Error("add_weight(): bad rank");
    builder->add(name ? name : "", Shape(shape, shape + ndim),
                 initializer_json ? initializer_json : "\"zeros\"", trainable != 0);
  });
}

}  // namespace

void host_log(int32_t level, const char* message) {
  static const bool verbose = std::getenv("LAMINA_VERBOSE") != nullptr;
  if (level >= 2 || verbose) std::cerr << "lamina: " << (message ? message : "") << "\n";
}

const lamina_host* host_table() {
  static const lamina_host table = [] {
    lamina_host h{};
    h.struct_size = sizeof(h);
    h.abi_major = LAMINA_ABI_MAJOR;
    h.abi_minor = LAMINA_ABI_MINOR;
    h.self = &Registry::get();
    h.register_backend = host_register_backend;
    h.register_layer = host_register_layer;
    h.register_optimizer = host_register_optimizer;
    h.tensor_retain = host_retain;
    h.tensor_release = host_release;
    h.tensor_shape = host_shape;
    h.op = host_op;
    h.assign = host_assign;
    h.full = host_full;
    h.add_weight = host_add_weight;
    h.log = host_log;
    h.register_communicator = host_register_communicator;
    h.register_op = host_register_op;
    h.tensor_from_host = host_tensor_from_host;
    return h;
  }();
  return &table;
}

}  // namespace lamina
