// Plugin discovery, loading and lookup (plugins.hpp). The table plugins call back into is in
// host_table.cpp.
#include "plugins.hpp"

#include "child.hpp"
#include "config.hpp"
#include "host_table.hpp"
#include "op_registry.hpp"
#include "plugin_ops.hpp"
#include "tensor_impl.hpp"
#include "text.hpp"

#include <lamina/backend.hpp>
#include <lamina/sdk/json.hpp>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace lamina {

struct PluginRecord {
  std::string path;  // the shared library
  std::string name, kind, version, abi = "?";
  std::vector<std::string> provides;
  bool has_manifest = true;  // false: found as a bare library, its classes learnt by loading it
  enum class State { found, loaded, failed } state = State::found;
  bool usable = false;
  std::string reason;
  int score = 0;
  std::optional<int32_t> score_at_most;           // from the manifest: see PluginManifest
  std::vector<NeededLibrary> needs;               // from the manifest: see PluginManifest
  boost::dll::shared_library* library = nullptr;  // never unloaded
  lamina_plugin_shutdown_fn shutdown = nullptr;
};

struct Registry::Impl {
  std::recursive_mutex mutex;
  bool discovered = false;
  std::vector<std::string> api_paths;
  std::vector<std::string> searched;
  std::vector<std::unique_ptr<PluginRecord>> plugins;
  std::vector<std::unique_ptr<BackendEntry>> backends;
  std::vector<std::pair<lamina_communicator, const PluginRecord*>> communicators;
  std::map<std::string, std::unique_ptr<LayerPlugin>> layers;          // by lower-case class name
  std::map<std::string, std::unique_ptr<OptimizerPlugin>> optimizers;  // by lower-case class name
  std::vector<PluginRecord*> load_order;
  PluginRecord* loading = nullptr;
  std::map<std::string, std::string> plugin_paths_by_name;  // first plugin with each name

  void forget_registrations(const PluginRecord* r) {
    for (auto it = layers.begin(); it != layers.end();)
      it = it->second->plugin == r ? layers.erase(it) : std::next(it);
    for (auto it = optimizers.begin(); it != optimizers.end();)
      it = it->second->plugin == r ? optimizers.erase(it) : std::next(it);
    std::erase_if(backends, [&](const std::unique_ptr<BackendEntry>& b) { return b->plugin == r; });
    std::erase_if(communicators, [&](const auto& c) { return c.second == r; });
  }
  std::string requested_backend;  // from set_backend()
  // Read without the lock by every op (predict from several threads).
  std::atomic<BackendEntry*> active{nullptr};

  void discover();
  void load(PluginRecord& record);
  bool configure(PluginRecord& record, const std::string& name);
  void load_all(const char* kind);
  void load_backends_for_auto();
  std::vector<BackendEntry*> ranked_backends() const;
};

// ------------------------------------------------------------------------------------------------
// Discovery and loading

static std::vector<std::string> split_paths(const char* value) {
  std::vector<std::string> out;
  if (!value) return out;
  std::stringstream s(value);
  std::string item;
  while (std::getline(s, item, ':'))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<std::string> Registry::search_path() {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> paths = impl_->api_paths;
  for (auto& p : user_config().plugin_paths) paths.push_back(p);
  for (auto& p : split_paths(std::getenv("LAMINA_PLUGIN_PATH"))) paths.push_back(p);
  std::error_code ec;
  fs::path core = boost::dll::this_line_location(ec);
  // lexically_normal: an installed program loads liblamina as <prefix>/bin/../lib/liblamina.so.
  if (!ec) paths.push_back((core.parent_path() / "lamina" / "plugins").lexically_normal().string());
  fs::path exe = boost::dll::program_location(ec);
  if (!ec)
    paths.push_back(
        (exe.parent_path().parent_path() / "lib" / "lamina" / "plugins").lexically_normal().string());
#ifdef LAMINA_INSTALL_PLUGIN_DIR
  paths.push_back(LAMINA_INSTALL_PLUGIN_DIR);
#endif
  std::vector<std::string> unique;
  std::set<std::string> seen;
  for (auto& p : paths) {
    std::string key = fs::weakly_canonical(p, ec).string();
    if (ec) key = p;
    if (seen.insert(key).second) unique.push_back(p);
  }
  return unique;
}

// A manifest is a few hundred bytes; a larger .json in a plugin folder is not read.
constexpr uintmax_t kMaxManifestBytes = 1 << 20;

PluginManifest parse_plugin_manifest(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) throw Error("not valid JSON: " + ec.message());
  if (!v.is_object() || !v.as_object().contains("name") || !v.as_object().contains("kind") ||
      !v.as_object().contains("library"))
    throw Error("needs the keys name, kind and library");
  const auto& o = v.as_object();
  auto text_of = [&](const char* key) {
    const boost::json::value& x = o.at(key);
    if (!x.is_string() || x.as_string().empty())
      throw Error(std::string("'") + key + "' must be a non-empty string, not " +
                  boost::json::serialize(x).substr(0, 40));
    return std::string(x.as_string());
  };
  PluginManifest m;
  m.name = text_of("name");
  m.kind = text_of("kind");
  m.library = text_of("library");
  if (m.library.find('\0') != std::string::npos) throw Error("'library' contains a NUL character");
  if (o.contains("version")) m.version = text_of("version");
  if (auto* p = o.if_contains("provides"); p && !p->is_null()) {
    if (!p->is_array()) throw Error("'provides' must be a list of class names");
    for (const auto& x : p->as_array()) {
      if (!x.is_string())
        throw Error("'provides' lists " + boost::json::serialize(x).substr(0, 40) + ", not a class name");
      m.provides.emplace_back(x.as_string());
    }
  }
  if (auto* s = o.if_contains("score_at_most"); s && !s->is_null()) {
    if (!s->is_int64() || s->as_int64() < 0 || s->as_int64() > std::numeric_limits<int32_t>::max())
      throw Error("'score_at_most' must be a whole number from 0 to 2147483647, not " +
                  boost::json::serialize(*s).substr(0, 40));
    m.score_at_most = int32_t(s->as_int64());
  }
  if (auto* n = o.if_contains("needs"); n && !n->is_null()) {
    if (!n->is_object())
      throw Error(
          "'needs' must map shared-library names to what they are, as in "
          "{\"libcuda.so.1\": \"the NVIDIA driver\"}");
    for (const auto& item : n->as_object()) {
      const std::string library(item.key());
      if (library.empty() || library.find('\0') != std::string::npos)
        throw Error("'needs' names a shared library \"" + library.substr(0, 40) + "\" that cannot be one");
      if (!item.value().is_string())
        throw Error("'needs' maps \"" + library.substr(0, 40) + "\" to " +
                    boost::json::serialize(item.value()).substr(0, 40) + ", not a text saying what it is");
      m.needs.push_back({library, std::string(item.value().as_string())});
    }
  }
  return m;
}

static std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Registry::Impl::discover() {
  if (discovered) return;
  discovered = true;
  searched = Registry::get().search_path();
  for (const std::string& folder : searched) {
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(folder, ec)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    std::set<std::string> described;  // libraries that have a manifest
    for (const fs::path& f : files) {
      if (f.extension() != ".json") continue;
      auto rec = std::make_unique<PluginRecord>();
      try {
        std::error_code size_ec;
        if (fs::file_size(f, size_ec) > kMaxManifestBytes)
          throw Error("larger than " + std::to_string(kMaxManifestBytes) +
                      " bytes; a manifest is a few lines");
        PluginManifest m = parse_plugin_manifest(read_file(f));
        rec->name = m.name;
        rec->kind = m.kind;
        rec->version = m.version;
        rec->path = (f.parent_path() / m.library).string();
        rec->provides = m.provides;
        rec->score_at_most = m.score_at_most;
        rec->needs = m.needs;
      } catch (const std::exception& e) {
        rec->name = f.stem().string();
        rec->path = f.string();
        rec->state = PluginRecord::State::failed;
        std::string what = e.what();
        if (auto at = what.find(" [boost"); at != std::string::npos) what.resize(at);
        rec->reason = "unreadable manifest " + f.string() + " (" + what + ")";
        plugins.push_back(std::move(rec));
        continue;
      }
      described.insert(fs::path(rec->path).filename().string());
      if (!fs::exists(rec->path)) {
        rec->state = PluginRecord::State::failed;
        rec->reason = "manifest names " + rec->path + ", which does not exist";
      }
      if (auto [it, fresh] = plugin_paths_by_name.emplace(rec->name, rec->path); !fresh) {
        rec->state = PluginRecord::State::failed;
        rec->reason = "duplicate: a plugin named '" + rec->name +
                      "' was found earlier on the search path, at " + it->second + "; this one is ignored";
      }
      plugins.push_back(std::move(rec));
    }
    for (const fs::path& f : files) {
      if (f.extension() != ".so" || described.count(f.filename().string())) continue;
      auto rec = std::make_unique<PluginRecord>();
      rec->name = f.stem().string();
      rec->path = f.string();
      rec->kind = "?";
      rec->has_manifest = false;
      plugins.push_back(std::move(rec));
    }
  }
}

// Hands the plugin its settings from the user configuration (ABI 1.1). False, with the reason
// recorded, when the configuration is broken or the plugin refuses its settings.
bool Registry::Impl::configure(PluginRecord& r, const std::string& name) {
  boost::json::object settings;
  try {
    settings = plugin_settings(user_config(), name);
  } catch (const std::exception& e) {
    r.reason = e.what();
    return false;
  }
  const std::string where = "'backends." + name + "' in " + user_config().source;
  if (!r.library->has("lamina_plugin_configure")) {
    for (const auto& item : user_config().backends)
      if (lower(std::string(item.key())) == lower(name))
        host_log(2, (where + ": the " + name + " plugin takes no settings; they are ignored").c_str());
    return true;
  }
  const std::string text = sdk::json_text(settings);
  ErrorSlot error;
  lamina_status status = r.library->get<lamina_status(const char*, lamina_error*)>("lamina_plugin_configure")(
      text.c_str(), &error);
  if (status != LAMINA_OK) {
    r.reason = "refused its settings " + text + (user_config().source.empty() ? "" : " (" + where + ")") +
               ": " + (error.message[0] ? error.message : "no reason given");
    return false;
  }
  return true;
}

// ------------------------------------------------------------------------------------------------
// The init probe: a plugin from outside lamina's own folders is first loaded and initialised in a
// child process, so one that crashes (or kills the process, or hangs) while loading is reported and
// skipped instead of taking the process down. docs/reliability.md explains the choice.

namespace {

// What the child hands the plugin: registration is accepted and forgotten, the rest fails politely.
// Nothing here touches the registry, whose lock the forking thread may hold.
const lamina_host* probe_host_table() {
  static const lamina_host table = [] {
    lamina_host h = *host_table();
    h.self = nullptr;
    h.register_backend = [](void*, const lamina_backend*, lamina_error*) { return LAMINA_OK; };
    h.register_layer = [](void*, const lamina_layer_class*, lamina_error*) { return LAMINA_OK; };
    h.register_optimizer = [](void*, const lamina_optimizer_class*, lamina_error*) { return LAMINA_OK; };
    h.tensor_retain = [](lamina_tensor) {};
    h.tensor_release = [](lamina_tensor) {};
    h.tensor_shape = [](lamina_tensor, int64_t*) { return int32_t(0); };
    h.op = [](const char*, const lamina_tensor*, int32_t, const lamina_attrs*, lamina_tensor*, int32_t,
              lamina_error* e) {
      if (e) std::snprintf(e->message, sizeof e->message, "no ops while the plugin is probed");
      return LAMINA_ERROR;
    };
    h.assign = [](lamina_tensor, lamina_tensor, lamina_error* e) {
      if (e) std::snprintf(e->message, sizeof e->message, "no tensors while the plugin is probed");
      return LAMINA_ERROR;
    };
    h.full = [](const int64_t*, int32_t, float, lamina_error* e) -> lamina_tensor {
      if (e) std::snprintf(e->message, sizeof e->message, "no tensors while the plugin is probed");
      return nullptr;
    };
    h.add_weight = [](lamina_layer_builder, const char*, const int64_t*, int32_t, const char*, int32_t,
                      lamina_error* e) {
      if (e) std::snprintf(e->message, sizeof e->message, "no weights while the plugin is probed");
      return LAMINA_ERROR;
    };
    h.log = [](int32_t, const char*) {};
    h.register_op = [](void*, const lamina_op_class*, lamina_error*) { return LAMINA_OK; };
    h.register_communicator = [](void*, const lamina_communicator*, lamina_error*) { return LAMINA_OK; };
    h.tensor_from_host = [](const int64_t*, int32_t, const float*, lamina_error* e) -> lamina_tensor {
      if (e) std::snprintf(e->message, sizeof e->message, "no tensors while the plugin is probed");
      return nullptr;
    };
    return h;
  }();
  return &table;
}

// LAMINA_PLUGIN_PROBE: "all" probes every plugin, "none" none; by default, those outside lamina's
// own plugin folders (beside liblamina.so and the install prefix), i.e. third-party plugins.
bool should_probe(const std::string& library) {
  const char* setting = std::getenv("LAMINA_PLUGIN_PROBE");
  std::string s = setting ? lower(setting) : "";
  if (s == "all" || s == "1") return true;
  if (s == "none" || s == "0") return false;
  std::error_code ec;
  fs::path folder = fs::weakly_canonical(fs::path(library).parent_path(), ec);
  std::vector<fs::path> own;
  fs::path core = boost::dll::this_line_location(ec);
  if (!ec) own.push_back(fs::weakly_canonical(core.parent_path() / "lamina" / "plugins", ec));
#ifdef LAMINA_INSTALL_PLUGIN_DIR
  own.push_back(fs::weakly_canonical(LAMINA_INSTALL_PLUGIN_DIR, ec));
#endif
  return std::find(own.begin(), own.end(), folder) == own.end();
}

// Loads, queries, scores and initialises `library` in a child process. Returns why the plugin must
// be skipped ("" when the child came through, whatever the plugin answered).
std::string probe_plugin(const std::string& library) {
  double limit = 60;
  if (const char* t = std::getenv("LAMINA_PLUGIN_PROBE_TIMEOUT"))
    if (double v = std::atof(t); v > 0) limit = v;
  ChildOutcome outcome = run_in_child(
      [&] {
        void* h = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h) return;  // the loader in the process reports why
        auto query = reinterpret_cast<lamina_plugin_query_fn>(::dlsym(h, "lamina_plugin_query"));
        auto score = reinterpret_cast<lamina_plugin_score_fn>(::dlsym(h, "lamina_plugin_score"));
        auto init = reinterpret_cast<lamina_plugin_init_fn>(::dlsym(h, "lamina_plugin_init"));
        const lamina_plugin_info* info = query ? query() : nullptr;
        if (!info || info->abi_major != LAMINA_ABI_MAJOR || info->abi_minor > LAMINA_ABI_MINOR) return;
        ErrorSlot error;
        if ((!score || score(&error) > 0) && init) init(probe_host_table(), LAMINA_ABI_MINOR, &error);
      },
      limit);
  const std::string seen = "seen in a separate process that tries plugins first";
  switch (outcome.verdict) {
    case ChildOutcome::signalled:
      return "crashed while loading or initialising (" + outcome.description + "; " + seen + "); skipped";
    case ChildOutcome::exited:
      return "ended the process with " + outcome.description + " while loading or initialising (" + seen +
             "); skipped";
    case ChildOutcome::timed_out:
      return "did not finish loading and initialising within " + std::to_string(int(limit)) + " s (" + seen +
             "; LAMINA_PLUGIN_PROBE_TIMEOUT=SECONDS allows more); skipped";
    default:
      return "";
  }
}

}  // namespace

void Registry::Impl::load(PluginRecord& r) {
  if (r.state != PluginRecord::State::found) return;
  r.state = PluginRecord::State::failed;  // until proven otherwise
  for (const NeededLibrary& need : r.needs) {
    // Left open when found: the plugin loads it next anyway, and a driver's library may not
    // survive being unloaded.
    if (!::dlopen(need.library.c_str(), RTLD_LAZY | RTLD_LOCAL)) {
      const char* why = ::dlerror();
      const std::string named =
          need.what.empty() ? "the shared library " + need.library : need.what + " (" + need.library + ")";
      r.reason = "needs " + named + ", which cannot be loaded on this machine (" + (why ? why : "not found") +
                 "); the plugin was not loaded";
      return;
    }
  }
  if (should_probe(r.path)) {
    std::string why = probe_plugin(r.path);
    if (!why.empty()) {
      r.reason = why;
      return;
    }
  }
  try {
    r.library = new boost::dll::shared_library(
        fs::path(r.path), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    // Boost wraps dlerror's text: keep just that, it names the missing dependency.
    std::string what = e.what();
    const std::string marker = "dlerror system message: ";
    if (auto at = what.find(marker); at != std::string::npos) {
      what = what.substr(at + marker.size());
      if (auto end = what.rfind("):"); end != std::string::npos) what.resize(end);
    }
    r.reason = "cannot load the library: " + what;
    return;
  }
  if (!r.library->has("lamina_plugin_query") || !r.library->has("lamina_plugin_init")) {
    r.reason = "not a lamina plugin: the library has no lamina_plugin_query/lamina_plugin_init entry point";
    return;
  }
  const lamina_plugin_info* info = nullptr;
  try {
    info = r.library->get<const lamina_plugin_info*()>("lamina_plugin_query")();
  } catch (const std::exception& e) {
    r.reason = std::string("lamina_plugin_query failed: ") + e.what();
    return;
  }
  if (!info) {
    r.reason = "lamina_plugin_query returned nothing";
    return;
  }
  r.abi = std::to_string(info->abi_major) + "." + std::to_string(info->abi_minor);
  if (info->name && r.kind == "?") r.name = info->name;
  if (info->version) r.version = info->version;
  if (info->abi_major != LAMINA_ABI_MAJOR) {
    r.reason = "built for plugin ABI " + r.abi + ", but this lamina speaks ABI " +
               std::to_string(LAMINA_ABI_MAJOR) + "." + std::to_string(LAMINA_ABI_MINOR) +
               "; rebuild the plugin against this lamina's SDK";
    return;
  }
  if (info->abi_minor > LAMINA_ABI_MINOR) {
    r.reason = "needs plugin ABI " + r.abi + ", newer than this lamina's " +
               std::to_string(LAMINA_ABI_MAJOR) + "." + std::to_string(LAMINA_ABI_MINOR) + "; upgrade lamina";
    return;
  }
  if (r.kind == "?") {
    std::vector<std::string> kinds;
    if (info->kinds & LAMINA_KIND_BACKEND) kinds.push_back("backend");
    if (info->kinds & LAMINA_KIND_LAYER) kinds.push_back("layer");
    if (info->kinds & LAMINA_KIND_OPTIMIZER) kinds.push_back("optimizer");
    if (info->kinds & LAMINA_KIND_COMMUNICATOR) kinds.push_back("communicator");
    r.kind.clear();
    for (auto& k : kinds) r.kind += (r.kind.empty() ? "" : "+") + k;
  }
  if (!configure(r, info->name ? info->name : r.name)) return;
  r.score = 1;
  if (r.library->has("lamina_plugin_score")) {
    ErrorSlot why;
    try {
      r.score = r.library->get<int32_t(lamina_error*)>("lamina_plugin_score")(&why);
    } catch (...) {
      r.score = 0;
      std::snprintf(why.message, sizeof why.message, "lamina_plugin_score threw an exception");
    }
    if (r.score <= 0) {
      r.reason = why.message[0] ? why.message : "the plugin reports it cannot run on this machine";
      return;
    }
    if (r.score_at_most && r.score > *r.score_at_most)
      host_log(2, (r.path + ": scores " + std::to_string(r.score) + ", above the score_at_most of " +
                   std::to_string(*r.score_at_most) + " in its manifest; backend \"auto\" may pass it over")
                      .c_str());
  }
  ErrorSlot error;
  PluginRecord* previous = loading;
  loading = &r;
  lamina_status status = LAMINA_ERROR;
  try {
    status = r.library->get<lamina_status(const lamina_host*, uint32_t, lamina_error*)>("lamina_plugin_init")(
        host_table(), LAMINA_ABI_MINOR, &error);
  } catch (const std::exception& e) {
    // A plugin written against the bare C ABI that lets an exception out.
    std::snprintf(error.message, sizeof error.message, "lamina_plugin_init threw: %s", e.what());
  } catch (...) {
    std::snprintf(error.message, sizeof error.message, "lamina_plugin_init threw an exception");
  }
  loading = previous;
  if (status != LAMINA_OK) {
    forget_registrations(&r);  // a failed plugin leaves nothing behind
    r.reason =
        std::string("initialisation failed: ") + (error.message[0] ? error.message : "no reason given");
    return;
  }
  if (r.library->has("lamina_plugin_shutdown")) r.shutdown = r.library->get<void()>("lamina_plugin_shutdown");
  r.state = PluginRecord::State::loaded;
  r.usable = true;
  load_order.push_back(&r);
  // The manifest is a promise: everything it lists must now be registered.
  for (const std::string& p : r.provides) {
    std::string key = lower(p);
    bool found = layers.count(key) || optimizers.count(key);
    for (auto& b : backends) found |= lower(b->name) == key;
    for (auto& c : communicators) found |= lower(c.first.name) == key;
    if (!found) {
      r.reason = "the manifest lists '" + p + "' but the plugin did not register it";
      host_log(2, (r.path + ": " + r.reason).c_str());
    }
  }
}

void Registry::Impl::load_all(const char* kind) {
  discover();
  for (auto& r : plugins)
    if (!kind || r->kind == kind || r->kind == "?" || r->kind.find(kind) != std::string::npos) load(*r);
}

// For `auto`: loads the backends best-first by the score their manifests say they can reach, and
// stops once a loaded backend outscores every backend left. A machine without a GPU then never maps
// the GPU backend's runtime, and choosing onednn does not load the OpenCL backend and its compiler
// (together ~290 MB of resident memory and 0.3 s at start, docs/plugins.md). A backend whose
// manifest does not bound its score (or a library without a manifest) could outscore anything, so it
// is loaded.
void Registry::Impl::load_backends_for_auto() {
  discover();
  auto ceiling = [](const PluginRecord* r) {
    return r->score_at_most.value_or(std::numeric_limits<int32_t>::max());
  };
  std::vector<PluginRecord*> candidates;
  for (auto& r : plugins)
    if (r->kind == "?" || r->kind.find("backend") != std::string::npos) candidates.push_back(r.get());
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](const PluginRecord* a, const PluginRecord* b) { return ceiling(a) > ceiling(b); });
  for (PluginRecord* r : candidates) {
    int32_t best = 0;
    for (auto& b : backends)
      if (b->plugin && b->plugin->usable) best = std::max(best, b->plugin->score);
    if (best > ceiling(r)) break;
    load(*r);
  }
}

// The usable backends among those loaded, best first (the first loaded first among equals).
std::vector<BackendEntry*> Registry::Impl::ranked_backends() const {
  std::vector<BackendEntry*> out;
  for (auto& b : backends)
    if (!b->plugin || b->plugin->usable) out.push_back(b.get());
  std::stable_sort(out.begin(), out.end(), [](BackendEntry* a, BackendEntry* b) {
    return (a->plugin ? a->plugin->score : 0) > (b->plugin ? b->plugin->score : 0);
  });
  return out;
}

static std::string folders(const std::vector<std::string>& searched);

// ------------------------------------------------------------------------------------------------
// Registration

void Registry::register_backend(const lamina_backend& t) {
  std::lock_guard lock(impl_->mutex);
  if (t.struct_size < offsetof(lamina_backend, kernels) + sizeof(t.kernels) || !t.name || !t.alloc ||
      !t.release || !t.copy_in || !t.copy_out)
    throw Error("backend table is incomplete (needs name, alloc, release, copy_in, copy_out)");
  for (auto& b : impl_->backends)
    if (lower(b->name) == lower(t.name))
      throw Error(std::string("a backend named '") + t.name + "' is already registered by " +
                  (b->plugin ? b->plugin->path : "another plugin"));
  auto entry = std::make_unique<BackendEntry>();
  // A table from an older minor ABI is shorter: the members it lacks stay null.
  std::memcpy(&entry->table, &t, std::min<size_t>(t.struct_size, sizeof(entry->table)));
  entry->table.struct_size = uint32_t(sizeof(entry->table));
  const lamina_backend& e = entry->table;
  const int graph_functions = (e.capture_begin != nullptr) + (e.capture_end != nullptr) +
                              (e.launch_graph != nullptr) + (e.release_graph != nullptr);
  if (graph_functions != 0 && graph_functions != 4)
    throw Error(std::string("backend '") + t.name +
                "' sets some of capture_begin, capture_end, launch_graph and release_graph; a backend "
                "that records graphs sets all four");
  entry->name = t.name;
  entry->plugin = impl_->loading;
  entry->kernels.assign(all_ops().size(), nullptr);
  for (int32_t i = 0; i < t.kernel_count; ++i) {
    const lamina_kernel& k = t.kernels[i];
    const OpDef* op = k.op ? find_op(k.op) : nullptr;
    if (!op || !op->has_kernel)
      throw Error(std::string("backend '") + t.name + "' has a kernel for " +
                  (op ? "op '" + op->name + "', which the core runs itself"
                      : "unknown op '" + std::string(k.op ? k.op : "") + "'") +
                  " (kernel " + std::to_string(i) + " of its table; docs/ops.md lists the op set)");
    if (!k.run)
      throw Error(std::string("backend '") + t.name + "' lists op '" + op->name +
                  "' without a kernel function");
    if (entry->kernels[size_t(op->id)])
      throw Error(std::string("backend '") + t.name + "' lists two kernels for op '" + op->name + "'");
    entry->kernels[size_t(op->id)] = k.run;
  }
  for (const OpDef* op : all_ops())  // plugin ops' kernels for a backend of this name
    for (const auto& [backend, run] : op->plugin_kernels)
      if (lower(backend) == lower(t.name)) entry->kernels[size_t(op->id)] = run;
  impl_->backends.push_back(std::move(entry));
}

void Registry::register_communicator(const lamina_communicator& c) {
  std::lock_guard lock(impl_->mutex);
  if (c.struct_size < offsetof(lamina_communicator, broadcast) + sizeof(c.broadcast) || !c.name ||
      !c.allreduce_sum || !c.broadcast)
    throw Error("communicator table is incomplete (needs name, allreduce_sum, broadcast)");
  if (c.size < 1 || c.rank < 0 || c.rank >= c.size)
    throw Error(std::string("communicator '") + c.name + "' reports rank " + std::to_string(c.rank) + " of " +
                std::to_string(c.size));
  impl_->communicators.emplace_back(c, impl_->loading);
}

const lamina_communicator* Registry::communicator(const std::string& name, std::string& why) {
  std::lock_guard lock(impl_->mutex);
  impl_->load_all("communicator");
  for (auto& [c, plugin] : impl_->communicators)
    if (lower(c.name) == lower(name)) return &c;
  why = "no usable communicator named '" + name + "'";
  for (auto& r : impl_->plugins)
    if (lower(r->name) == lower(name) && !r->reason.empty()) why += ": " + r->path + ": " + r->reason;
  if (why.find(": ") == std::string::npos) why += ". Plugin folders searched: " + folders(impl_->searched);
  return nullptr;
}

void Registry::register_layer(const lamina_layer_class& c) {
  std::lock_guard lock(impl_->mutex);
  // A table from a plugin built against an older minor ABI is shorter: accept any that holds the
  // members ABI 1.0 had (later members must be checked against struct_size before use).
  if (c.struct_size < offsetof(lamina_layer_class, call) + sizeof(c.call) || !c.class_name || !c.create ||
      !c.destroy || !c.build || !c.call || !c.get_config)
    throw Error("layer class table is incomplete");
  std::string key = lower(c.class_name);
  if (auto it = impl_->layers.find(key); it != impl_->layers.end()) {
    // The first plugin on the search path wins; the rest of this plugin still loads.
    std::string note = std::string("layer class '") + c.class_name + "' ignored: already provided by " +
                       (it->second->plugin ? it->second->plugin->path : "another plugin");
    if (impl_->loading) impl_->loading->reason += (impl_->loading->reason.empty() ? "" : "; ") + note;
    host_log(2, note.c_str());
    return;
  }
  auto p = std::make_unique<LayerPlugin>();
  std::memcpy(&p->table, &c, std::min<size_t>(c.struct_size, sizeof(p->table)));  // newer members stay null
  p->plugin = impl_->loading;
  impl_->layers[key] = std::move(p);
}

void Registry::register_optimizer(const lamina_optimizer_class& c) {
  std::lock_guard lock(impl_->mutex);
  if (c.struct_size < offsetof(lamina_optimizer_class, set_learning_rate) + sizeof(c.set_learning_rate) ||
      !c.class_name || !c.create || !c.destroy || !c.apply || !c.slot_count || !c.slot_name || !c.get_config)
    throw Error("optimizer class table is incomplete");
  std::string key = lower(c.class_name);
  if (auto it = impl_->optimizers.find(key); it != impl_->optimizers.end()) {
    std::string note = std::string("optimizer class '") + c.class_name + "' ignored: already provided by " +
                       (it->second->plugin ? it->second->plugin->path : "another plugin");
    if (impl_->loading) impl_->loading->reason += (impl_->loading->reason.empty() ? "" : "; ") + note;
    host_log(2, note.c_str());
    return;
  }
  auto p = std::make_unique<OptimizerPlugin>();
  std::memcpy(&p->table, &c, std::min<size_t>(c.struct_size, sizeof(p->table)));
  p->plugin = impl_->loading;
  impl_->optimizers[key] = std::move(p);
}

void Registry::register_op(const lamina_op_class& c) {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->loading) throw Error("register_op may only be called during lamina_plugin_init");
  const OpDef& op = define_plugin_op(c);
  for (auto& b : impl_->backends) {
    b->kernels.resize(all_ops().size(), nullptr);
    for (const auto& [backend, run] : op.plugin_kernels)
      if (lower(backend) == lower(b->name)) b->kernels[size_t(op.id)] = run;
  }
}

// ------------------------------------------------------------------------------------------------
// Lookup

Registry::Registry() : impl_(std::make_unique<Impl>()) {}
Registry::~Registry() = default;

Registry& Registry::get() {
  // Never destroyed: plugins stay loaded for the life of the process, and tensors freed during
  // static destruction may still need their backend.
  static Registry* registry = [] {
    auto* r = new Registry;
    std::atexit([] {
      release_cached_buffers();  // kept buffers go back while their backends still run
      auto& order = Registry::get().impl_->load_order;
      for (auto it = order.rbegin(); it != order.rend(); ++it)
        if ((*it)->shutdown) (*it)->shutdown();
    });
    return r;
  }();
  return *registry;
}

void Registry::add_path(const std::string& folder) {
  std::lock_guard lock(impl_->mutex);
  impl_->api_paths.push_back(folder);
  if (impl_->discovered) {  // pick up plugins in the new folder too
    impl_->discovered = false;
    std::set<std::string> known;
    for (auto& r : impl_->plugins) known.insert(r->path);
    auto old = std::move(impl_->plugins);
    impl_->plugins.clear();
    impl_->discover();
    // keep the records (and their state) of plugins seen before
    for (auto& r : impl_->plugins)
      for (auto& o : old)
        if (o && o->path == r->path) r = std::move(o);
  }
}

template <class Map>
static std::string known_names(const Map& map, const std::vector<std::unique_ptr<PluginRecord>>& plugins,
                               const char* kind) {
  std::set<std::string> names;
  for (auto& [k, v] : map) names.insert(v->table.class_name);
  for (auto& r : plugins)
    if (r->kind == kind && r->state == PluginRecord::State::found)
      for (auto& p : r->provides) names.insert(p);
  std::string s;
  for (auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? "none" : s;
}

static std::string folders(const std::vector<std::string>& searched) {
  std::string s;
  for (auto& f : searched) s += (s.empty() ? "" : ", ") + f;
  return s.empty() ? "(no folders)" : s;
}

template <class Entry>
static const Entry* resolve(Registry::Impl& impl, std::map<std::string, std::unique_ptr<Entry>>& map,
                            const std::string& class_name, const char* kind) {
  std::string key = lower(class_name);
  if (auto it = map.find(key); it != map.end()) return it->second.get();
  impl.discover();
  // What the user reads first: the class is unknown, or a plugin has it but cannot give it.
  std::string lead = std::string("unknown ") + kind + " class '" + class_name + "'";
  for (auto& r : impl.plugins) {
    bool provides = false;
    for (auto& p : r->provides) provides |= lower(p) == key;
    if (!provides && r->kind != "?") continue;
    impl.load(*r);
    if (auto it = map.find(key); it != map.end()) return it->second.get();
    if (provides && !r->reason.empty())
      lead = std::string(kind) + " class '" + class_name + "' " +
             (r->usable ? "is not available from the plugin " + r->path + ": "
                        : "is provided by the plugin " + r->path + ", which cannot be used: ") +
             r->reason;
  }
  throw Error(lead + ". Known " + kind + " classes: " + known_names(map, impl.plugins, kind) +
              ". Plugin folders searched: " + folders(impl.searched) +
              " (add one with LAMINA_PLUGIN_PATH or plugin_paths in the configuration)");
}

const LayerPlugin& Registry::layer(const std::string& class_name) {
  std::lock_guard lock(impl_->mutex);
  return *resolve(*impl_, impl_->layers, class_name, "layer");
}

const OptimizerPlugin& Registry::optimizer(const std::string& class_name) {
  std::lock_guard lock(impl_->mutex);
  return *resolve(*impl_, impl_->optimizers, class_name, "optimizer");
}

std::vector<BackendEntry*> Registry::usable_backends() {
  std::lock_guard lock(impl_->mutex);
  impl_->load_all("backend");
  return impl_->ranked_backends();
}

void Registry::set_backend(const std::string& name) {
  std::lock_guard lock(impl_->mutex);
  std::string key = lower(name);
  if (key != "auto" && !key.empty()) {
    // A backend named explicitly: load just the plugin whose manifest bears that name, so that
    // choosing the CPU backend does not load, and map the runtimes of, every other backend found
    // (a GPU backend's libraries alone add ~200 MB of resident memory and a fraction of a second).
    impl_->discover();
    for (auto& r : impl_->plugins)
      if (r->kind == "backend" && lower(r->name) == key) {
        impl_->load(*r);
        break;
      }
    for (auto& b : impl_->backends)
      if (lower(b->name) == key && (!b->plugin || b->plugin->usable)) {
        impl_->active = b.get();
        impl_->requested_backend = name;
        return;
      }
  }
  if (key == "auto" || key.empty()) {
    impl_->load_backends_for_auto();
    std::vector<BackendEntry*> ranked = impl_->ranked_backends();
    if (ranked.empty())
      throw Error("no usable backend found. Plugin folders searched: " + folders(impl_->searched) +
                  " — run `lamina plugins` to see why");
    impl_->active = ranked.front();
    impl_->requested_backend = name;
    return;
  }
  std::vector<BackendEntry*> usable = usable_backends();
  for (BackendEntry* b : usable)
    if (lower(b->name) == key) {
      impl_->active = b;
      impl_->requested_backend = name;
      return;
    }
  std::string available;
  for (BackendEntry* b : usable) available += (available.empty() ? "" : ", ") + b->name;
  std::string unusable;
  for (auto& r : impl_->plugins)
    if (!r->usable && (r->kind == "backend" || r->kind == "?"))
      unusable += "; '" + r->name + "' cannot be used: " + r->reason;
  throw Error("unknown backend '" + name +
              "'. Available backends: " + (available.empty() ? "none" : available) + unusable);
}

BackendEntry& Registry::active_backend() {
  if (impl_->active) return *impl_->active;
  std::lock_guard lock(impl_->mutex);
  if (!impl_->active) {
    const char* env = std::getenv("LAMINA_BACKEND");
    if (env && *env)
      set_backend(env);
    else
      set_backend(user_config().backend.empty() ? "auto" : user_config().backend);
  }
  return *impl_->active;
}

std::string Registry::active_backend_name() {
  return active_backend().name;
}

std::vector<PluginInfo> Registry::list() {
  std::lock_guard lock(impl_->mutex);
  impl_->load_all(nullptr);
  std::vector<PluginInfo> out;
  for (auto& r : impl_->plugins) {
    PluginInfo p;
    p.name = r->name;
    p.kind = r->kind;
    p.version = r->version;
    p.path = r->path;
    p.abi = r->abi;
    p.provides = r->provides;
    if (!r->has_manifest && r->usable) {  // what the plugin registered, in name order
      for (auto& [key, layer] : impl_->layers)
        if (layer->plugin == r.get()) p.provides.push_back(layer->table.class_name);
      for (auto& [key, optimizer] : impl_->optimizers)
        if (optimizer->plugin == r.get()) p.provides.push_back(optimizer->table.class_name);
      for (auto& b : impl_->backends)
        if (b->plugin == r.get()) p.provides.push_back(b->name);
    }
    p.usable = r->usable;
    p.score = r->score;
    p.reason = r->reason;
    if (r->usable) {
      for (auto& b : impl_->backends)
        if (b->plugin == r.get() && b->table.device) p.reason = b->table.device;
      for (auto& [c, plugin] : impl_->communicators)
        if (plugin == r.get() && c.description) p.reason = c.description;
    }
    out.push_back(p);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Public API (backend.hpp)

void set_backend(const std::string& name) {
  Registry::get().set_backend(name);
}
std::string backend() {
  return Registry::get().active_backend_name();
}
std::vector<std::string> available_backends() {
  std::vector<std::string> out;
  for (BackendEntry* b : Registry::get().usable_backends()) out.push_back(b->name);
  return out;
}
void add_plugin_path(const std::string& folder) {
  Registry::get().add_path(folder);
}
std::vector<PluginInfo> list_plugins() {
  return Registry::get().list();
}
std::vector<std::string> plugin_search_path() {
  return Registry::get().search_path();
}

}  // namespace lamina
