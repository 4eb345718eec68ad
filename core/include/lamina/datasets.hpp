// Data sets and data utilities: IDX files (MNIST, Fashion-MNIST), to_categorical.
#pragma once

#include <lamina/tensor.hpp>

#include <string>
#include <utility>

namespace lamina {

// Reads an IDX file (plain or gzip-compressed) into a float tensor with the file's shape.
Tensor read_idx(const std::string& path);

// (x, y) pairs as in Keras: x is (N, 28, 28) with pixel values 0..255, y the class indices (N).
struct DataSplit {
  Tensor x, y;
};
struct Dataset {
  DataSplit train, test;
};

namespace datasets {
namespace mnist {
// Reads train-images-idx3-ubyte[.gz] etc. from `folder`; default: $LAMINA_DATA/mnist.
Dataset load_data(const std::string& folder = "");
}  // namespace mnist
namespace fashion_mnist {
// Default folder: /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
Dataset load_data(const std::string& folder = "");
}  // namespace fashion_mnist
}  // namespace datasets

namespace utils {
// One-hot rows for class indices y (N) or (N, 1); num_classes -1 means max(y) + 1.
Tensor to_categorical(const Tensor& y, int64_t num_classes = -1);
}  // namespace utils
using utils::to_categorical;

}  // namespace lamina
