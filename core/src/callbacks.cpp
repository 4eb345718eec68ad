// Keras' callbacks, History files and the progress bar's text.
#include <lamina/callbacks.hpp>
#include <lamina/distributed.hpp>
#include <lamina/error.hpp>
#include <lamina/sdk/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

namespace lamina {

namespace {

// Shortest text that reads back as the same double (what Python's repr gives Keras' CSV files).
std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::vector<std::vector<Tensor>> all_weights(const Model& model) {
  std::vector<std::vector<Tensor>> out;
  for (size_t i = 0; i < model.size(); ++i) out.push_back(model.layer(i).get_weights());
  return out;
}

// Writes `text` to `path` through a temporary file beside it and a rename.
void write_atomically(const std::string& path, const std::string& text) {
  std::filesystem::path target(path);
  std::filesystem::path temp = target;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw Error("cannot write " + path + ": cannot create " + temp.string() + " (is the folder writable?)");
    out << text;
    out.flush();
    if (!out) {
      std::filesystem::remove(temp);
      throw Error("cannot write " + path + ": the write failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, target, ec);
  if (ec) {
    std::filesystem::remove(temp);
    throw Error("cannot write " + path + ": " + ec.message());
  }
}

// Keras' filepath placeholders: "{epoch:02d}", "{val_loss:.4f}", "{loss}".
std::string format_filepath(const std::string& pattern, int epoch,
                            const std::map<std::string, double>& logs) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '{') {
      out.push_back(pattern[i]);
      continue;
    }
    size_t close = pattern.find('}', i);
    if (close == std::string::npos)
      throw Error("ModelCheckpoint: filepath '" + pattern + "' has a '{' without its '}'");
    std::string field = pattern.substr(i + 1, close - i - 1), spec;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    char buf[128];
    if (field == "epoch") {
      std::string f = "%";
      f += spec.empty() ? std::string("d") : spec;
      if (f.back() != 'd')
        throw Error("ModelCheckpoint: '{epoch:" + spec + "}' must be an integer format such as 02d");
      std::snprintf(buf, sizeof buf, f.c_str(), epoch + 1);
    } else {
      auto it = logs.find(field);
      if (it == logs.end()) {
        std::string known = "epoch";
        for (auto& [k, v] : logs) known += ", " + k;
        throw Error("ModelCheckpoint: filepath '" + pattern + "' names '" + field +
                    "', which the logs do not have (they have: " + known + ")");
      }
      std::string f = "%";
      f += spec.empty() ? std::string("g") : spec;
      if (f.find_first_of("eEfFgG") != f.size() - 1)
        throw Error("ModelCheckpoint: '{" + field + ":" + spec +
                    "}' must be a floating-point format such as .4f");
      std::snprintf(buf, sizeof buf, f.c_str(), it->second);
    }
    out += buf;
    i = close;
  }
  return out;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Monitor

Monitor::Monitor(std::string name, const std::string& mode, double min_delta, const std::string& owner)
    : name_(std::move(name)), owner_(owner), min_delta_(std::fabs(min_delta)) {
  if (mode == "max")
    maximize_ = true;
  else if (mode == "min")
    maximize_ = false;
  else if (mode == "auto")
    maximize_ = name_.find("acc") != std::string::npos;
  else
    throw Error(owner + ": mode '" + mode + "' is not one of auto, min, max");
}

bool Monitor::improved(double current, double reference) const {
  if (std::isnan(current)) return false;
  return maximize_ ? current - min_delta_ > reference : current + min_delta_ < reference;
}

std::optional<double> Monitor::read(const std::map<std::string, double>& logs) const {
  auto it = logs.find(name_);
  if (it != logs.end()) return it->second;
  if (!warned_) {
    std::string known;
    for (auto& [k, v] : logs) known += (known.empty() ? "" : ", ") + k;
    std::cerr << "lamina: warning: " << owner_ << " monitors '" << name_
              << "', which is not logged (logged: " << known << ")"
              << (name_.rfind("val_", 0) == 0 ? "; give validation data to fit()" : "") << "\n";
    warned_ = true;
  }
  return std::nullopt;
}

// ------------------------------------------------------------------------------------------------
// ModelCheckpoint

ModelCheckpoint::ModelCheckpoint(std::string filepath, Options options)
    : filepath_(std::move(filepath)),
      options_(std::move(options)),
      monitor_(options_.monitor, options_.mode, 0.0, "ModelCheckpoint"),
      best_(monitor_.worst()) {
  if (filepath_.empty()) throw Error("ModelCheckpoint: filepath is empty");
}

void ModelCheckpoint::on_train_begin(Model&) {}

void ModelCheckpoint::on_epoch_end(Model& model, int epoch, const std::map<std::string, double>& logs) {
  if (!distributed::is_primary()) return;  // in a data-parallel job, rank 0 writes the checkpoints
  std::string path = format_filepath(filepath_, epoch, logs);
  if (options_.save_best_only) {
    std::optional<double> current = monitor_.read(logs);
    if (!current) return;
    if (!monitor_.improved(*current, best_)) {
      if (options_.verbose)
        std::cout << "\nEpoch " << epoch + 1 << ": " << monitor_.name() << " did not improve from "
                  << fixed(best_, 5) << "\n";
      return;
    }
    if (options_.verbose)
      std::cout << "\nEpoch " << epoch + 1 << ": " << monitor_.name() << " improved from " << fixed(best_, 5)
                << " to " << fixed(*current, 5) << ", saving model to " << path << "\n";
    best_ = *current;
  } else if (options_.verbose) {
    std::cout << "\nEpoch " << epoch + 1 << ": saving model to " << path << "\n";
  }
  if (options_.save_weights_only)
    model.save_weights(path);
  else
    model.save(path);
  best_epoch_ = epoch;
  saved_.push_back(path);
}

// ------------------------------------------------------------------------------------------------
// EarlyStopping

EarlyStopping::EarlyStopping(Options options)
    : options_(std::move(options)),
      monitor_(options_.monitor, options_.mode, options_.min_delta, "EarlyStopping") {
  if (options_.patience < 0) throw Error("EarlyStopping: patience must not be negative");
}

void EarlyStopping::on_train_begin(Model&) {
  wait_ = 0;
  stopped_epoch_ = -1;
  best_epoch_ = -1;
  best_ = monitor_.worst();
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(Model& model, int epoch, const std::map<std::string, double>& logs) {
  std::optional<double> current = monitor_.read(logs);
  if (!current || epoch < options_.start_from_epoch) return;
  if (options_.restore_best_weights && best_weights_.empty()) best_weights_ = all_weights(model);
  ++wait_;
  if (monitor_.improved(*current, best_)) {
    best_ = *current;
    best_epoch_ = epoch;
    if (options_.restore_best_weights) best_weights_ = all_weights(model);
    // Only restart the wait when the baseline is beaten too (Keras' rule).
    if (!options_.baseline || monitor_.improved(*current, *options_.baseline)) wait_ = 0;
    return;
  }
  if (wait_ >= options_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    model.stop_training = true;
    if (options_.restore_best_weights && !best_weights_.empty()) {
      if (options_.verbose)
        std::cout << "Restoring model weights from the end of the best epoch: " << best_epoch_ + 1 << ".\n";
      for (size_t i = 0; i < best_weights_.size(); ++i) model.layer(i).set_weights(best_weights_[i]);
    }
  }
}

void EarlyStopping::on_train_end(Model&) {
  if (stopped_epoch_ >= 0 && options_.verbose)
    std::cout << "Epoch " << stopped_epoch_ + 1 << ": early stopping\n";
  best_weights_.clear();
}

// ------------------------------------------------------------------------------------------------
// CSVLogger

struct CSVLogger::File {
  std::ofstream out;
};

CSVLogger::CSVLogger(std::string filename, std::string separator, bool append)
    : filename_(std::move(filename)), separator_(std::move(separator)), append_(append) {
  if (filename_.empty()) throw Error("CSVLogger: filename is empty");
}
CSVLogger::~CSVLogger() = default;

void CSVLogger::on_train_begin(Model&) {
  if (!distributed::is_primary()) return;  // in a data-parallel job, rank 0 writes the log
  bool had_rows = append_ && std::filesystem::exists(filename_) && std::filesystem::file_size(filename_) > 0;
  file_ = std::make_unique<File>();
  file_->out.open(filename_, append_ ? std::ios::app : std::ios::trunc);
  if (!file_->out) throw Error("CSVLogger: cannot write " + filename_ + " (does its folder exist?)");
  keys_.clear();
  if (had_rows) {  // keep the columns the file already has
    std::ifstream in(filename_);
    std::string header;
    std::getline(in, header);
    size_t start = 0;
    while (start <= header.size()) {
      size_t end = header.find(separator_, start);
      std::string key = header.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (!key.empty() && key != "epoch") keys_.push_back(key);
      if (end == std::string::npos) break;
      start = end + separator_.size();
    }
  }
}

void CSVLogger::on_epoch_end(Model&, int epoch, const std::map<std::string, double>& logs) {
  if (!file_) return;
  if (keys_.empty()) {
    for (auto& [k, v] : logs) keys_.push_back(k);  // std::map: sorted, as Keras sorts them
    file_->out << "epoch";
    for (auto& k : keys_) file_->out << separator_ << k;
    file_->out << "\n";
  }
  file_->out << epoch;
  for (auto& k : keys_) {
    auto it = logs.find(k);
    file_->out << separator_ << (it == logs.end() ? std::string("NA") : number_text(it->second));
  }
  file_->out << "\n" << std::flush;
  if (!file_->out) throw Error("CSVLogger: writing " + filename_ + " failed (disk full?)");
}

void CSVLogger::on_train_end(Model&) {
  file_.reset();
}

// ------------------------------------------------------------------------------------------------
// TerminateOnNaN

void TerminateOnNaN::on_batch_end(Model& model, int64_t batch,
                                  const std::map<std::string, double>& logs) {
  auto it = logs.find("loss");
  if (it == logs.end() || std::isfinite(it->second)) return;
  std::cout << "\nBatch " << batch << ": Invalid loss, terminating training\n";
  model.stop_training = true;
  terminated_ = true;
}

// ------------------------------------------------------------------------------------------------
// LearningRateScheduler

LearningRateScheduler::LearningRateScheduler(Schedule schedule, int verbose)
    : schedule_(std::move(schedule)), verbose_(verbose) {
  if (!schedule_) throw Error("LearningRateScheduler: the schedule is empty");
}

void LearningRateScheduler::on_epoch_begin(Model& model, int epoch) {
  double lr = schedule_(epoch, model.learning_rate());
  if (!std::isfinite(lr) || lr < 0)
    throw Error("LearningRateScheduler: the schedule gave learning rate " + number_text(lr) + " for epoch " +
                std::to_string(epoch + 1) + "; it must be a finite number >= 0");
  model.set_learning_rate(lr);
  if (verbose_)
    std::cout << "\nEpoch " << epoch + 1 << ": LearningRateScheduler setting learning rate to "
              << number_text(lr) << ".\n";
}

// ------------------------------------------------------------------------------------------------
// ReduceLROnPlateau

ReduceLROnPlateau::ReduceLROnPlateau(Options options)
    : options_(std::move(options)),
      monitor_(options_.monitor, options_.mode, options_.min_delta, "ReduceLROnPlateau") {
  if (!(options_.factor < 1.0) || !(options_.factor >= 0.0))
    throw Error("ReduceLROnPlateau: factor must be in [0, 1), got " + number_text(options_.factor));
}

void ReduceLROnPlateau::on_train_begin(Model&) {
  best_ = monitor_.worst();
  wait_ = 0;
  cooldown_counter_ = 0;
}

void ReduceLROnPlateau::on_epoch_end(Model& model, int epoch,
                                     const std::map<std::string, double>& logs) {
  std::optional<double> current = monitor_.read(logs);
  if (!current) return;
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    wait_ = 0;
  }
  if (monitor_.improved(*current, best_)) {
    best_ = *current;
    wait_ = 0;
    return;
  }
  if (cooldown_counter_ > 0) return;
  if (++wait_ < options_.patience) return;
  double old_lr = model.learning_rate();
  if (old_lr > options_.min_lr) {
    double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
    model.set_learning_rate(new_lr);
    if (options_.verbose)
      std::cout << "\nEpoch " << epoch + 1 << ": ReduceLROnPlateau reducing learning rate to "
                << number_text(new_lr) << ".\n";
    cooldown_counter_ = options_.cooldown;
    wait_ = 0;
  }
}

// ------------------------------------------------------------------------------------------------
// Callbacks from config

namespace {

using boost::json::object;
using boost::json::value;

struct ConfigReader {
  const object& config;
  std::string where;
  std::set<std::string> used;

  const value* find(const char* key) {
    used.insert(key);
    const value* v = config.if_contains(key);
    return v && !v->is_null() ? v : nullptr;
  }
  double number(const char* key, double fallback) {
    const value* v = find(key);
    if (!v) return fallback;
    if (!v->is_number()) throw Error(where + ": '" + key + "' must be a number");
    return v->to_number<double>();
  }
  int integer(const char* key, int fallback) {
    double d = number(key, fallback);
    if (d != std::floor(d)) throw Error(where + ": '" + key + "' must be a whole number");
    return int(d);
  }
  bool boolean(const char* key, bool fallback) {
    const value* v = find(key);
    if (!v) return fallback;
    if (!v->is_bool()) throw Error(where + ": '" + key + "' must be true or false");
    return v->as_bool();
  }
  std::string text(const char* key, const std::string& fallback) {
    const value* v = find(key);
    if (!v) return fallback;
    if (!v->is_string()) throw Error(where + ": '" + key + "' must be a string");
    return std::string(v->as_string());
  }
  void finish() {
    for (auto& [k, v] : config)
      if (!used.count(std::string(k))) {
        std::string known;
        for (auto& u : used) known += (known.empty() ? "" : ", ") + u;
        throw Error(where + ": unknown key '" + std::string(k) + "' (known: " + known + ")");
      }
  }
};

}  // namespace

std::shared_ptr<Callback> callback_from_config(const boost::json::value& spec, const std::string& where_in) {
  if (!spec.is_object() || !spec.as_object().contains("class_name") ||
      !spec.as_object().at("class_name").is_string())
    throw Error(where_in + ": a callback must be {\"class_name\": \"EarlyStopping\", \"config\": {...}}");
  const object& o = spec.as_object();
  for (auto& [k, v] : o)
    if (k != "class_name" && k != "config")
      throw Error(where_in + ": unknown key '" + std::string(k) + "' (known: class_name, config)");
  std::string cls(o.at("class_name").as_string());
  static const object empty;
  const value* cfg = o.if_contains("config");
  if (cfg && !cfg->is_object() && !cfg->is_null())
    throw Error(where_in + " " + cls + ": 'config' must be an object");
  ConfigReader r{cfg && cfg->is_object() ? cfg->as_object() : empty, where_in + " " + cls, {}};
  std::shared_ptr<Callback> out;
  if (cls == "ModelCheckpoint") {
    std::string path = r.text("filepath", "");
    if (path.empty()) throw Error(r.where + ": 'filepath' is required, e.g. \"best.h5\"");
    ModelCheckpoint::Options opt;
    opt.monitor = r.text("monitor", opt.monitor);
    opt.save_best_only = r.boolean("save_best_only", opt.save_best_only);
    opt.save_weights_only = r.boolean("save_weights_only", opt.save_weights_only);
    opt.mode = r.text("mode", opt.mode);
    opt.verbose = r.integer("verbose", opt.verbose);
    if (r.text("save_freq", "epoch") != "epoch")
      throw Error(r.where + ": only save_freq \"epoch\" is supported");
    out = std::make_shared<ModelCheckpoint>(path, opt);
  } else if (cls == "EarlyStopping") {
    EarlyStopping::Options opt;
    opt.monitor = r.text("monitor", opt.monitor);
    opt.min_delta = r.number("min_delta", opt.min_delta);
    opt.patience = r.integer("patience", opt.patience);
    opt.verbose = r.integer("verbose", opt.verbose);
    opt.mode = r.text("mode", opt.mode);
    if (r.find("baseline")) opt.baseline = r.number("baseline", 0);
    opt.restore_best_weights = r.boolean("restore_best_weights", opt.restore_best_weights);
    opt.start_from_epoch = r.integer("start_from_epoch", opt.start_from_epoch);
    out = std::make_shared<EarlyStopping>(opt);
  } else if (cls == "CSVLogger") {
    std::string file = r.text("filename", "");
    if (file.empty()) throw Error(r.where + ": 'filename' is required, e.g. \"training.csv\"");
    std::string separator = r.text("separator", ",");
    bool append = r.boolean("append", false);
    out = std::make_shared<CSVLogger>(file, separator, append);
  } else if (cls == "TerminateOnNaN") {
    out = std::make_shared<TerminateOnNaN>();
  } else if (cls == "LearningRateScheduler") {
    int verbose = r.integer("verbose", 0);
    const value* schedule = r.find("schedule");
    bool has_factor = r.find("factor") != nullptr;
    if (schedule && has_factor) throw Error(r.where + ": give either 'schedule' or 'factor', not both");
    if (schedule) {
      if (!schedule->is_array() || schedule->as_array().empty())
        throw Error(r.where + ": 'schedule' must be a non-empty list of learning rates, one per epoch");
      std::vector<double> rates;
      for (auto& v : schedule->as_array()) {
        if (!v.is_number()) throw Error(r.where + ": 'schedule' must hold numbers only");
        rates.push_back(v.to_number<double>());
      }
      out = std::make_shared<LearningRateScheduler>(
          [rates](int epoch, double) { return rates[std::min<size_t>(size_t(epoch), rates.size() - 1)]; },
          verbose);
    } else if (has_factor) {
      double factor = r.number("factor", 1.0);
      int every = r.integer("every", 1);
      if (every < 1) throw Error(r.where + ": 'every' must be at least 1");
      out = std::make_shared<LearningRateScheduler>(
          [factor, every](int epoch, double lr) {
            return epoch > 0 && epoch % every == 0 ? lr * factor : lr;
          },
          verbose);
    } else {
      throw Error(r.where + ": give 'schedule' (a learning rate per epoch) or 'factor' (with 'every')");
    }
  } else if (cls == "ReduceLROnPlateau") {
    ReduceLROnPlateau::Options opt;
    opt.monitor = r.text("monitor", opt.monitor);
    opt.factor = r.number("factor", opt.factor);
    opt.patience = r.integer("patience", opt.patience);
    opt.verbose = r.integer("verbose", opt.verbose);
    opt.mode = r.text("mode", opt.mode);
    opt.min_delta = r.number("min_delta", opt.min_delta);
    opt.cooldown = r.integer("cooldown", opt.cooldown);
    opt.min_lr = r.number("min_lr", opt.min_lr);
    out = std::make_shared<ReduceLROnPlateau>(opt);
  } else {
    throw Error(where_in + ": unknown callback '" + cls +
                "' (known: ModelCheckpoint, EarlyStopping, CSVLogger, TerminateOnNaN, LearningRateScheduler, "
                "ReduceLROnPlateau)");
  }
  r.finish();
  return out;
}

// ------------------------------------------------------------------------------------------------
// History files

void write_history(const History& h, const std::string& path) {
  std::string lower_path = path;
  std::transform(lower_path.begin(), lower_path.end(), lower_path.begin(), ::tolower);
  std::ostringstream out;
  size_t rows = h.epoch.size();
  if (lower_path.size() >= 5 && lower_path.compare(lower_path.size() - 5, 5, ".json") == 0) {
    out << "{\"epoch\": [";
    for (size_t i = 0; i < rows; ++i) out << (i ? ", " : "") << h.epoch[i];
    out << "]";
    for (auto& [k, values] : h.history) {
      out << ", " << boost::json::serialize(boost::json::value(k)) << ": [";
      for (size_t i = 0; i < values.size(); ++i)
        out << (i ? ", " : "") << (std::isfinite(values[i]) ? sdk::json_number_text(values[i]) : "null");
      out << "]";
    }
    out << "}\n";
  } else {
    out << "epoch";
    for (auto& [k, v] : h.history) out << "," << k;
    out << "\n";
    for (size_t i = 0; i < rows; ++i) {
      out << h.epoch[i];
      for (auto& [k, v] : h.history) out << "," << (i < v.size() ? number_text(v[i]) : "NA");
      out << "\n";
    }
  }
  write_atomically(path, out.str());
}

namespace {

double parse_number(const std::string& cell, const std::string& where) {
  std::string t = cell;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.erase(t.begin());
  std::string l = t;
  std::transform(l.begin(), l.end(), l.begin(), ::tolower);
  if (l == "nan" || l == "na" || l.empty()) return std::nan("");
  if (l == "inf") return std::numeric_limits<double>::infinity();
  if (l == "-inf") return -std::numeric_limits<double>::infinity();
  double v = 0;
  auto r = std::from_chars(t.data(), t.data() + t.size(), v);
  if (r.ec != std::errc() || r.ptr != t.data() + t.size())
    throw Error(where + ": '" + cell + "' is not a number");
  return v;
}

}  // namespace

History read_history(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error("cannot read " + path + (std::filesystem::exists(path) ? "" : ": the file does not exist"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  History h;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    boost::system::error_code ec;
    value root = boost::json::parse(text, ec);
    if (ec || !root.is_object()) throw Error(path + ": not a JSON object of lists (" + ec.message() + ")");
    size_t rows = 0;
    for (auto& [k, v] : root.as_object()) {
      if (!v.is_array()) throw Error(path + ": '" + std::string(k) + "' must be a list of numbers");
      std::vector<double> values;
      for (auto& x : v.as_array()) {
        if (x.is_null())
          values.push_back(std::nan(""));
        else if (x.is_number())
          values.push_back(x.to_number<double>());
        else
          throw Error(path + ": '" + std::string(k) + "' holds something that is not a number");
      }
      rows = std::max(rows, values.size());
      if (k == "epoch")
        for (double e : values) h.epoch.push_back(int(e));
      else
        h.history[std::string(k)] = std::move(values);
    }
    if (h.epoch.empty())
      for (size_t i = 0; i < rows; ++i) h.epoch.push_back(int(i));
    return h;
  }
  std::istringstream lines(text);
  std::string line;
  std::vector<std::string> columns;
  int line_number = 0;
  auto split = [](const std::string& s) {
    std::vector<std::string> cells;
    std::string sep = s.find(',') != std::string::npos ? "," : s.find(';') != std::string::npos ? ";" : "\t";
    size_t start = 0;
    while (true) {
      size_t end = s.find(sep, start);
      cells.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
      if (end == std::string::npos) break;
      start = end + sep.size();
    }
    for (auto& c : cells)
      while (!c.empty() && (c.back() == '\r' || c.back() == ' ')) c.pop_back();
    return cells;
  };
  while (std::getline(lines, line)) {
    ++line_number;
    if (line.empty() || line == "\r") continue;
    std::vector<std::string> cells = split(line);
    if (columns.empty()) {
      columns = cells;
      continue;
    }
    if (cells.size() != columns.size())
      throw Error(path + ":" + std::to_string(line_number) + ": " + std::to_string(cells.size()) +
                  " columns, but the header has " + std::to_string(columns.size()));
    for (size_t c = 0; c < cells.size(); ++c) {
      double v =
          parse_number(cells[c], path + ":" + std::to_string(line_number) + ", column '" + columns[c] + "'");
      if (columns[c] == "epoch")
        h.epoch.push_back(int(v));
      else
        h.history[columns[c]].push_back(v);
    }
  }
  if (columns.empty())
    throw Error(path + ": the file is empty; a history CSV starts with a header such as epoch,loss");
  if (h.epoch.empty()) {
    size_t rows = h.history.empty() ? 0 : h.history.begin()->second.size();
    for (size_t i = 0; i < rows; ++i) h.epoch.push_back(int(i));
  }
  return h;
}

// ------------------------------------------------------------------------------------------------
// Progress text

namespace progress {

std::string format_eta(double seconds) {
  long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s % 3600) / 60, s % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

namespace {

std::string counter(int64_t seen, int64_t total) {
  std::string t = std::to_string(total), s = std::to_string(seen);
  return std::string(t.size() - std::min(t.size(), s.size()), ' ') + s + "/" + t;
}

std::string bar(int64_t seen, int64_t total) {
  const int width = 30;
  int done = total > 0 ? std::min(width, int(double(width) * double(seen) / double(total))) : width;
  std::string b(size_t(width) + 2, '.');
  b.front() = '[';
  b.back() = ']';
  for (int i = 0; i < done; ++i) b[size_t(i) + 1] = '=';
  if (seen < total) b[size_t(std::max(done, 1))] = '>';  // Keras: the head replaces the last '='
  return b;
}

std::string throughput(int64_t samples, double seconds) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.0f samples/s", seconds > 0 ? double(samples) / seconds : 0.0);
  return buf;
}

}  // namespace

std::string bar_line(int64_t seen, int64_t total, double elapsed, const std::string& logs) {
  double eta = seen > 0 ? elapsed * double(total - seen) / double(seen) : 0.0;
  return counter(seen, total) + " " + bar(seen, total) + " - ETA: " + format_eta(eta) + " - " +
         throughput(seen, elapsed) + logs;
}

std::string epoch_line(int64_t total, double elapsed, double train_seconds, const std::string& logs,
                       bool with_bar) {
  char head[48];
  std::snprintf(head, sizeof head, " - %.1fs - ", elapsed);
  std::string line = counter(total, total);
  if (with_bar) {
    line += ' ';
    line += bar(total, total);
  }
  return line + head + throughput(total, train_seconds) + logs;
}

}  // namespace progress

}  // namespace lamina
