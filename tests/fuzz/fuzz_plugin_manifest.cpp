// Plugin manifests (<plugin>.json beside each library), as discovery reads them.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lamina::PluginManifest m =
        lamina::parse_plugin_manifest(std::string(reinterpret_cast<const char*>(data), size));
    (void)m;
  } catch (const lamina::Error&) {
  }
  return 0;
}
