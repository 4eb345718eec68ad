// Keras' callbacks (ModelCheckpoint, EarlyStopping, CSVLogger, TerminateOnNaN,
// LearningRateScheduler, ReduceLROnPlateau), History files, and the progress bar's text.
//
//   auto stop = std::make_shared<EarlyStopping>(EarlyStopping::Options{.patience = 2});
//   auto best = std::make_shared<ModelCheckpoint>("best.h5", ModelCheckpoint::Options{.save_best_only =
//   true}); History h = model.fit(x, y, {.epochs = 50, .validation_data = ..., .callbacks = {stop, best}});
//   write_history(h, "history.csv");
#pragma once

#include <lamina/model.hpp>

#include <boost/json.hpp>

#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lamina {

// What a monitored quantity is compared by, as Keras' `mode`: "min", "max", or "auto" (max for
// names that contain "acc", such as val_accuracy; min otherwise).
class Monitor {
 public:
  Monitor(std::string name, const std::string& mode, double min_delta, const std::string& owner);
  const std::string& name() const { return name_; }
  bool maximize() const { return maximize_; }
  // Whether `current` beats `reference` by more than min_delta in the right direction.
  bool improved(double current, double reference) const;
  // The value of the quantity in `logs`, or nothing (with a warning printed once) when absent.
  std::optional<double> read(const std::map<std::string, double>& logs) const;
  double worst() const {
    return maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }

 private:
  std::string name_, owner_;
  bool maximize_ = false;
  double min_delta_ = 0;
  mutable bool warned_ = false;
};

// The options of ModelCheckpoint, as Keras names them.
struct ModelCheckpointOptions {
  std::string monitor = "val_loss";
  bool save_best_only = false;
  bool save_weights_only = false;
  std::string mode = "auto";
  int verbose = 0;
};

// Saves the model (Model::save, atomic) or its weights after each epoch, or only when the
// monitored quantity improved (save_best_only). `filepath` may hold Keras' placeholders:
// "ckpt-{epoch:02d}-{val_loss:.4f}.h5" (epoch counts from 1 there, as in Keras).
class ModelCheckpoint : public Callback {
 public:
  using Options = ModelCheckpointOptions;
  explicit ModelCheckpoint(std::string filepath, Options options = {});
  void on_train_begin(Model&) override;
  void on_epoch_end(Model& model, int epoch, const std::map<std::string, double>& logs) override;
  double best() const { return best_; }
  int best_epoch() const { return best_epoch_; }                    // 0-based; -1 before any save
  const std::vector<std::string>& saved() const { return saved_; }  // paths written, in order

 private:
  std::string filepath_;
  Options options_;
  Monitor monitor_;
  double best_;
  int best_epoch_ = -1;
  std::vector<std::string> saved_;
};

// The options of EarlyStopping, as Keras names them.
struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0.0;
  int patience = 0;
  int verbose = 0;
  std::string mode = "auto";
  std::optional<double> baseline;
  bool restore_best_weights = false;
  int start_from_epoch = 0;
};

// Stops training when the monitored quantity has not improved for `patience` epochs; with
// restore_best_weights the model gets the weights of its best epoch back when it stops.
class EarlyStopping : public Callback {
 public:
  using Options = EarlyStoppingOptions;
  explicit EarlyStopping(Options options = {});
  void on_train_begin(Model&) override;
  void on_epoch_end(Model& model, int epoch, const std::map<std::string, double>& logs) override;
  void on_train_end(Model&) override;
  int stopped_epoch() const { return stopped_epoch_; }  // 0-based; -1 when it did not stop training
  int best_epoch() const { return best_epoch_; }        // 0-based; -1 when nothing was monitored
  double best() const { return best_; }

 private:
  Options options_;
  Monitor monitor_;
  int wait_ = 0, stopped_epoch_ = -1, best_epoch_ = -1;
  double best_ = 0;
  std::vector<std::vector<Tensor>> best_weights_;
};

// Appends one row per epoch to a CSV file: "epoch,accuracy,loss,val_accuracy,val_loss" (keys in
// sorted order, epoch from 0), flushed after every epoch so a crashed run keeps its log.
class CSVLogger : public Callback {
 public:
  explicit CSVLogger(std::string filename, std::string separator = ",", bool append = false);
  ~CSVLogger() override;
  void on_train_begin(Model&) override;
  void on_epoch_end(Model& model, int epoch, const std::map<std::string, double>& logs) override;
  void on_train_end(Model&) override;

 private:
  struct File;
  std::string filename_, separator_;
  bool append_;
  std::vector<std::string> keys_;
  std::unique_ptr<File> file_;
};

// Stops training at the first batch whose loss is NaN or infinite (instead of the error fit()
// raises without it); the epoch's logged loss is then NaN.
class TerminateOnNaN : public Callback {
 public:
  void on_batch_end(Model& model, int64_t batch, const std::map<std::string, double>& logs) override;
  bool terminated() const { return terminated_; }

 private:
  bool terminated_ = false;
};

// Sets the learning rate at the start of each epoch to schedule(epoch, current_lr) (epoch from 0).
class LearningRateScheduler : public Callback {
 public:
  using Schedule = std::function<double(int epoch, double learning_rate)>;
  explicit LearningRateScheduler(Schedule schedule, int verbose = 0);
  void on_epoch_begin(Model& model, int epoch) override;

 private:
  Schedule schedule_;
  int verbose_;
};

// The options of ReduceLROnPlateau, as Keras names them.
struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  double factor = 0.1;
  int patience = 10;
  int verbose = 0;
  std::string mode = "auto";
  double min_delta = 1e-4;
  int cooldown = 0;
  double min_lr = 0.0;
};

// Multiplies the learning rate by `factor` when the monitored quantity has not improved for
// `patience` epochs, waits `cooldown` epochs before watching again, never goes below min_lr.
class ReduceLROnPlateau : public Callback {
 public:
  using Options = ReduceLROnPlateauOptions;
  explicit ReduceLROnPlateau(Options options = {});
  void on_train_begin(Model&) override;
  void on_epoch_end(Model& model, int epoch, const std::map<std::string, double>& logs) override;

 private:
  Options options_;
  Monitor monitor_;
  double best_ = 0;
  int wait_ = 0, cooldown_counter_ = 0;
};

// A callback from Keras-like config: {"class_name": "EarlyStopping", "config": {"patience": 2}}.
// Unknown classes and keys are errors naming `where` and the key. LearningRateScheduler takes
// {"schedule": [lr for epoch 1, lr for epoch 2, ...]} (the last value holds after the list) or
// {"factor": f, "every": n} (multiply the rate by f every n epochs).
std::shared_ptr<Callback> callback_from_config(const boost::json::value& spec, const std::string& where);

// History files: CSV as CSVLogger writes it (a ".json" name gives {"epoch": [...], "loss": [...]}).
// The write is atomic (a temporary file beside `path`, then a rename).
void write_history(const History& history, const std::string& path);
// Reads either format back; errors name the file, line and column.
History read_history(const std::string& path);

// The progress display's text, as Keras draws it.
namespace progress {
// "1m02s"-style time as Keras prints an ETA: "7s", "1:02", "1:02:03".
std::string format_eta(double seconds);
// One frame of the live bar: " 1920/60000 [>.............................] - ETA: 1:02 -
// 1923 samples/s - loss: 0.5012 - accuracy: 0.8231" (elapsed: seconds since the epoch began).
std::string bar_line(int64_t seen, int64_t total, double elapsed_seconds, const std::string& logs);
// The closing line of an epoch: "60000/60000 [====...] - 31.2s - 1923 samples/s - loss: ..."
// (without the bar when `with_bar` is false: one line per epoch in logs and pipes).
std::string epoch_line(int64_t total, double elapsed_seconds, double train_seconds, const std::string& logs,
                       bool with_bar);
}  // namespace progress

}  // namespace lamina
