// Training data read one batch at a time: what fit() and evaluate() consume. The role of Keras'
// keras.utils.Sequence (PyDataset in Keras 3): the data need not fit in memory.
//
//   lamina::H5Batches train("fashion.h5", {.x = "x_train", .y = "y_train", .batch_size = 128,
//                                          .scale = 255, .num_classes = 10, .sample_shape = {28, 28, 1}});
//   model.fit(train, {.epochs = 12});
#pragma once

#include <lamina/tensor.hpp>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace lamina {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t size() const = 0;        // samples per epoch
  virtual int64_t batch_size() const = 0;  // the last batch of an epoch may be smaller
  int64_t num_batches() const { return batch_size() > 0 ? (size() + batch_size() - 1) / batch_size() : 0; }
  // Called before each epoch; a source that can shuffle does so with `random` (the generator
  // set_random_seed seeds, so runs repeat) when `shuffle` is true.
  virtual void begin_epoch(bool shuffle, std::mt19937_64& random) {
    (void)shuffle;
    (void)random;
  }
  // Batch `index` (0 ≤ index < num_batches()) of the current epoch: inputs and targets, host tensors.
  virtual std::pair<Tensor, Tensor> batch(int64_t index) = 0;
  // The same batch for a model with several inputs or outputs: one tensor per input and per
  // output. The default gives batch()'s pair as lists of one.
  virtual std::pair<std::vector<Tensor>, std::vector<Tensor>> batch_lists(int64_t index) {
    auto [x, y] = batch(index);
    return {{std::move(x)}, {std::move(y)}};
  }
  // What the data is, for messages: "x_train in fashion.h5".
  virtual std::string description() const = 0;
  // True when batch_lists() may run on another thread while the model trains: it builds host
  // tensors from data of its own and touches nothing the training thread uses (no ops on a
  // backend, no state a callback reads). fit() then reads the next batch on a worker thread while
  // the current one trains (LAMINA_PREFETCH, docs/architecture.md). The source's calls still come
  // one at a time and in order, and never during begin_epoch() or a callback.
  virtual bool prefetchable() const { return false; }
};

// Tensors in memory, shuffled sample by sample (what fit(x, y) uses). `order`, when given, is
// where the sample order lives between epochs and calls (fit() passes the model's, which a saved
// file keeps so a resumed run visits the data in the same order); it must hold a permutation of
// 0 .. N-1. With lists, one tensor per model input and output, all with the same number of rows.
class TensorBatches : public BatchSource {
 public:
  TensorBatches(Tensor x, Tensor y, int64_t batch_size, std::vector<int64_t>* order = nullptr);
  TensorBatches(std::vector<Tensor> x, std::vector<Tensor> y, int64_t batch_size,
                std::vector<int64_t>* order = nullptr);
  int64_t size() const override { return x_[0].dim(0); }
  int64_t batch_size() const override { return batch_size_; }
  void begin_epoch(bool shuffle, std::mt19937_64& random) override;
  std::pair<Tensor, Tensor> batch(int64_t index) override;  // the first input and target
  std::pair<std::vector<Tensor>, std::vector<Tensor>> batch_lists(int64_t index) override;
  std::string description() const override { return "the training data"; }
  bool prefetchable() const override { return true; }

 private:
  std::vector<Tensor> x_, y_;
  int64_t batch_size_;
  std::vector<int64_t> own_order_;
  std::vector<int64_t>* order_;
  bool in_order_ = true;  // order_ is 0 .. N-1: batches are views, not copies
};

struct H5BatchesOptions {
  std::string x = "x";  // the inputs' dataset (any integer or float type, N rows)
  std::string y = "y";  // the targets' dataset (N rows), or "" for inputs only
  int64_t batch_size = 32;
  double scale = 1.0;           // inputs are divided by it (255 for raw pixels)
  int64_t num_classes = 0;      // > 0: y holds class indices, one-hot encoded to this many classes
  Shape sample_shape;           // each input row reshaped to it (e.g. {28, 28, 1}); empty: as stored
  int64_t begin = 0, end = -1;  // the rows used, [begin, end); end -1: to the last row
};

// Datasets in an HDF5 file, read batch by batch with hyperslab reads: memory holds one batch, not
// the data set. Shuffling is Keras' shuffle="batch": each epoch visits the batches (contiguous
// blocks of rows) in a new order and shuffles the rows within each block, so every read stays
// one contiguous slab of the file.
class H5Batches : public BatchSource {
 public:
  H5Batches(const std::string& path, H5BatchesOptions options);
  ~H5Batches() override;
  int64_t size() const override;
  int64_t batch_size() const override { return options_.batch_size; }
  void begin_epoch(bool shuffle, std::mt19937_64& random) override;
  std::pair<Tensor, Tensor> batch(int64_t index) override;
  std::string description() const override;
  bool prefetchable() const override { return true; }
  int64_t rows_read() const { return rows_read_; }  // inputs rows read from the file so far

 private:
  struct File;
  std::unique_ptr<File> file_;
  std::string path_;
  H5BatchesOptions options_;
  Shape x_row_shape_, y_row_shape_;
  std::vector<int64_t> block_order_;
  uint64_t epoch_seed_ = 0;  // orders the rows within each block
  bool shuffle_ = false;
  int64_t rows_read_ = 0;
};

}  // namespace lamina
