// fit()'s input pipeline (prefetch.hpp).
#include "prefetch.hpp"

#include <lamina/error.hpp>

#include <chrono>
#include <cstdlib>
#include <string>

namespace lamina {

BatchPrefetcher::BatchPrefetcher(BatchSource& data) : data_(data), mode_(Mode::automatic) {
  const char* env = std::getenv("LAMINA_PREFETCH");
  const std::string value = env ? env : "";
  if (value == "on" || value == "1")
    mode_ = Mode::on;
  else if (value == "off" || value == "0")
    mode_ = Mode::off;
  else if (!value.empty() && value != "auto")
    throw Error("LAMINA_PREFETCH='" + value + "' is not one of auto, on (1), off (0)");
  if (!data.prefetchable()) mode_ = Mode::off;
}

BatchPrefetcher::~BatchPrefetcher() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

void BatchPrefetcher::run() {
  NoGradGuard no_grad;  // a source builds plain host tensors; nothing it does is differentiated
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return quit_ || state_ == State::asked; });
    if (quit_) return;
    state_ = State::reading;
    const int64_t index = requested_;
    lock.unlock();
    Batch batch;
    std::exception_ptr error;
    try {
      batch = data_.batch_lists(index);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    ready_ = std::move(batch);
    error_ = error;
    state_ = State::ready;
    changed_.notify_all();
  }
}

void BatchPrefetcher::prepare(int64_t index) {
  if (mode_ == Mode::off || (mode_ == Mode::automatic && (timed_ < 2 || !worthwhile_))) return;
  {
    std::unique_lock lock(mutex_);
    wait(lock);
    requested_ = index;
    state_ = State::asked;
  }
  if (!worker_.joinable())
    worker_ = std::thread(&BatchPrefetcher::run, this);
  else
    changed_.notify_all();
}

void BatchPrefetcher::wait(std::unique_lock<std::mutex>& lock) {
  changed_.wait(lock, [&] { return state_ != State::asked && state_ != State::reading; });
}

void BatchPrefetcher::wait() {
  if (!worker_.joinable()) return;
  std::unique_lock lock(mutex_);
  wait(lock);
}

BatchPrefetcher::Batch BatchPrefetcher::get(int64_t index) {
  if (worker_.joinable()) {
    std::unique_lock lock(mutex_);
    wait(lock);
    const bool prepared = state_ == State::ready && requested_ == index;
    state_ = State::idle;
    Batch batch = std::exchange(ready_, {});  // a batch prepared for another index is dropped
    if (prepared) {
      if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
      return batch;
    }
  }
  if (mode_ != Mode::automatic || timed_ >= 2) return data_.batch_lists(index);
  const auto start = std::chrono::steady_clock::now();
  Batch batch = data_.batch_lists(index);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  worthwhile_ = worthwhile_ && seconds >= kWorthwhile;
  ++timed_;
  return batch;
}

void BatchPrefetcher::begin_epoch(bool shuffle, std::mt19937_64& random) {
  {
    std::unique_lock lock(mutex_);
    wait(lock);
    state_ = State::idle;  // a batch prepared for the previous epoch's order is not this epoch's
  }
  data_.begin_epoch(shuffle, random);
}

}  // namespace lamina
