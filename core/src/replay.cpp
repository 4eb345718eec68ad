// Replay of training steps (replay.hpp).
#include "replay.hpp"

#include "attributes.hpp"
#include "backend_entry.hpp"
#include "host_table.hpp"
#include "op_registry.hpp"
#include "profiler.hpp"
#include "tensor_impl.hpp"

#include <lamina/error.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <utility>

namespace lamina {

namespace {

std::atomic<int64_t> g_replayed{0};
std::atomic<int64_t> g_graphs{0};  // replayed steps launched as a graph

// Where a kernel's input comes from, comparable between two recordings of a step.
struct Source {
  enum Kind { batch_x, batch_y, produced, external } kind = external;
  size_t launch = 0, output = 0;  // produced: by output `output` of launch `launch`
  const void* data = nullptr;     // external: the buffer itself (a parameter, a constant)
  size_t offset = 0;
  bool operator==(const Source&) const = default;
};

struct Launch {
  const OpDef* op = nullptr;
  BackendEntry* backend = nullptr;
  lamina_kernel_fn kernel = nullptr;
  std::vector<lamina_view> inputs, outputs;
  std::vector<Source> sources;  // one per input
  Attributes attrs;             // owns the names and texts c_attrs points to
  std::vector<lamina_attr> c_attrs;
  lamina_attrs c_view{};
};

bool same_view_shape(const lamina_view& a, const lamina_view& b) {
  if (a.ndim != b.ndim || a.dtype != b.dtype) return false;
  for (int32_t d = 0; d < a.ndim; ++d)
    if (a.shape[d] != b.shape[d]) return false;
  return true;
}

bool same_attr(const lamina_attr& a, const lamina_attr& b) {
  if (std::strcmp(a.name, b.name) != 0 || a.type != b.type || a.count != b.count || a.real != b.real)
    return false;
  for (int32_t i = 0; i < a.count && i < LAMINA_MAX_DIMS; ++i)
    if (a.ints[i] != b.ints[i]) return false;
  return std::strcmp(a.text ? a.text : "", b.text ? b.text : "") == 0;
}

std::pair<const void*, size_t> location(const lamina_view& v) {
  return {v.data, size_t(v.offset)};
}

}  // namespace

class StepRecording final : public LaunchRecorder {
 public:
  StepRecording(const Tensor& x, const Tensor& y)
      : x_shape_(x.shape()), y_shape_(y.shape()), x_memory_(memory_of(x)), y_memory_(memory_of(y)) {
    x_at_ = location(view_of(x));
    y_at_ = location(view_of(y));
  }

  void launched(const OpDef& op, BackendEntry& backend, const lamina_view* in, size_t n_in,
                const lamina_view* out, size_t n_out, const Attributes& attrs, const char* extra_name,
                int64_t extra_value, const std::vector<Tensor>& input_tensors,
                const std::vector<Tensor>& output_tensors) override {
    if (spoiled_) return;
    auto l = std::make_unique<Launch>();
    l->op = &op;
    l->backend = &backend;
    l->kernel = backend.kernels[size_t(op.id)];
    l->inputs.assign(in, in + n_in);
    l->outputs.assign(out, out + n_out);
    for (size_t i = 0; i < n_in; ++i) {
      Source s;
      auto at = location(in[i]);
      if (at == x_at_) {
        s.kind = Source::batch_x;
      } else if (at == y_at_) {
        s.kind = Source::batch_y;
      } else if (auto p = produced_.find(at); p != produced_.end()) {
        s.kind = Source::produced;
        s.launch = p->second.first;
        s.output = p->second.second;
      } else {
        s.data = at.first;
        s.offset = at.second;
      }
      l->sources.push_back(s);
    }
    for (size_t j = 0; j < n_out; ++j) produced_[location(out[j])] = {launches_.size(), j};
    l->attrs = attrs;
    l->c_attrs.resize(attrs.size() + 1);
    l->c_view = {int32_t(to_c_attrs(l->attrs, extra_name, extra_value, l->c_attrs.data())),
                 l->c_attrs.data()};
    // Every operand but the batch stays alive (and unshared) for as long as the recording may be
    // replayed; the step's own results count against the limit (parameters live on anyway).
    for (const auto* list : {&input_tensors, &output_tensors})
      for (const Tensor& t : *list) {
        const auto at = location(view_of(t));
        if (at == x_at_ || at == y_at_) continue;
        const std::shared_ptr<Buffer>& b = t.impl()->buffer;
        if (buffers_.insert(b).second && list == &output_tensors) bytes_ += b->bytes;
      }
    launches_.push_back(std::move(l));
    // keeping its results would cost too much memory
    if (bytes_ > (x_memory_ ? StepReplay::kMaxDeviceBytes : StepReplay::kMaxBytes)) spoil();
  }

  void spoil() override {
    if (spoiled_) return;
    spoiled_ = true;
    launches_.clear();
    buffers_.clear();
    produced_.clear();
  }
  bool spoiled() const { return spoiled_; }

  // The same kernels, shapes, attributes and operand sources as `other`.
  bool matches(const StepRecording& other) const {
    if (spoiled_ || other.spoiled_ || launches_.size() != other.launches_.size()) return false;
    if (x_shape_ != other.x_shape_ || y_shape_ != other.y_shape_) return false;
    for (size_t k = 0; k < launches_.size(); ++k) {
      const Launch &a = *launches_[k], &b = *other.launches_[k];
      if (a.op != b.op || a.kernel != b.kernel || a.inputs.size() != b.inputs.size() ||
          a.outputs.size() != b.outputs.size() || a.sources != b.sources || a.c_view.count != b.c_view.count)
        return false;
      for (size_t i = 0; i < a.inputs.size(); ++i)
        if (!same_view_shape(a.inputs[i], b.inputs[i])) return false;
      for (size_t j = 0; j < a.outputs.size(); ++j)
        if (!same_view_shape(a.outputs[j], b.outputs[j])) return false;
      for (int32_t i = 0; i < a.c_view.count; ++i)
        if (!same_attr(a.c_view.items[i], b.c_view.items[i])) return false;
    }
    return true;
  }

  // A batch of the recorded shapes in the recorded batch's memory (host, or the device's).
  bool fits(const Tensor& x, const Tensor& y) const {
    return memory_of(x) == x_memory_ && memory_of(y) == y_memory_ && x.shape() == x_shape_ &&
           y.shape() == y_shape_;
  }

  ~StepRecording() {
    if (graph_) graph_backend_->table.release_graph(graph_backend_->table.self, graph_);
  }

  // The kernels that read the batch read this step's x and y (which may be views of the caller's
  // data set: they are read, never written).
  void run(const Tensor& x, const Tensor& y) {
    if (graph_state_ != GraphState::refused && wants_graph()) {
      run_as_graph(x, y);
      return;
    }
    read_batch_from(view_of(x), view_of(y));
    call_kernels();
  }

  bool replays_as_graph() const { return graph_state_ == GraphState::captured; }

 private:
  enum class GraphState { untried, captured, refused };

  void read_batch_from(const lamina_view& vx, const lamina_view& vy) {
    for (const auto& l : launches_)
      for (size_t i = 0; i < l->sources.size(); ++i) {
        const Source::Kind kind = l->sources[i].kind;
        if (kind != Source::batch_x && kind != Source::batch_y) continue;
        const lamina_view& v = kind == Source::batch_x ? vx : vy;
        l->inputs[i].data = v.data;
        l->inputs[i].offset = v.offset;
      }
  }

  // A graph when every launch runs on one backend that records graphs, graphs are not turned off
  // (LAMINA_STEP_GRAPHS=0) and no profile wants each kernel's time.
  bool wants_graph() {
    if (graph_state_ == GraphState::untried && !graph_backend_) {
      BackendEntry* backend = launches_.empty() ? nullptr : launches_.front()->backend;
      for (const auto& l : launches_)
        if (l->backend != backend) backend = nullptr;
      const char* env = std::getenv("LAMINA_STEP_GRAPHS");
      if (!backend || !backend->table.capture_begin || (env && std::string(env) == "0")) {
        graph_state_ = GraphState::refused;
        return false;
      }
      graph_backend_ = backend;
    }
    return !profiling();
  }

  // The graph's kernels read the batch from buffers of their own, which each step's batch is copied
  // into first (a launch of the backend's copy kernel): a graph repeats its kernels on the buffers
  // they were captured with. The first call captures the graph; when the backend cannot record the
  // step, the kernels run one by one from then on.
  void run_as_graph(const Tensor& x, const Tensor& y) {
    const lamina_backend& table = graph_backend_->table;
    if (!x_fixed_.defined()) {
      x_fixed_ = make_tensor(x.shape(), graph_backend_);
      y_fixed_ = make_tensor(y.shape(), graph_backend_);
      read_batch_from(view_of(x_fixed_), view_of(y_fixed_));
    }
    assign(x_fixed_, x);
    assign(y_fixed_, y);
    if (graph_state_ == GraphState::untried) {
      ErrorSlot error;
      std::string why;
      if (table.capture_begin(table.self, &error) != LAMINA_OK) {
        why = error.message;
      } else {
        try {
          call_kernels();
        } catch (const std::exception& e) {
          why = e.what();
        }
        ErrorSlot end_error;
        void* graph = table.capture_end(table.self, &end_error);
        if (graph && why.empty()) {
          graph_ = graph;
        } else {
          if (graph) table.release_graph(table.self, graph);
          if (why.empty()) why = end_error.message;
        }
      }
      graph_state_ = graph_ ? GraphState::captured : GraphState::refused;
      if (!graph_) {  // the step runs kernel by kernel, as without graphs
        host_log(1, ("replayed steps run kernel by kernel on backend '" + graph_backend_->name +
                     "': it could not record the step as a graph: " + why)
                        .c_str());
        call_kernels();
        return;
      }
    }
    if (graph_state_ == GraphState::refused) {
      call_kernels();
      return;
    }
    ErrorSlot error;
    if (table.launch_graph(table.self, graph_, &error) != LAMINA_OK)
      throw Error("backend '" + graph_backend_->name +
                  "' failed to launch a replayed training step's graph: " + error.message);
  }

  void call_kernels() {
    const bool timed = profiling();
    for (const auto& l : launches_) {
      auto start = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
      ErrorSlot error;
      if (l->kernel(l->backend->table.self, l->inputs.data(), int32_t(l->inputs.size()), l->outputs.data(),
                    int32_t(l->outputs.size()), &l->c_view, &error) != LAMINA_OK)
        throw Error("op '" + l->op->name + "' failed on backend '" + l->backend->name +
                    "' (replaying a training step): " + error.message);
      if (timed)
        profile_record(l->backend->name + " " + l->op->name,
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }

  // The backend whose memory holds a tensor; null for host memory any host backend reads.
  static const BackendEntry* memory_of(const Tensor& t) {
    return t.is_host() ? nullptr : t.impl()->buffer->backend;
  }

  Shape x_shape_, y_shape_;  // of the batch the recorded step read
  const BackendEntry *x_memory_, *y_memory_;
  std::pair<const void*, size_t> x_at_, y_at_;
  std::vector<std::unique_ptr<Launch>> launches_;
  std::map<std::pair<const void*, size_t>, std::pair<size_t, size_t>> produced_;
  std::set<std::shared_ptr<Buffer>> buffers_;
  size_t bytes_ = 0;
  bool spoiled_ = false;
  // Replay as a graph (lamina_backend's capture functions).
  GraphState graph_state_ = GraphState::untried;
  BackendEntry* graph_backend_ = nullptr;
  void* graph_ = nullptr;
  Tensor x_fixed_, y_fixed_;  // the batch the graph's kernels read
};

RecordingScope::RecordingScope(StepRecording* recording) : previous_(set_active_recorder(recording)) {}
RecordingScope::~RecordingScope() {
  set_active_recorder(previous_);
}

void RecordingDeleter::operator()(StepRecording* r) const {
  delete r;
}

struct StepReplay::Ready {
  RecordingPtr recording;
  Tensor pred, loss;
  std::vector<Tensor> gradients;
};

StepReplay::StepReplay() {
  const char* env = std::getenv("LAMINA_STEP_REPLAY");
  enabled_ = !(env && std::string(env) == "0");
}
StepReplay::~StepReplay() = default;

bool StepReplay::ready_for(const Tensor& x, const Tensor& y) const {
  return ready_ && ready_->recording->fits(x, y);
}

void StepReplay::run(const Tensor& x, const Tensor& y) {
  ready_->recording->run(x, y);
  g_replayed.fetch_add(1, std::memory_order_relaxed);
  if (ready_->recording->replays_as_graph()) g_graphs.fetch_add(1, std::memory_order_relaxed);
}

RecordingPtr StepReplay::begin(const Tensor& x, const Tensor& y) {
  // Two recordings that differ three times: this model's steps do not repeat; stop trying.
  if (!enabled_ || ready_ || mismatches_ >= 3) return nullptr;
  return RecordingPtr(new StepRecording(x, y));
}

void StepReplay::finish(RecordingPtr recording, const Tensor& pred, const Tensor& loss,
                        const std::vector<Tensor>& gradients) {
  if (!recording) return;
  if (recording->spoiled()) {  // this step cannot be repeated, nor can the next ones of this run
    enabled_ = false;
    previous_.reset();
    return;
  }
  if (previous_ && previous_->matches(*recording)) {
    ready_ = std::make_unique<Ready>();
    ready_->recording = std::move(recording);
    // Detached: the autograd graph behind them is not kept.
    ready_->pred = detached(pred);
    ready_->loss = detached(loss);
    for (const Tensor& g : gradients) ready_->gradients.push_back(g.defined() ? detached(g) : Tensor());
    previous_.reset();
    return;
  }
  if (previous_) ++mismatches_;
  previous_ = std::move(recording);
}

const Tensor& StepReplay::pred() const {
  return ready_->pred;
}
const Tensor& StepReplay::loss() const {
  return ready_->loss;
}
const std::vector<Tensor>& StepReplay::gradients() const {
  return ready_->gradients;
}

int64_t replayed_steps() {
  return g_replayed.load(std::memory_order_relaxed);
}
int64_t graph_steps() {
  return g_graphs.load(std::memory_order_relaxed);
}

}  // namespace lamina
