// Data SPECs for `lamina evaluate` and `lamina predict`:
//   mnist:DIR               the MNIST test split (t10k IDX files) in DIR, pixels scaled to [0, 1]
//   fashion_mnist[:DIR]     the Fashion-MNIST test split (default: Debian's dataset-fashion-mnist)
//   h5:FILE:X[:Y]           datasets X (inputs) and Y (labels) inside an HDF5 file, read in pieces
#pragma once

#include "commands.hpp"

#include <lamina/h5.hpp>
#include <lamina/model.hpp>

#include <memory>
#include <optional>
#include <string>

namespace lamina::cli {

class DataSource {
 public:
  // `scale` divides the inputs; unset means 255 for the image sets and 1 for h5 data.
  DataSource(const std::string& spec, std::optional<double> scale);
  const std::string& spec() const { return spec_; }
  int64_t rows() const { return rows_; }
  bool has_labels() const { return has_labels_; }
  // Rows [begin, end) of the inputs, scaled and shaped to `input_shape` (the model's, without the
  // batch dimension), and of the labels as stored (class indices or one-hot rows).
  Tensor inputs(int64_t begin, int64_t end, const Shape& input_shape) const;
  Tensor labels(int64_t begin, int64_t end) const;

 private:
  std::string spec_;
  int64_t rows_ = 0;
  bool has_labels_ = false;
  double scale_ = 1.0;
  Tensor x_, y_;  // image sets: in memory
  std::shared_ptr<h5::File> file_;
  std::string x_name_, y_name_;
};

// How many rows evaluate and predict hand the model at a time: bounded memory for h5 data.
constexpr int64_t kChunkRows = 8192;

// Options the model commands share: --backend, --batch-size, --scale, --limit.
void add_model_options(CLI::App& command, ModelArgs& args);
// Selects the backend (when given) and loads the model file.
Model open_model(const ModelArgs& args, bool compile);
// Rows to use: all, or the first --limit.
int64_t rows_to_use(const DataSource& data, const ModelArgs& args);

}  // namespace lamina::cli
