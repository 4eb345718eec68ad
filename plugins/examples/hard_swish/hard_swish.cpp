// HardSwish (MobileNetV3): y = x * relu6(x + 3) / 6.
//
// The layer runs one op, "hard_swish.hard_swish", which this plugin defines (sdk::register_op):
//   - on the onednn backend, by the kernel below: one pass over the data;
//   - on every other backend (reference, opencl, cudnn, ...), by compose(): four existing ops.
// lamina differentiates compose() for the gradient on every backend, so the kernel needs no
// backward code; it must compute the same values as compose(). `LAMINA_PROFILE=1` shows which ran.
#include <lamina/sdk/config.hpp>
#include <lamina/sdk/plugin.hpp>

#include <algorithm>

namespace {

namespace sdk = lamina::sdk;
namespace ops = lamina::sdk::ops;

struct HardSwishOp {
  static constexpr const char* name = "hard_swish.hard_swish";
  static constexpr int inputs = 1;
  // x * clip(x + 3, 0, 6) / 6
  static sdk::Tensor compose(const std::vector<sdk::Tensor>& in, const sdk::AttrReader&) {
    return ops::mul(in[0], ops::scale(ops::clip(ops::scale(in[0], 1.0, 3.0), 0.0, 6.0), 1.0 / 6.0));
  }
};

// onednn keeps tensors in host memory, so the views hold host pointers.
LAMINA_KERNEL(hard_swish_kernel) {
  const float* x = sdk::host_data(args.inputs[0]);
  float* y = sdk::host_data(args.outputs[0]);
  int64_t n = sdk::view_size(args.outputs[0]);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * std::clamp(x[i] + 3.0f, 0.0f, 6.0f) * (1.0f / 6.0f);
}

bool g_have_op = false;  // false on a core older than plugin ops: compose directly

class HardSwish final : public sdk::Layer {
 public:
  explicit HardSwish(const std::string& config_json) { sdk::Config config(config_json, "HardSwish"); }
  std::string get_config() const override { return "{}"; }
  sdk::Shape build(sdk::LayerBuilder&, const sdk::Shape& input_shape) override { return input_shape; }
  sdk::Tensor call(const sdk::CallContext&, const std::vector<sdk::Tensor>&, const sdk::Tensor& x) override {
    if (!g_have_op) return HardSwishOp::compose({x}, sdk::AttrReader(nullptr));
    return ops::run1(HardSwishOp::name, {&x});
  }
};

void register_all(const lamina_host* host) {
  g_have_op = sdk::register_op<HardSwishOp>(host, {{"onednn", &hard_swish_kernel}});
  sdk::register_layer<HardSwish>(host, "HardSwish");
}

}  // namespace

LAMINA_PLUGIN("hard_swish", "1.0.0", LAMINA_KIND_LAYER,
              "HardSwish layer: own kernel on onednn, composition of ops elsewhere", register_all,
              LAMINA_ALWAYS_USABLE)
