// IDX files, plain and gzip-compressed, and the Fashion-MNIST loader.
#include "support.hpp"

#include <zlib.h>

#include <filesystem>
#include <fstream>

using namespace lamina;

namespace {

std::string temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "lamina_idx_tests";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

// A 2x3 uint8 IDX file (magic 0x00000803 would be 3-D; this is 0x00000802).
std::vector<unsigned char> small_idx() {
  return {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 251, 252};
}

}  // namespace

TEST_CASE("read_idx reads plain and gzip-compressed IDX files") {
  auto bytes = small_idx();
  std::string plain = temp_path("small.idx");
  std::ofstream(plain, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  std::string packed = temp_path("small.idx.gz");
  gzFile gz = gzopen(packed.c_str(), "wb");
  gzwrite(gz, bytes.data(), unsigned(bytes.size()));
  gzclose(gz);
  for (const std::string& path : {plain, packed}) {
    CAPTURE(path);
    Tensor t = read_idx(path);
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.to_vector() == std::vector<float>{1, 2, 3, 250, 251, 252});
  }
}

TEST_CASE("a truncated or foreign file is an error naming the file") {
  auto bytes = small_idx();
  std::string truncated = temp_path("truncated.idx");
  std::ofstream(truncated, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), 14);
  CHECK(test::error_of([&] { read_idx(truncated); }).find(truncated + ": truncated") != std::string::npos);
  std::string foreign = temp_path("foreign.idx");
  std::ofstream(foreign) << "PNG not an idx file";
  CHECK(test::error_of([&] { read_idx(foreign); }).find("not an IDX file") != std::string::npos);
}

TEST_CASE("fashion_mnist::load_data reads Debian's Fashion-MNIST") {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist"))
    test::skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
  auto [train, test] = datasets::fashion_mnist::load_data();
  CHECK(train.x.shape() == Shape{60000, 28, 28});
  CHECK(train.y.shape() == Shape{60000});
  CHECK(test.x.shape() == Shape{10000, 28, 28});
  auto labels = test.y.to_vector();
  CHECK(*std::max_element(labels.begin(), labels.end()) == 9);
}
