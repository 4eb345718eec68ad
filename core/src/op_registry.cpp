// The op table (op_registry.hpp): the built-in families in a fixed order, so that op ids are the
// same in every process, then plugin ops as plugins register them.
#include "op_registry.hpp"

#include "ops/op_set.hpp"

#include <lamina/error.hpp>

#include <unordered_map>

namespace lamina {

namespace {

// Looks ops up by name without building a std::string for the key.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct OpTable {
  std::vector<std::unique_ptr<OpDef>> defs;
  std::vector<const OpDef*> list;
  std::unordered_map<std::string, const OpDef*, NameHash, std::equal_to<>> by_name;
  OpTable() {
    // The families in this order give every op the id it has always had; a new family goes last.
    OpSet set(defs);
    define_elementwise_ops(set);
    define_reduce_ops(set);
    define_loss_ops(set);
    define_matmul_ops(set);
    define_conv_ops(set);
    define_pool_ops(set);
    define_random_ops(set);
    define_shape_ops(set);
    define_update_ops(set);
    define_layout_ops(set);
    define_gather_ops(set);
    define_normalization_ops(set);
    for (auto& d : defs) {
      list.push_back(d.get());
      by_name[d->name] = d.get();
    }
  }
};
OpTable& op_table() {
  static OpTable table;
  return table;
}

}  // namespace

const OpDef& need_op(std::string_view name) {
  auto& t = op_table();
  auto it = t.by_name.find(name);
  if (it == t.by_name.end())
    throw Error("unknown op '" + std::string(name) + "' (see docs/ops.md for the op set)");
  return *it->second;
}

const OpDef* find_op(const std::string& name) {
  auto& t = op_table();
  auto it = t.by_name.find(std::string_view(name));
  return it == t.by_name.end() ? nullptr : it->second;
}

const std::vector<const OpDef*>& all_ops() {
  return op_table().list;
}

std::string op_context(const std::string& op, const std::vector<Shape>& in) {
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) about "text" + std::string here.
  std::string s = "op '";
  s += op;
  s += "' with input shapes";
  for (auto& sh : in) {
    s += ' ';
    s += shape_to_string(sh);
  }
  return s;
}
std::string op_context(const std::string& op, const ShapeList& in) {
  return op_context(op, in.to_vector());
}

const OpDef& add_op(std::unique_ptr<OpDef> def) {
  OpTable& t = op_table();
  if (t.by_name.count(def->name))
    throw Error("an op named '" + def->name + "' already exists; name plugin ops '<plugin>.<op>'");
  def->id = int(t.defs.size());
  const OpDef& added = *def;
  t.defs.push_back(std::move(def));
  t.list.push_back(&added);
  t.by_name[added.name] = &added;
  return added;
}

}  // namespace lamina
