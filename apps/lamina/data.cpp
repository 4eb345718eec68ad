#include "data.hpp"

#include <lamina/backend.hpp>
#include <lamina/datasets.hpp>

#include <filesystem>

namespace lamina::cli {

namespace {

const char* kSpecHelp = "; data specs are mnist:DIR, fashion_mnist[:DIR] or h5:FILE:X[:Y]";

// The test split's IDX file in `folder`, in any of its usual spellings.
std::string idx_file(const std::string& folder, const std::string& stem, const std::string& spec) {
  std::string dotted = stem;
  dotted[dotted.find("-idx")] = '.';
  for (const std::string& name : {stem, dotted})
    for (const char* suffix : {"", ".gz"}) {
      std::string p = folder + "/" + name + suffix;
      if (std::filesystem::exists(p)) return p;
    }
  throw Error(spec + ": " + folder + " has no " + stem + " (or " + stem + ".gz)");
}

}  // namespace

DataSource::DataSource(const std::string& spec, std::optional<double> scale) : spec_(spec) {
  std::string kind = spec.substr(0, spec.find(':'));
  std::string rest = spec.find(':') == std::string::npos ? "" : spec.substr(spec.find(':') + 1);
  if (kind == "mnist" || kind == "fashion_mnist") {
    std::string folder = rest;
    if (folder.empty()) {
      if (kind == "mnist")
        throw Error(spec + ": give the folder with the MNIST IDX files, e.g. mnist:data/mnist");
      folder = "/usr/share/datasets/fashion-mnist";
      if (!std::filesystem::is_directory(folder))
        throw Error(spec + ": " + folder +
                    " does not exist; install it with: apt-get install dataset-fashion-mnist");
    }
    if (!std::filesystem::is_directory(folder))
      throw Error(spec + ": the folder " + folder + " does not exist");
    x_ = read_idx(idx_file(folder, "t10k-images-idx3-ubyte", spec));
    y_ = read_idx(idx_file(folder, "t10k-labels-idx1-ubyte", spec));
    if (x_.dim(0) != y_.dim(0))
      throw Error(spec + ": " + std::to_string(x_.dim(0)) + " images but " + std::to_string(y_.dim(0)) +
                  " labels");
    rows_ = x_.dim(0);
    has_labels_ = true;
    scale_ = scale.value_or(255.0);
  } else if (kind == "h5") {
    // h5:FILE:X[:Y]; the file name is everything before the last one or two fields.
    size_t last = rest.rfind(':');
    if (last == std::string::npos)
      throw Error(spec + ": name the inputs dataset, e.g. h5:data.h5:x_test:y_test");
    std::string file = rest.substr(0, last), x = rest.substr(last + 1), y;
    if (!std::filesystem::exists(file) && file.find(':') != std::string::npos) {
      y = x;
      last = file.rfind(':');
      x = file.substr(last + 1);
      file = file.substr(0, last);
    }
    file_ = std::make_shared<h5::File>(file);
    if (!file_->is_dataset(x)) throw Error(spec + ": " + file + " has no dataset '" + x + "'");
    h5::DatasetInfo info = file_->info(x);
    if (info.shape.empty()) throw Error(spec + ": dataset '" + x + "' is a scalar, not a set of samples");
    rows_ = info.shape[0];
    x_name_ = x;
    if (!y.empty()) {
      if (!file_->is_dataset(y)) throw Error(spec + ": " + file + " has no dataset '" + y + "'");
      h5::DatasetInfo yi = file_->info(y);
      if (yi.shape.empty() || yi.shape[0] != rows_)
        throw Error(spec + ": dataset '" + y + "' has shape " + shape_to_string(yi.shape) + " but '" + x +
                    "' has " + std::to_string(rows_) + " rows");
      y_name_ = y;
      has_labels_ = true;
    }
    scale_ = scale.value_or(1.0);
  } else {
    throw Error("unknown data spec '" + spec + "'" + kSpecHelp);
  }
  if (!(scale_ > 0)) throw Error(spec + ": --scale must be positive");
}

Tensor DataSource::inputs(int64_t begin, int64_t end, const Shape& input_shape) const {
  Tensor x = file_ ? file_->read_tensor_rows(x_name_, begin, end) : x_.slice(begin, end);
  Shape sample(x.shape().begin() + 1, x.shape().end());
  if (sample != input_shape) {
    if (shape_size(sample) != shape_size(input_shape))
      throw Error(spec_ + ": samples of shape " + shape_to_string(sample) + " do not fit the model's input " +
                  shape_to_string(input_shape));
    Shape s{end - begin};
    s.insert(s.end(), input_shape.begin(), input_shape.end());
    x = x.reshape(s);
  }
  if (scale_ == 1.0) return x;
  // On the host: the data is there already, and the backend may not hold it yet.
  Tensor out = Tensor::empty_host(x.shape());
  std::vector<float> v = x.to_vector();
  float inverse = float(1.0 / scale_);
  for (size_t i = 0; i < v.size(); ++i) out.host_data()[i] = v[i] * inverse;
  return out;
}

void add_model_options(CLI::App& command, ModelArgs& a) {
  command.add_option("--backend", a.backend, "Compute backend (onednn, reference, auto, ...)");
  command.add_option("--batch-size", a.batch_size, "Samples per forward pass (default 32)")
      ->check(CLI::PositiveNumber);
  command
      .add_option("--scale", a.scale,
                  "Divide the inputs by this (default: 255 for mnist and fashion_mnist, 1 for h5)")
      ->check(CLI::PositiveNumber);
  command.add_option("--limit", a.limit, "Use only the first N samples")->check(CLI::PositiveNumber);
}

Model open_model(const ModelArgs& a, bool compile) {
  if (!a.backend.empty()) set_backend(a.backend);
  return load_model(a.model, compile);
}

int64_t rows_to_use(const DataSource& data, const ModelArgs& a) {
  return a.limit ? std::min(*a.limit, data.rows()) : data.rows();
}

Tensor DataSource::labels(int64_t begin, int64_t end) const {
  if (!has_labels_) throw Error(spec_ + ": no labels; give them as h5:FILE:X:Y");
  return file_ ? file_->read_tensor_rows(y_name_, begin, end) : y_.slice(begin, end);
}

}  // namespace lamina::cli
