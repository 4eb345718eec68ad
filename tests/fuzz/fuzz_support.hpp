// Shared by the libFuzzer targets: a scratch file per process for the readers that take a path,
// and the setup every target needs (the reference backend, bounded weight sizes).
#pragma once

#include <lamina/lamina.hpp>

#include "model.hpp"
#include "plugins.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace lamina::fuzz {

// /dev/shm when there is one: the readers open files by name and the disk need not see them.
inline std::string scratch_file(const char* suffix) {
  static const std::string folder = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  return folder + "/lamina_fuzz_" + std::to_string(getpid()) + suffix;
}

inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

inline void setup() {
  set_backend("reference");
  // A model file's own weights bound what its config may declare; a bare JSON config has no such
  // bound, so the targets use the one an application would set for untrusted configs.
  weight_limit().elements = int64_t(1) << 22;
  weight_limit().source = "the fuzz target's limit";
}

// Whether every layer's outputs (nested models' layers too) hold at most `limit` values per sample:
// a config may declare an UpSampling2D of size 10,000 or a RepeatVector of a million, which a file's
// weights do not bound.
inline bool outputs_within(const Model& model, int64_t limit) {
  for (size_t i = 0; i < model.size(); ++i) {
    const Layer& layer = model.layer(i);
    if (layer.model() && !outputs_within(*layer.model(), limit)) return false;
    for (const Shape& shape : layer.output_shapes()) {
      int64_t n = 1;
      for (int64_t d : shape) {
        if (d < 0 || d > limit) return false;
        n *= std::max<int64_t>(d, 1);
        if (n > limit) return false;
      }
    }
  }
  return true;
}

// Runs the model on zeros when that is cheap: shape bugs in layers show up as crashes here.
inline void exercise(const Model& model) {
  if (model.size() == 0 || model.outputs().empty() || !outputs_within(model, int64_t(1) << 22)) return;
  std::vector<Tensor> inputs;
  for (const KerasTensor& input : model.inputs()) {
    int64_t per_sample = 1;
    for (int64_t d : input.shape()) {
      if (d <= 0 || d > 4096) return;
      per_sample *= d;
      if (per_sample > (1 << 16)) return;
    }
    Shape s = input.shape();
    s.insert(s.begin(), 2);
    inputs.push_back(Tensor::zeros(s));
  }
  model.predict_outputs(inputs);
}

}  // namespace lamina::fuzz
