// The onednn backend: lamina's default CPU backend, built on oneDNN primitives (convolution,
// matmul, pooling, eltwise, binary, softmax, reduction) with OpenMP loops for the ops oneDNN has
// no exact primitive for. Entry points, the backend table and its registration live here.
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include <lamina/sdk/config.hpp>

#include "kernels.hpp"

namespace lamina::onednn {
namespace {

std::unique_ptr<Backend> g_backend;

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic:
      return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "generic";
  }
}

}  // namespace

VectorIsa vector_isa() {
  static const VectorIsa isa = [] {
    const auto allows = [](dnnl::cpu_isa isa) {  // oneDNN's ISA values are nested bit sets
      return (unsigned(dnnl::get_effective_cpu_isa()) & unsigned(isa)) == unsigned(isa);
    };
    if (!__builtin_cpu_supports("fma")) return VectorIsa::baseline;
    if (allows(dnnl::cpu_isa::avx512_core) && __builtin_cpu_supports("avx512f")) return VectorIsa::avx512;
    if (allows(dnnl::cpu_isa::avx2) && __builtin_cpu_supports("avx2")) return VectorIsa::avx2;
    return VectorIsa::baseline;
  }();
  return isa;
}

namespace {

std::string describe_device() {
  const dnnl::version_t* v = dnnl::version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + " CPU, " + isa_name(dnnl::get_effective_cpu_isa()) + ", " +
         std::to_string(omp_get_max_threads()) +
         (omp_get_max_threads() == 1 ? " OpenMP thread" : " OpenMP threads") +
         (g_backend && g_backend->team.enabled() ? ", fewer while other processes hold cores" : "");
}

// The team size for every kernel and primitive: LAMINA_NUM_THREADS, else the configuration's
// "threads", else OpenMP's default (OMP_NUM_THREADS, else one per core). 0: not set.
int configured_threads = 0;

// The thread count LAMINA_NUM_THREADS asks for: 0 when unset, -1 when it is not a count.
int env_threads() {
  const char* text = std::getenv("LAMINA_NUM_THREADS");
  if (!text || !*text) return 0;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  return *end == '\0' && value >= 1 && value <= 1024 ? int(value) : -1;
}

// Usable wherever oneDNN can create a CPU engine; preferred over the reference backend.
int32_t score(std::string& why) {
  if (env_threads() < 0) {
    why = std::string("LAMINA_NUM_THREADS='") + std::getenv("LAMINA_NUM_THREADS") +
          "' is not a thread count (1 to 1024)";
    return 0;
  }
  try {
    if (dnnl::engine::get_count(dnnl::engine::kind::cpu) == 0) {
      why = "oneDNN reports no CPU engine";
      return 0;
    }
    dnnl::engine probe(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(probe);
  } catch (const dnnl::error& e) {
    why = std::string("oneDNN cannot create a CPU engine: ") + e.what();
    return 0;
  }
  return 100;
}

void init(const lamina_host* host) {
  // Before the engine: oneDNN sizes its work for the team it finds.
  if (const int threads = env_threads() > 0 ? env_threads() : configured_threads; threads > 0)
    omp_set_num_threads(threads);
  try {
    if (!g_backend) g_backend = std::make_unique<Backend>();
  } catch (const dnnl::error& e) {
    throw sdk::Error(std::string("onednn: cannot create the CPU engine and stream: ") + e.what());
  }
  // No thread count set anywhere: the team follows the cores this process gets (team.hpp), when
  // it may run on every CPU of the machine (the load /proc/stat reports is the whole machine's).
  const char* omp_threads = std::getenv("OMP_NUM_THREADS");
  const bool fixed = env_threads() > 0 || configured_threads > 0 || (omp_threads && *omp_threads);
  cpu_set_t allowed;
  const long machine_cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (!fixed && sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) == machine_cpus &&
      machine_cpus > 1)
    g_backend->team.enable(int(machine_cpus), int(machine_cpus));
  g_backend->device = describe_device();
  lamina_backend table = memory_table(*g_backend);
  table.device = g_backend->device.c_str();
  sdk::register_backend<Kernels>(host, table);
}

}  // namespace

// {"threads": N, "winograd": "auto" | "on" | "off"}, both optional; LAMINA_NUM_THREADS and
// LAMINA_WINOGRAD override them. "device" comes with the configuration's top-level default for every
// backend; the CPU is this backend's one device, so it is not read.
void configure(const std::string& settings_json) {
  sdk::Config settings(settings_json, "onednn settings");
  settings.only_keys({"threads", "winograd", "device"});
  winograd::set_configured_mode(winograd::parse_mode(
      settings.get_choice("winograd", "auto", {"auto", "on", "off"}).c_str(), "backends.onednn.winograd"));
  const int64_t threads = settings.get_int("threads", 0);
  if (settings.has("threads") && (threads < 1 || threads > 1024))
    settings.fail("'threads' must be a thread count (1 to 1024), got " + std::to_string(threads));
  configured_threads = int(threads);
}

}  // namespace lamina::onednn

LAMINA_PLUGIN("onednn", "0.1.0", LAMINA_KIND_BACKEND, "oneDNN CPU backend: the default on x86-64",
              lamina::onednn::init, lamina::onednn::score)
LAMINA_PLUGIN_CONFIGURE(lamina::onednn::configure)
