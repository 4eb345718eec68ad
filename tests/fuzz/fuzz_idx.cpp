// IDX data files (MNIST, Fashion-MNIST), plain or gzip-compressed: read_idx and to_categorical on
// what it returns.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = lamina::fuzz::scratch_file(".idx");
  lamina::fuzz::write_file(path, data, size);
  try {
    lamina::Tensor t = lamina::read_idx(path);
    if (t.ndim() == 1 && t.size() <= (1 << 16)) lamina::to_categorical(t);
  } catch (const lamina::Error&) {
  }
  std::remove(path.c_str());
  return 0;
}
