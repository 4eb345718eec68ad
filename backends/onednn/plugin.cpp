// The onednn backend: lamina's default CPU backend, built on oneDNN primitives (convolution,
// matmul, pooling, eltwise, binary, softmax, reduction) with OpenMP loops for the ops oneDNN has
// no exact primitive for. Entry points, the backend table and its registration live here.
#include <omp.h>

#include <memory>
#include <string>

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

std::string describe_device() {
  const dnnl::version_t* v = dnnl::version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + " CPU, " + isa_name(dnnl::get_effective_cpu_isa()) + ", " +
         std::to_string(omp_get_max_threads()) + " OpenMP threads";
}

// Usable wherever oneDNN can create a CPU engine; preferred over the reference backend.
int32_t score(std::string& why) {
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
  try {
    if (!g_backend) g_backend = std::make_unique<Backend>();
  } catch (const dnnl::error& e) {
    throw sdk::Error(std::string("onednn: cannot create the CPU engine and stream: ") + e.what());
  }
  g_backend->device = describe_device();
  lamina_backend table = memory_table(*g_backend);
  table.device = g_backend->device.c_str();
  sdk::register_backend<Kernels>(host, table);
}

}  // namespace
}  // namespace lamina::onednn

LAMINA_PLUGIN("onednn", "0.1.0", LAMINA_KIND_BACKEND, "oneDNN CPU backend: the default on x86-64",
              lamina::onednn::init, lamina::onednn::score)
