// JSON configs: a model's to_json() text (model_from_json, the parser behind model_config and
// `lamina train` configs' "model" section) and the user configuration file (lamina.json).
#include "config.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool ready = (lamina::fuzz::setup(), true);
  (void)ready;
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    lamina::Model model = lamina::model_from_json(text);
    lamina::fuzz::exercise(model);
    model.to_json();
  } catch (const lamina::Error&) {
  }
  try {
    lamina::parse_user_config(text, "fuzz.json");
  } catch (const lamina::Error&) {
  }
  return 0;
}
