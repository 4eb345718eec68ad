// Batch sources: tensors in memory, and datasets in an HDF5 file read one slab at a time.
#include "tensor_impl.hpp"

#include <lamina/batches.hpp>
#include <lamina/error.hpp>
#include <lamina/h5.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace lamina {

namespace {

// Copies rows `index[begin, end)` of host tensor `t` into a new host tensor.
Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& index, size_t begin, size_t end) {
  Shape s = t.shape();
  const int64_t row = t.size() / std::max<int64_t>(s[0], 1);
  s[0] = int64_t(end - begin);
  Tensor out = Tensor::empty_host(s);
  const float* src = t.host_data();
  float* dst = out.host_data();
  if (row <= 8) {
    // Short rows (a few features, a label) element by element: the reads of successive rows, scattered
    // over the data set, then overlap instead of each waiting in its own memcpy call.
    for (size_t i = begin; i < end; ++i) {
      const float* from = src + index[i] * row;
      float* to = dst + (i - begin) * size_t(row);
      for (int64_t c = 0; c < row; ++c) to[c] = from[c];
    }
    return out;
  }
  for (size_t i = begin; i < end; ++i)
    std::memcpy(dst + (i - begin) * size_t(row), src + index[i] * row, size_t(row) * sizeof(float));
  return out;
}

void fisher_yates(std::vector<int64_t>& order, std::mt19937_64& random) {
  for (int64_t i = int64_t(order.size()) - 1; i > 0; --i)
    std::swap(order[size_t(i)], order[size_t(random() % uint64_t(i + 1))]);
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// TensorBatches

TensorBatches::TensorBatches(Tensor x, Tensor y, int64_t batch_size, std::vector<int64_t>* order)
    : TensorBatches(std::vector<Tensor>{std::move(x)}, std::vector<Tensor>{std::move(y)}, batch_size, order) {}

TensorBatches::TensorBatches(std::vector<Tensor> x, std::vector<Tensor> y, int64_t batch_size,
                             std::vector<int64_t>* order)
    : batch_size_(batch_size), order_(order ? order : &own_order_) {
  if (batch_size < 1) throw Error("batch_size must be at least 1, got " + std::to_string(batch_size));
  if (x.empty()) throw Error("no inputs were given");
  for (Tensor& t : x) x_.push_back(to_host(t));
  for (Tensor& t : y) y_.push_back(to_host(t));
  const int64_t rows = x_[0].ndim() ? x_[0].dim(0) : 0;
  for (const auto* list : {&x_, &y_})
    for (const Tensor& t : *list)
      if (t.ndim() == 0 || t.dim(0) != rows)
        throw Error("the inputs have " + std::to_string(rows) + " samples but " +
                    (list == &x_ ? std::string("another input has ") : std::string("the targets have ")) +
                    std::to_string(t.ndim() ? t.dim(0) : 0) + "; they must have the same first dimension");
  const size_t n = size_t(rows);
  if (order_->size() != n) {
    if (order) throw Error("the sample order holds " + std::to_string(order_->size()) + " entries for " +
                           std::to_string(n) + " samples");
    order_->resize(n);
    std::iota(order_->begin(), order_->end(), 0);
  }
  for (size_t i = 0; i < n; ++i) {
    if ((*order_)[i] < 0 || (*order_)[i] >= int64_t(n))
      throw Error("the sample order holds " + std::to_string((*order_)[i]) + ", not a sample index");
    in_order_ = in_order_ && (*order_)[i] == int64_t(i);
  }
}

void TensorBatches::begin_epoch(bool shuffle, std::mt19937_64& random) {
  if (!shuffle) return;
  fisher_yates(*order_, random);
  in_order_ = false;
}

std::pair<std::vector<Tensor>, std::vector<Tensor>> TensorBatches::batch_lists(int64_t index) {
  const int64_t begin = index * batch_size_, end = std::min(size(), begin + batch_size_);
  if (index < 0 || begin >= size()) throw Error("batch " + std::to_string(index) + " is out of range");
  auto rows = [&](const Tensor& t) {
    return in_order_ ? t.slice(begin, end) : gather_rows(t, *order_, size_t(begin), size_t(end));
  };
  std::pair<std::vector<Tensor>, std::vector<Tensor>> out;
  for (const Tensor& t : x_) out.first.push_back(rows(t));
  for (const Tensor& t : y_) out.second.push_back(rows(t));
  return out;
}

std::pair<Tensor, Tensor> TensorBatches::batch(int64_t index) {
  auto [x, y] = batch_lists(index);
  return {x[0], y.empty() ? Tensor() : y[0]};
}

// ------------------------------------------------------------------------------------------------
// H5Batches

struct H5Batches::File {
  h5::File file;
};

H5Batches::H5Batches(const std::string& path, H5BatchesOptions options)
    : file_(std::make_unique<File>()), path_(path), options_(std::move(options)) {
  const H5BatchesOptions& o = options_;
  if (o.batch_size < 1) throw Error(path + ": batch_size must be at least 1, got " + std::to_string(o.batch_size));
  if (!(o.scale > 0) || !std::isfinite(o.scale))
    throw Error(path + ": scale must be a positive number, got " + std::to_string(o.scale));
  file_->file = h5::File(path);
  const h5::File& f = file_->file;
  auto dataset_info = [&](const std::string& name, const char* role) {
    if (!f.is_dataset(name)) {
      std::string known;
      for (const std::string& c : f.children("/")) known += (known.empty() ? "" : ", ") + c;
      throw Error(path + ": no dataset '" + name + "' for the " + role + " (the file's root holds: " +
                  (known.empty() ? "nothing" : known) + ")");
    }
    h5::DatasetInfo info = f.info(name);
    if (info.dtype == h5::DType::string || info.dtype == h5::DType::other)
      throw Error(path + ": dataset '" + name + "' holds " + h5::dtype_name(info.dtype) +
                  " values; the " + role + " must be numbers");
    if (info.shape.empty()) throw Error(path + ": dataset '" + name + "' is a scalar; the " + role + " need rows");
    return info;
  };
  const h5::DatasetInfo x = dataset_info(o.x, "inputs");
  const int64_t rows = x.shape[0];
  Shape stored_row(x.shape.begin() + 1, x.shape.end());
  x_row_shape_ = o.sample_shape.empty() ? stored_row : o.sample_shape;
  if (shape_size(x_row_shape_) != shape_size(stored_row) ||
      std::any_of(x_row_shape_.begin(), x_row_shape_.end(), [](int64_t d) { return d < 1; }))
    throw Error(path + ": the rows of '" + o.x + "' are " + shape_to_string(stored_row) +
                ", which cannot be reshaped to the sample shape " + shape_to_string(x_row_shape_));
  if (!o.y.empty()) {
    const h5::DatasetInfo y = dataset_info(o.y, "targets");
    if (y.shape[0] != rows)
      throw Error(path + ": '" + o.x + "' has " + std::to_string(rows) + " rows but '" + o.y + "' has " +
                  std::to_string(y.shape[0]) + "; inputs and targets must pair row by row");
    y_row_shape_.assign(y.shape.begin() + 1, y.shape.end());
    if (o.num_classes > 0) {
      if (shape_size(y_row_shape_) != 1)
        throw Error(path + ": num_classes is set, so '" + o.y + "' must hold one class index per row, but its rows are " +
                    shape_to_string(y_row_shape_));
      y_row_shape_ = {o.num_classes};
    }
  }
  const int64_t end = o.end < 0 ? rows : o.end;
  if (o.begin < 0 || end > rows || o.begin > end)
    throw Error(path + ": rows [" + std::to_string(o.begin) + ", " + std::to_string(end) + ") are outside '" + o.x +
                "', which has " + std::to_string(rows) + " rows");
  options_.end = end;
  block_order_.resize(size_t(num_batches()));
  std::iota(block_order_.begin(), block_order_.end(), 0);
}

H5Batches::~H5Batches() = default;

int64_t H5Batches::size() const { return options_.end - options_.begin; }

std::string H5Batches::description() const { return "'" + options_.x + "' in " + path_; }

void H5Batches::begin_epoch(bool shuffle, std::mt19937_64& random) {
  shuffle_ = shuffle;
  if (!shuffle) return;
  fisher_yates(block_order_, random);
  epoch_seed_ = random();
}

std::pair<Tensor, Tensor> H5Batches::batch(int64_t index) {
  if (index < 0 || index >= num_batches()) throw Error(description() + ": batch " + std::to_string(index) + " is out of range");
  const H5BatchesOptions& o = options_;
  const int64_t block = block_order_[size_t(index)];
  const int64_t begin = o.begin + block * o.batch_size, end = std::min(o.end, begin + o.batch_size);
  const int64_t n = end - begin;
  const h5::File& f = file_->file;

  std::vector<float> x = f.read_rows<float>(o.x, begin, end);
  rows_read_ += n;
  if (o.scale != 1.0) {
    const float scale = float(o.scale);
    for (float& v : x) v /= scale;  // as x / 255 on tensors in memory, to the last bit
  }
  std::vector<float> y;
  if (!o.y.empty()) {
    std::vector<float> stored = f.read_rows<float>(o.y, begin, end);
    if (o.num_classes > 0) {
      y.assign(size_t(n * o.num_classes), 0.0f);
      for (int64_t i = 0; i < n; ++i) {
        const float label = stored[size_t(i)];
        if (!(label >= 0) || label >= float(o.num_classes) || label != std::floor(label))
          throw Error(path_ + ": row " + std::to_string(begin + i) + " of '" + o.y + "' is " + std::to_string(label) +
                      ", not a class index in [0, " + std::to_string(o.num_classes) + ")");
        y[size_t(i * o.num_classes + int64_t(label))] = 1.0f;
      }
    } else {
      y = std::move(stored);
    }
  }

  // Rows within the block in an order fixed by the epoch and the block (in file order without
  // shuffling), copied once from what was read into the batch's tensor.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (shuffle_) {
    std::mt19937_64 random(epoch_seed_ ^ (uint64_t(block) * 0x9E3779B97F4A7C15ull));
    fisher_yates(order, random);
  }
  auto batch_of = [&](const std::vector<float>& rows, const Shape& row_shape) {
    Shape shape{n};
    shape.insert(shape.end(), row_shape.begin(), row_shape.end());
    Tensor t = Tensor::empty_host(shape);
    const size_t width = rows.size() / size_t(std::max<int64_t>(n, 1));
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(t.host_data() + size_t(i) * width, rows.data() + size_t(order[size_t(i)]) * width,
                  width * sizeof(float));
    return t;
  };
  return {batch_of(x, x_row_shape_), o.y.empty() ? Tensor() : batch_of(y, y_row_shape_)};
}

}  // namespace lamina
