// fit()'s input pipeline: the next batch is read on a worker thread while the current one trains.
//
// A batch source that says it may be read from another thread (BatchSource::prefetchable: the
// in-memory and HDF5 sources do) has batch i+1 prepared — rows gathered in the shuffled order,
// slabs read from the file and converted — while step i computes. The worker owns the source only
// between prepare() and wait(): fit() waits before callbacks run, before the next epoch is
// shuffled and before validation, so a callback that writes a file or a source that is not
// reentrant never races the worker.
//
// Whether it pays is measured, not assumed (LAMINA_PREFETCH=auto, the default): the first two
// batches of a run are read on the calling thread and timed; the worker starts when they took at
// least kWorthwhile each. Slices of data in order cost a microsecond and are never prefetched, so a
// small model's 20-µs step does not pay for the hand-over. LAMINA_PREFETCH=on prefetches every
// prefetchable source, =off none.
#pragma once

#include <lamina/batches.hpp>
#include <lamina/ops.hpp>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace lamina {

class BatchPrefetcher {
 public:
  using Batch = std::pair<std::vector<Tensor>, std::vector<Tensor>>;
  static constexpr double kWorthwhile = 20e-6;  // seconds per batch

  explicit BatchPrefetcher(BatchSource& data);
  ~BatchPrefetcher();  // waits for a batch in preparation and ends the worker
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // Batch `index` of the current epoch: the prepared one, or read now. Rethrows the source's error.
  Batch get(int64_t index);
  // Starts preparing batch `index` on the worker, when prefetching is on and has paid.
  void prepare(int64_t index);
  // Returns once the worker no longer reads the source (a prepared batch is kept for get()).
  void wait();
  // The source's begin_epoch, after wait().
  void begin_epoch(bool shuffle, std::mt19937_64& random);

 private:
  enum class Mode { automatic, on, off };
  // asked: requested_ waits for the worker; reading: the worker reads it; ready: ready_ / error_
  // hold it. The worker owns the source in asked and reading only.
  enum class State { idle, asked, reading, ready };
  void run();
  void wait(std::unique_lock<std::mutex>& lock);

  BatchSource& data_;
  Mode mode_;
  int timed_ = 0;           // batches read and timed on the calling thread (auto)
  bool worthwhile_ = true;  // every timed read took at least kWorthwhile
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable changed_;
  State state_ = State::idle;
  int64_t requested_ = -1;  // the batch of the asked, reading or ready state
  bool quit_ = false;
  Batch ready_;
  std::exception_ptr error_;
};

}  // namespace lamina
