// Keras .h5 model files: load_model (config, weights, training config, optimizer state), as
// `lamina evaluate` reads them, then a forward pass. Any crash, sanitizer report or exception
// other than lamina::Error is a finding.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool ready = (lamina::fuzz::setup(), true);
  (void)ready;
  static const std::string path = lamina::fuzz::scratch_file(".h5");
  lamina::fuzz::write_file(path, data, size);
  try {
    lamina::Model model = lamina::load_model(path, true);
    lamina::fuzz::exercise(model);
    model.load_weights(path);
  } catch (const lamina::Error&) {
  }
  std::remove(path.c_str());
  return 0;
}
