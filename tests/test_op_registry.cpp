// The op registry is the one source of truth: every op it declares is documented in docs/ops.md,
// wrapped by the SDK (gradient ops excepted: the core's gradient rules call them), exercised by the
// conformance table, and runnable on every backend here, by a kernel or by its fallback. A new op
// that misses any of these fails here.
#include "support.hpp"

#include "../core/src/backend_entry.hpp"
#include "../core/src/op_registry.hpp"
#include "../core/src/plugins.hpp"

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using namespace lamina;

namespace {

std::string source_file(const std::string& path) {
  std::ifstream in(std::string(LAMINA_SOURCE_DIR) + "/" + path);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The built-in ops (plugin ops, named "<plugin>.<op>", belong to their plugins).
std::vector<const OpDef*> builtin_ops() {
  std::vector<const OpDef*> out;
  for (const OpDef* op : all_ops())
    if (op->name.find('.') == std::string::npos) out.push_back(op);
  return out;
}

// The op names in the first column of docs/ops.md's tables: `name` tokens.
std::set<std::string> documented_ops() {
  std::set<std::string> names;
  std::istringstream lines(source_file("docs/ops.md"));
  std::string line;
  const std::regex token("`([a-z0-9_]+)`");
  while (std::getline(lines, line)) {
    if (line.rfind("| `", 0) != 0) continue;
    std::string first = line.substr(1, line.find('|', 1) - 1);
    for (std::sregex_iterator it(first.begin(), first.end(), token), end; it != end; ++it)
      names.insert((*it)[1].str());
  }
  return names;
}

}  // namespace

TEST_CASE("docs/ops.md documents exactly the registry's ops") {
  std::set<std::string> documented = documented_ops(), registered;
  for (const OpDef* op : builtin_ops()) {
    registered.insert(op->name);
    CHECK_MESSAGE(documented.count(op->name), "op '" << op->name << "' is missing from docs/ops.md's tables");
  }
  for (const std::string& name : documented)
    CHECK_MESSAGE(registered.count(name),
                  "docs/ops.md documents op '" << name << "', which the core does not have");
}

TEST_CASE("the SDK wraps every op but the gradient ops") {
  const std::string sdk = source_file("sdk/include/lamina/sdk/plugin.hpp");
  for (const OpDef* op : builtin_ops()) {
    if (!op->gradient_of.empty()) {
      CHECK_MESSAGE(find_op(op->gradient_of), "gradient op '" << op->name << "' names an unknown op");
      continue;
    }
    // in-place updates go through sdk::ops::update(name, ...), whose comment lists them
    bool wrapped = op->in_place_update ? std::regex_search(sdk, std::regex("\\b" + op->name + "\\b"))
                                       : sdk.find('"' + op->name + '"') != std::string::npos;
    CHECK_MESSAGE(wrapped, "op '" << op->name << "' has no wrapper in sdk/include/lamina/sdk/plugin.hpp");
  }
}

TEST_CASE("the conformance table has a case for every op with a kernel") {
  const std::string table = source_file("tests/test_conformance.cpp");
  for (const OpDef* op : builtin_ops())
    if (op->has_kernel)
      CHECK_MESSAGE(table.find('"' + op->name + '"') != std::string::npos,
                    "op '" << op->name << "' has no case in tests/test_conformance.cpp");
}

TEST_CASE("every backend here runs every op, by its kernel or by the op's fallback") {
  for (const std::string& name : available_backends()) {
    test::BackendScope scope(name);
    BackendEntry& backend = Registry::get().active_backend();
    for (const OpDef* op : builtin_ops())
      if (op->has_kernel)
        CHECK_MESSAGE((backend.supports(*op) || op->fallback), "backend '"
                                                                   << name << "' has no kernel for op '"
                                                                   << op->name << "' and the op no fallback");
  }
}

TEST_CASE("every built-in op declares its attributes, and docs/ops.md names each of them") {
  const std::string docs = source_file("docs/ops.md");
  for (const OpDef* op : builtin_ops()) {
    REQUIRE_MESSAGE(op->attributes.has_value(), "op '" << op->name << "' does not declare its attributes");
    for (const std::string& a : *op->attributes)
      CHECK_MESSAGE(docs.find('`' + a + '`') != std::string::npos,
                    "attribute '" << a << "' of op '" << op->name << "' is not in docs/ops.md");
  }
}
