// The cudnn backend's host side, which needs no GPU: shape logic, broadcast / reduction / GEMM plans
// (checked by emulating the device's index arithmetic on the host), cuDNN descriptor setup (cuDNN
// describes tensors without a device), algorithm ranking, the caching allocator's bookkeeping, the
// dropout hash, and the plugin's answer on a machine without a usable GPU.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "allocator.hpp"
#include "descriptors.hpp"
#include "geometry.hpp"

#include <lamina/sdk/dropout.hpp>

using namespace lamina::cudnn;
using lamina::sdk::AttrReader;
using lamina::sdk::Attrs;
using lamina::sdk::dropout_uniform;

namespace {

lamina_view view(std::vector<int64_t> shape) {
  lamina_view v{};
  v.ndim = int32_t(shape.size());
  v.dtype = LAMINA_DTYPE_FLOAT32;
  for (size_t i = 0; i < shape.size(); ++i) v.shape[i] = shape[i];
  return v;
}

int64_t count(const lamina_view& v) {
  return lamina::sdk::view_size(v);
}

// Deterministic values for the emulations.
std::vector<float> values(int64_t n, uint64_t seed) {
  std::vector<float> out(static_cast<size_t>(n));
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& x : out) {
    z ^= z << 13, z ^= z >> 7, z ^= z << 17;
    x = float(int64_t(z >> 40) % 19) - 9.0f;  // small integers: sums are exact in float
  }
  return out;
}

// Row-major coordinates of flat index i.
std::vector<int64_t> coordinates(int64_t i, const lamina_view& v) {
  std::vector<int64_t> c(size_t(v.ndim));
  for (int32_t d = v.ndim - 1; d >= 0; --d) {
    c[size_t(d)] = i % v.shape[d];
    i /= v.shape[d];
  }
  return c;
}

int64_t flat(const std::vector<int64_t>& c, const lamina_view& v) {
  int64_t i = 0;
  for (int32_t d = 0; d < v.ndim; ++d) i = i * v.shape[d] + (v.shape[d] == 1 ? 0 : c[size_t(d)]);
  return i;
}

// A RawMemory on malloc with an optional capacity, counting calls.
class FakeMemory : public RawMemory {
 public:
  size_t capacity = SIZE_MAX, used = 0;
  int allocations = 0, frees = 0, syncs = 0;
  std::set<void*> live;
  void* allocate(size_t bytes) override {
    if (used + bytes > capacity) return nullptr;
    void* p = std::malloc(bytes);
    used += bytes;
    sizes[p] = bytes;
    live.insert(p);
    ++allocations;
    return p;
  }
  void free(void* p) override {
    used -= sizes.at(p);
    live.erase(p);
    std::free(p);
    ++frees;
  }
  void synchronize() override { ++syncs; }

 private:
  std::map<void*, size_t> sizes;
};

}  // namespace

// ------------------------------------------------------------------------------------------------
// Allocator

TEST_CASE("cudnn host: size classes cover each request with at most 25 % to spare") {
  CHECK(CachingAllocator::size_class(0) == 512);
  CHECK(CachingAllocator::size_class(1) == 512);
  CHECK(CachingAllocator::size_class(512) == 512);
  CHECK(CachingAllocator::size_class(513) == 1024);
  CHECK(CachingAllocator::size_class(1 << 20) == 1 << 20);
  CHECK(CachingAllocator::size_class((1 << 20) + 1) == (5 << 20) / 4);
  CHECK(CachingAllocator::size_class(3 << 20) == 3 << 20);
  CHECK(CachingAllocator::size_class((3 << 20) + 1) == (7 << 20) / 2);
  size_t previous = 0;
  for (size_t bytes = 1; bytes < (size_t(1) << 34); bytes = bytes * 5 / 4 + 7) {
    const size_t c = CachingAllocator::size_class(bytes);
    INFO("request " << bytes << " → class " << c);
    CHECK(c >= bytes);
    CHECK(c % 512 == 0);
    CHECK(c >= previous);
    if (bytes > (1 << 20)) CHECK(double(c) <= 1.25 * double(bytes));
    previous = c;
  }
}

TEST_CASE("cudnn host: the caching allocator reuses freed blocks of the same class and keeps its books") {
  FakeMemory raw;
  {
    CachingAllocator a(raw);
    void* p = a.allocate(1000);  // class 1024
    void* q = a.allocate(3000);  // class 3072
    REQUIRE(p);
    REQUIRE(q);
    CHECK(raw.allocations == 2);
    CHECK(a.block_size(p) == 1024);
    AllocatorStats s = a.stats();
    CHECK(s.in_use_bytes == 1024 + 3072);
    CHECK(s.in_use_blocks == 2);
    CHECK(s.cached_bytes == 0);
    CHECK(s.misses == 2);

    CHECK(a.release(p));
    s = a.stats();
    CHECK(s.in_use_bytes == 3072);
    CHECK(s.cached_bytes == 1024);
    CHECK(s.reserved_bytes == 1024 + 3072);
    CHECK(raw.frees == 0);  // kept for reuse

    void* r = a.allocate(900);  // same class: the cached block comes back
    CHECK(r == p);
    CHECK(raw.allocations == 2);
    CHECK(a.stats().hits == 1);
    CHECK(a.stats().cached_bytes == 0);

    void* t = a.allocate(2000);  // another class: a new block
    CHECK(t != p);
    CHECK(raw.allocations == 3);

    CHECK_FALSE(a.release(reinterpret_cast<void*>(0x1234)));  // never handed out
    CHECK(a.release(r));
    CHECK_FALSE(a.release(r));  // already released
    CHECK(a.release(q));
    CHECK(a.release(t));
    s = a.stats();
    CHECK(s.in_use_bytes == 0);
    CHECK(s.in_use_blocks == 0);
    CHECK(s.cached_blocks == 3);
    CHECK(s.peak_reserved_bytes == 1024 + 3072 + 2048);

    a.empty_cache();
    CHECK(raw.frees == 3);
    CHECK(raw.syncs == 1);  // queued work finishes before blocks go back to the driver
    CHECK(raw.live.empty());
    CHECK(a.stats().reserved_bytes == 0);
  }
  CHECK(raw.live.empty());
}

TEST_CASE("cudnn host: when the device is full the allocator returns its cache and retries") {
  FakeMemory raw;
  raw.capacity = 8192;
  CachingAllocator a(raw);
  void* p = a.allocate(4096);
  void* q = a.allocate(4096);
  REQUIRE(p);
  REQUIRE(q);
  CHECK(a.allocate(512) == nullptr);  // full, nothing cached to give back
  CHECK(a.stats().flushes == 0);
  a.release(p);
  a.release(q);
  void* big = a.allocate(6000);  // class 6144: fits only once the cached 4096s are gone
  CHECK(big != nullptr);
  CHECK(a.stats().flushes == 1);
  CHECK(raw.frees == 2);
  CHECK(a.stats().cached_blocks == 0);
  CHECK(a.stats().in_use_bytes == 6144);
  CHECK(a.allocate(4096) == nullptr);  // truly out of memory: nullptr, books unchanged
  CHECK(a.stats().in_use_bytes == 6144);
  a.release(big);
}

// ------------------------------------------------------------------------------------------------
// Convolution geometry and descriptors

namespace {

struct ConvCase {
  const char* name;
  std::vector<int64_t> x, w, y;
  std::vector<int64_t> strides, pads;
  std::vector<int64_t> dilation = {1, 1};
  int64_t groups = 1;
};

void set_conv_attrs(Attrs& attrs, const ConvCase& c) {
  attrs.set("strides", c.strides).set("pads", c.pads).set("dilation", c.dilation).set("groups", c.groups);
}

// The conformance table's convolutions and the seed CNN's.
std::vector<ConvCase> conv_cases() {
  return {
      {"seed layer 1", {32, 28, 28, 1}, {5, 5, 1, 32}, {32, 24, 24, 32}, {1, 1}, {0, 0, 0, 0}},
      {"seed layer 2", {32, 24, 24, 32}, {5, 5, 32, 32}, {32, 20, 20, 32}, {1, 1}, {0, 0, 0, 0}},
      {"3x3 valid", {2, 9, 9, 3}, {3, 3, 3, 4}, {2, 7, 7, 4}, {1, 1}, {0, 0, 0, 0}},
      {"stride 2 same", {2, 8, 8, 3}, {3, 3, 3, 4}, {2, 4, 4, 4}, {2, 2}, {0, 1, 0, 1}},
      {"5x5 same", {1, 7, 6, 4}, {5, 5, 4, 6}, {1, 7, 6, 6}, {1, 1}, {2, 2, 2, 2}},
      {"stride 2 same, odd", {1, 6, 5, 2}, {3, 3, 2, 2}, {1, 3, 3, 2}, {2, 2}, {0, 1, 1, 1}},
      {"dilation 2 same", {2, 9, 9, 3}, {3, 3, 3, 4}, {2, 9, 9, 4}, {1, 1}, {2, 2, 2, 2}, {2, 2}},
      {"dilation [2, 3] valid", {1, 10, 11, 4}, {3, 2, 4, 5}, {1, 6, 8, 5}, {1, 1}, {0, 0, 0, 0}, {2, 3}},
      {"groups 2 stride 2 same", {2, 8, 8, 4}, {3, 3, 2, 6}, {2, 4, 4, 6}, {2, 2}, {0, 1, 0, 1}, {1, 1}, 2},
      {"depthwise multiplier 2", {2, 7, 7, 3}, {3, 3, 1, 6}, {2, 7, 7, 6}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 3},
  };
}

}  // namespace

TEST_CASE("cudnn host: conv geometry reads shapes and attributes and decides on explicit padding") {
  for (const ConvCase& c : conv_cases()) {
    CAPTURE(c.name);
    Attrs attrs;
    set_conv_attrs(attrs, c);
    const ConvGeometry g = cudnn_conv_geometry(AttrReader(attrs.c()), view(c.x), view(c.w), view(c.y));
    CHECK(g.n == c.x[0]);
    CHECK(g.groups == c.groups);
    CHECK(g.cg == c.w[2]);
    CHECK(g.dh == c.dilation[0]);
    CHECK(g.dw == c.dilation[1]);
    CHECK(g.o == c.w[3]);
    CHECK(g.oh == c.y[1]);
    const bool asymmetric = c.pads[0] != c.pads[1] || c.pads[2] != c.pads[3];
    CHECK(g.explicit_padding() == asymmetric);
    if (asymmetric) {
      CHECK(g.cudnn_h() == c.x[1] + c.pads[0] + c.pads[1]);
      CHECK(g.cudnn_w() == c.x[2] + c.pads[2] + c.pads[3]);
      CHECK(g.cudnn_pad_h() == 0);
    } else {
      CHECK(g.cudnn_h() == c.x[1]);
      CHECK(g.cudnn_pad_h() == c.pads[0]);
    }
  }
}

TEST_CASE("cudnn host: conv geometry refuses inconsistent shapes, naming them") {
  Attrs attrs;
  attrs.set("strides", std::vector<int64_t>{1, 1}).set("pads", std::vector<int64_t>{0, 0, 0, 0});
  const AttrReader reader(attrs.c());
  auto message = [&](std::vector<int64_t> x, std::vector<int64_t> w, std::vector<int64_t> y) {
    try {
      cudnn_conv_geometry(reader, view(x), view(w), view(y));
    } catch (const lamina::sdk::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(message({2, 9, 9, 3}, {3, 3, 4, 4}, {2, 7, 7, 4}).find("shapes disagree") != std::string::npos);
  CHECK(message({2, 9, 9, 3}, {3, 3, 3, 4}, {2, 8, 7, 4}).find("7x7") != std::string::npos);
  CHECK(message({2, 9, 9}, {3, 3, 3, 4}, {2, 7, 7, 4}).find("expected rank 4") != std::string::npos);
  CHECK(message({2, 2, 2, 3}, {3, 3, 3, 4}, {2, 1, 1, 4}).find("does not fit") != std::string::npos);
}

TEST_CASE(
    "cudnn host: the SDK's plain conv_geometry refuses dilation and groups; full_conv_geometry reads them") {
  for (const ConvCase& c : conv_cases()) {
    CAPTURE(c.name);
    Attrs attrs;
    set_conv_attrs(attrs, c);
    const AttrReader reader(attrs.c());
    const lamina::sdk::ConvGeometry g =
        lamina::sdk::full_conv_geometry(reader, view(c.x), view(c.w), view(c.y));
    CHECK(g.span_h() == (c.w[0] - 1) * c.dilation[0] + 1);
    CHECK(g.og == c.w[3] / c.groups);
    if (g.plain()) {
      CHECK_NOTHROW(lamina::sdk::conv_geometry(reader, view(c.x), view(c.w), view(c.y)));
    } else {
      CHECK_THROWS_WITH_AS(lamina::sdk::conv_geometry(reader, view(c.x), view(c.w), view(c.y)),
                           doctest::Contains("this backend's convolution kernels take no dilation or groups"),
                           lamina::sdk::Error);
    }
  }
  // groups that do not divide the channels, and a kernel with the wrong channels per group
  Attrs attrs;
  attrs.set("groups", int64_t(2));
  const AttrReader reader(attrs.c());
  CHECK_THROWS_WITH_AS(
      lamina::sdk::full_conv_geometry(reader, view({1, 5, 5, 3}), view({3, 3, 1, 4}), view({1, 3, 3, 4})),
      doctest::Contains("with groups 2; expected x (N,H,W,C), w (KH,KW,C/groups,O)"), lamina::sdk::Error);
  CHECK_THROWS_WITH_AS(
      lamina::sdk::full_conv_geometry(reader, view({1, 5, 5, 4}), view({3, 3, 4, 4}), view({1, 3, 3, 4})),
      doctest::Contains("shapes disagree"), lamina::sdk::Error);
}

TEST_CASE("cudnn host: cuDNN's descriptors agree with lamina on every convolution, in both layouts") {
  ConvDescriptors d;
  for (const ConvCase& c : conv_cases()) {
    for (Layout layout : {Layout::nhwc, Layout::nchw}) {
      CAPTURE(c.name);
      CAPTURE(layout_name(layout));
      Attrs attrs;
      set_conv_attrs(attrs, c);
      const ConvGeometry g = cudnn_conv_geometry(AttrReader(attrs.c()), view(c.x), view(c.w), view(c.y));
      REQUIRE_NOTHROW(describe_convolution(d, g, layout, Math::fma));

      Dims4 dims, strides;
      tensor_layout(d.x, dims, strides);
      CHECK(dims == Dims4{int(g.n), int(g.c), int(g.cudnn_h()), int(g.cudnn_w())});
      if (layout == Layout::nhwc)  // channels innermost, as lamina stores activations
        CHECK(strides == Dims4{int(g.cudnn_h() * g.cudnn_w() * g.c), 1, int(g.cudnn_w() * g.c), int(g.c)});
      else
        CHECK(strides == Dims4{int(g.c * g.cudnn_h() * g.cudnn_w()), int(g.cudnn_h() * g.cudnn_w()),
                               int(g.cudnn_w()), 1});
      tensor_layout(d.y, dims, strides);
      CHECK(dims == Dims4{int(g.n), int(g.o), int(g.oh), int(g.ow)});

      cudnnDataType_t type;
      cudnnTensorFormat_t format;
      int k = 0, ch = 0, kh = 0, kw = 0;
      REQUIRE(cudnnGetFilter4dDescriptor(d.w, &type, &format, &k, &ch, &kh, &kw) == CUDNN_STATUS_SUCCESS);
      CHECK(format == (layout == Layout::nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW));
      CHECK(k == g.o);
      CHECK(ch == g.c / c.groups);  // a grouped filter holds C/G inputs per output
      CHECK(kh == g.kh);

      int pad_h = 0, pad_w = 0, stride_h = 0, stride_w = 0, dilation_h = 0, dilation_w = 0, groups = 0;
      cudnnConvolutionMode_t mode;
      REQUIRE(cudnnGetConvolution2dDescriptor(d.conv, &pad_h, &pad_w, &stride_h, &stride_w, &dilation_h,
                                              &dilation_w, &mode, &type) == CUDNN_STATUS_SUCCESS);
      CHECK(dilation_h == c.dilation[0]);
      CHECK(dilation_w == c.dilation[1]);
      CHECK(mode == CUDNN_CROSS_CORRELATION);
      REQUIRE(cudnnGetConvolutionGroupCount(d.conv, &groups) == CUDNN_STATUS_SUCCESS);
      CHECK(groups == c.groups);

      cudnnMathType_t math;
      REQUIRE(cudnnGetConvolutionMathType(d.conv, &math) == CUDNN_STATUS_SUCCESS);
      CHECK(math == CUDNN_FMA_MATH);
    }
  }
}

TEST_CASE("cudnn host: batch normalization describes x (..., C) as NHWC (N, C, S, 1) and its parameters as (1, C, 1, 1)") {
  TensorDesc x, params;
  Dims4 dims, strides;
  set_batch_norm(x, params, view({2, 5, 3, 8}));
  tensor_layout(x, dims, strides);
  CHECK(dims == Dims4{2, 8, 15, 1});
  CHECK(strides == Dims4{120, 1, 8, 8});  // lamina's row-major (2, 5, 3, 8) buffer as it is
  tensor_layout(params, dims, strides);
  CHECK(dims == Dims4{1, 8, 1, 1});
  set_batch_norm(x, params, view({16, 10}));
  tensor_layout(x, dims, strides);
  CHECK(dims == Dims4{16, 10, 1, 1});
  CHECK(strides == Dims4{10, 1, 10, 10});
  tensor_layout(params, dims, strides);
  CHECK(dims == Dims4{1, 10, 1, 1});
}

TEST_CASE("cudnn host: a descriptor cuDNN computes a different output size for is refused") {
  ConvDescriptors d;
  ConvGeometry g;
  g.n = 1, g.h = 8, g.w = 8, g.c = 2, g.kh = 3, g.kw = 3, g.o = 4, g.oh = 5, g.ow = 6;  // 6x6 is right
  g.cg = 2, g.og = 4;
  CHECK_THROWS_WITH_AS(describe_convolution(d, g, Layout::nhwc, Math::fma),
                       doctest::Contains("where lamina expects"), lamina::sdk::Error);
}

TEST_CASE("cudnn host: the fused ops' activation attribute") {
  auto read = [](const char* name) {  // a string attribute as the C ABI carries it; none for null
    lamina_attr item{};
    item.name = "activation";
    item.type = LAMINA_ATTR_STRING;
    item.text = name;
    const lamina_attrs c{name ? 1 : 0, &item};
    return lamina::sdk::read_activation(AttrReader(&c));
  };
  CHECK(read(nullptr) == lamina::sdk::Activation::linear);
  CHECK(read("") == lamina::sdk::Activation::linear);
  CHECK(read("linear") == lamina::sdk::Activation::linear);
  CHECK(read("relu") == lamina::sdk::Activation::relu);
  CHECK(read("sigmoid") == lamina::sdk::Activation::sigmoid);
  CHECK(read("tanh") == lamina::sdk::Activation::tanh);
  CHECK_THROWS_WITH_AS(read("softmax"), doctest::Contains("unknown activation 'softmax'"),
                       lamina::sdk::Error);
  Attrs number;
  number.set("activation", int64_t(1));
  CHECK_THROWS_WITH_AS(lamina::sdk::read_activation(AttrReader(number.c())),
                       doctest::Contains("must be a string"), lamina::sdk::Error);
}

// ------------------------------------------------------------------------------------------------
// Pooling

TEST_CASE("cudnn host: cuDNN pools only where its semantics are lamina's, and agrees on the size") {
  struct Case {
    const char* name;
    std::vector<int64_t> x, y, pool, strides, pads;
    PoolPath max_path, avg_path;
  };
  const std::vector<Case> cases = {
      {"seed 2x2",
       {32, 20, 20, 32},
       {32, 10, 10, 32},
       {2, 2},
       {2, 2},
       {0, 0, 0, 0},
       PoolPath::cudnn,
       PoolPath::cudnn},
      {"3x3 stride 2 pad 1",
       {2, 7, 7, 3},
       {2, 4, 4, 3},
       {3, 3},
       {2, 2},
       {1, 1, 1, 1},
       PoolPath::own,
       PoolPath::cudnn},
      {"2x2 same, odd",
       {1, 5, 5, 2},
       {1, 3, 3, 2},
       {2, 2},
       {2, 2},
       {0, 1, 0, 1},
       PoolPath::own,
       PoolPath::own},
      {"window in the padding",
       {1, 4, 4, 1},
       {1, 4, 4, 1},
       {2, 2},
       {2, 2},
       {2, 2, 2, 2},
       PoolPath::own,
       PoolPath::own},
  };
  PoolDesc pool;
  TensorDesc x;
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Attrs attrs;
    attrs.set("pool", c.pool).set("strides", c.strides).set("pads", c.pads);
    const PoolGeometry g = pool_geometry(AttrReader(attrs.c()), view(c.x), view(c.y));
    CHECK(choose_pool_path(g, true, false) == c.max_path);
    CHECK(choose_pool_path(g, false, false) == c.avg_path);
    CHECK(choose_pool_path(g, true, true) == PoolPath::own);
    CHECK(choose_pool_path(g, false, true) == PoolPath::own);
    for (bool max : {true, false}) {
      if (choose_pool_path(g, max, false) != PoolPath::cudnn) continue;
      set_pooling(pool, g, max);
      set_tensor(x, Layout::nhwc, g.n, g.c, g.h, g.w);
      CHECK(pooling_output(pool, x) == Dims4{int(g.n), int(g.c), int(g.oh), int(g.ow)});
    }
  }
}

TEST_CASE("cudnn host: pool geometry finds windows lying wholly in the padding") {
  Attrs attrs;
  attrs.set("pool", std::vector<int64_t>{2, 2}).set("strides", std::vector<int64_t>{2, 2});
  attrs.set("pads", std::vector<int64_t>{2, 2, 0, 0});
  const PoolGeometry g = pool_geometry(AttrReader(attrs.c()), view({1, 4, 4, 1}), view({1, 4, 2, 1}));
  CHECK(g.has_empty_window());
  Attrs normal;
  normal.set("pool", std::vector<int64_t>{3, 3}).set("strides", std::vector<int64_t>{2, 2});
  normal.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  CHECK_FALSE(
      pool_geometry(AttrReader(normal.c()), view({2, 7, 7, 3}), view({2, 4, 4, 3})).has_empty_window());
  CHECK_THROWS_WITH_AS(pool_geometry(AttrReader(normal.c()), view({2, 7, 7, 3}), view({2, 3, 4, 3})),
                       doctest::Contains("4x4"), lamina::sdk::Error);
}

// ------------------------------------------------------------------------------------------------
// Broadcasting and reductions, checked by running the device kernels' index arithmetic on the host

namespace {

// What map_broadcast computes.
std::vector<float> emulate_broadcast(const BroadcastPlan& p, const std::vector<float>& a,
                                     const std::vector<float>& b) {
  std::vector<float> y(size_t(p.size));
  for (int64_t i = 0; i < p.size; ++i) {
    int64_t rest = i, oa = 0, ob = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t c = rest % p.dims[d];
      rest /= p.dims[d];
      oa += c * p.stride_a[d];
      ob += c * p.stride_b[d];
    }
    y[size_t(i)] = a[size_t(oa)] - 2.0f * b[size_t(ob)];
  }
  return y;
}

}  // namespace

TEST_CASE("cudnn host: broadcast plans merge axes and address both operands correctly") {
  struct Case {
    std::vector<int64_t> a, b, y;
    BroadcastPlan::Kind kind;
    int rank;
  };
  const std::vector<Case> cases = {
      {{6, 5}, {6, 5}, {6, 5}, BroadcastPlan::Kind::same, 1},
      {{4, 1, 3}, {1, 5, 3}, {4, 5, 3}, BroadcastPlan::Kind::general, 3},
      {{2, 5, 5, 8}, {1, 1, 1, 8}, {2, 5, 5, 8}, BroadcastPlan::Kind::general, 2},  // a bias
      {{8, 10}, {1, 10}, {8, 10}, BroadcastPlan::Kind::general, 2},
      {{3, 4}, {3, 1}, {3, 4}, BroadcastPlan::Kind::general, 2},
      {{3, 4}, {1, 1}, {3, 4}, BroadcastPlan::Kind::scalar_b, 1},
      {{1, 4}, {3, 1}, {3, 4}, BroadcastPlan::Kind::general, 2},
      {{1}, {1}, {1}, BroadcastPlan::Kind::same, 0},
      {{2, 1, 3, 1}, {2, 1, 3, 1}, {2, 1, 3, 1}, BroadcastPlan::Kind::same, 1},
  };
  for (const Case& c : cases) {
    const lamina_view a = view(c.a), b = view(c.b), y = view(c.y);
    const BroadcastPlan p = plan_broadcast(a, b, y);
    INFO("a " << shape_string(a) << " b " << shape_string(b));
    CHECK(p.kind == c.kind);
    CHECK(p.rank == c.rank);
    CHECK(p.size == count(y));
    const std::vector<float> av = values(count(a), 1), bv = values(count(b), 2);
    std::vector<float> want(size_t(count(y)));
    for (int64_t i = 0; i < count(y); ++i) {
      const auto co = coordinates(i, y);
      want[size_t(i)] = av[size_t(flat(co, a))] - 2.0f * bv[size_t(flat(co, b))];
    }
    CHECK(emulate_broadcast(p, av, bv) == want);
  }
  CHECK_THROWS_WITH_AS(plan_broadcast(view({3, 4}), view({2, 4}), view({3, 4})), doctest::Contains("axis 0"),
                       lamina::sdk::Error);
}

namespace {

// What the reduce kernels compute for a plan: outer_len_inner or general.
std::vector<float> emulate_reduce(const ReducePlan& p, const std::vector<float>& x) {
  std::vector<float> y(size_t(p.out_size), 0.0f);
  if (p.kind == ReducePlan::Kind::copy) return x;
  if (p.kind == ReducePlan::Kind::outer_len_inner) {
    for (int64_t o = 0; o < p.outer; ++o)
      for (int64_t r = 0; r < p.len; ++r)
        for (int64_t i = 0; i < p.inner; ++i)
          y[size_t(o * p.inner + i)] += x[size_t((o * p.len + r) * p.inner + i)];
    return y;
  }
  int64_t terms = 1;
  for (int d = 0; d < p.rank; ++d)
    if (p.summed[d]) terms *= p.dims[d];
  for (int64_t i = 0; i < p.out_size; ++i) {
    int64_t rest = i, base = 0;
    for (int d = p.rank - 1; d >= 0; --d)
      if (!p.summed[d]) base += rest % p.dims[d] * p.strides[d], rest /= p.dims[d];
    for (int64_t t = 0; t < terms; ++t) {
      int64_t r = t, offset = base;
      for (int d = p.rank - 1; d >= 0; --d)
        if (p.summed[d]) offset += r % p.dims[d] * p.strides[d], r /= p.dims[d];
      y[size_t(i)] += x[size_t(offset)];
    }
  }
  return y;
}

}  // namespace

TEST_CASE("cudnn host: reduce plans find [outer, len, inner] and sum what reduce_sum must") {
  struct Case {
    std::vector<int64_t> x, y;
    ReducePlan::Kind kind;
    int64_t outer, len, inner;
  };
  const std::vector<Case> cases = {
      {{32, 24, 24, 32}, {1, 1, 1, 32}, ReducePlan::Kind::outer_len_inner, 1, 32 * 24 * 24, 32},  // conv bias
      {{32, 128}, {1, 128}, ReducePlan::Kind::outer_len_inner, 1, 32, 128},  // dense bias
      {{32, 10}, {32, 1}, ReducePlan::Kind::outer_len_inner, 32, 10, 1},     // softmax rows
      {{30, 40}, {1, 1}, ReducePlan::Kind::outer_len_inner, 1, 1200, 1},     // everything
      {{3, 4, 5}, {3, 1, 5}, ReducePlan::Kind::outer_len_inner, 3, 4, 5},
      {{3, 4, 5, 6}, {1, 1, 1, 6}, ReducePlan::Kind::outer_len_inner, 1, 60, 6},
      {{3, 4, 5}, {1, 4, 1}, ReducePlan::Kind::general, 0, 0, 0},
      {{2, 3, 4, 5}, {2, 1, 4, 1}, ReducePlan::Kind::general, 0, 0, 0},
      {{6, 7}, {6, 7}, ReducePlan::Kind::copy, 0, 0, 0},
      {{6, 1, 7}, {1, 1, 7}, ReducePlan::Kind::outer_len_inner, 1, 6, 7},
  };
  for (const Case& c : cases) {
    const lamina_view x = view(c.x), y = view(c.y);
    INFO("x " << shape_string(x) << " → y " << shape_string(y));
    const ReducePlan p = plan_reduce(x, y);
    CHECK(p.kind == c.kind);
    if (c.kind == ReducePlan::Kind::outer_len_inner) {
      CHECK(p.outer == c.outer);
      CHECK(p.len == c.len);
      CHECK(p.inner == c.inner);
    }
    const std::vector<float> xv = values(count(x), 3);
    std::vector<float> want(size_t(count(y)), 0.0f);
    for (int64_t i = 0; i < count(x); ++i) want[size_t(flat(coordinates(i, x), y))] += xv[size_t(i)];
    CHECK(emulate_reduce(p, xv) == want);
  }
}

TEST_CASE("cudnn host: long sums into few outputs are split to occupy the GPU") {
  CHECK(reduce_splits(32 * 24 * 24, 1, 132) > 1);  // the seed's bias gradient: 1 tile of 32 columns
  CHECK(reduce_splits(100, 1, 132) == 1);          // short: one pass
  CHECK(reduce_splits(1 << 20, 10000, 132) == 1);  // enough blocks already
  CHECK(reduce_splits(1 << 30, 1, 132) <= 65535);
  for (int64_t len : {2048, 5000, 18432, 1 << 22}) {
    const int64_t s = reduce_splits(len, 1, 132);
    CHECK(s >= 1);
    CHECK(len / s >= 1024);  // each slice is worth a block
  }
}

// ------------------------------------------------------------------------------------------------
// GEMM

TEST_CASE("cudnn host: the column-major GEMM call computes lamina's row-major matmul") {
  const int64_t M = 7, K = 5, N = 6;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const lamina_view a = view(ta ? std::vector<int64_t>{K, M} : std::vector<int64_t>{M, K});
      const lamina_view b = view(tb ? std::vector<int64_t>{N, K} : std::vector<int64_t>{K, N});
      const lamina_view y = view({M, N});
      const GemmPlan p = plan_gemm(a, b, y, ta, tb);
      const std::vector<float> av = values(M * K, 4), bv = values(K * N, 5);
      // cublasSgemm(opA = tb, opB = ta, m = N, n = M, k, A = b, lda = ldb, B = a, ldb = lda, C = y, ldc =
      // ldy)
      std::vector<float> got(size_t(M * N), 0.0f);
      for (int i = 0; i < p.n; ++i)
        for (int j = 0; j < p.m; ++j) {
          float sum = 0.0f;
          for (int l = 0; l < p.k; ++l) {
            const float op_a = p.transpose_b ? bv[size_t(l + i * p.ldb)] : bv[size_t(i + l * p.ldb)];
            const float op_b = p.transpose_a ? av[size_t(j + l * p.lda)] : av[size_t(l + j * p.lda)];
            sum += op_a * op_b;
          }
          got[size_t(i + j * p.ldy)] = sum;
        }
      std::vector<float> want(size_t(M * N), 0.0f);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j)
          for (int64_t l = 0; l < K; ++l)
            want[size_t(i * N + j)] += (ta ? av[size_t(l * M + i)] : av[size_t(i * K + l)]) *
                                       (tb ? bv[size_t(j * K + l)] : bv[size_t(l * N + j)]);
      CHECK(got == want);
    }
  CHECK_THROWS_WITH_AS(plan_gemm(view({7, 5}), view({6, 6}), view({7, 6}), false, false),
                       doctest::Contains("does not give y"), lamina::sdk::Error);
}

// ------------------------------------------------------------------------------------------------
// Algorithm choice

TEST_CASE(
    "cudnn host: algorithm ranking keeps cuDNN's order, drops what cannot run, ends with the fallback") {
  AlgoPolicy policy;
  policy.workspace_limit = 1000;
  const std::vector<AlgoCandidate> proposed = {
      {6, false, 0, Math::default_math, true},    // failed status
      {2, true, 5000, Math::default_math, true},  // workspace over the limit
      {7, true, 100, Math::tensor_op, false},     // non-deterministic, tensor-op math
      {1, true, 10, Math::default_math, true},   {7, true, 50, Math::default_math, false},  // a repeat of 7
  };
  std::vector<AlgoCandidate> r = rank_algorithms(proposed, policy, 0);
  REQUIRE(r.size() == 3);
  CHECK(r[0].algo == 7);
  CHECK(r[1].algo == 1);
  CHECK(r[2].algo == 0);                       // the fallback
  CHECK(math_for(r[0], policy) == Math::fma);  // no TF32 unless allowed
  policy.allow_tf32 = true;
  CHECK(math_for(r[0], policy) == Math::tensor_op);

  policy.deterministic_only = true;
  r = rank_algorithms(proposed, policy, 1);
  REQUIRE(r.size() == 1);  // 1 is both the only deterministic one left and the fallback
  CHECK(r[0].algo == 1);

  r = rank_algorithms({}, policy, 0);  // cuDNN proposed nothing
  REQUIRE(r.size() == 1);
  CHECK(r[0].algo == 0);
}

TEST_CASE("cudnn host: the lowest CUDA architecture of a build") {
  CHECK(lowest_architecture("80;90") == 80);
  CHECK(lowest_architecture("90,80") == 80);
  CHECK(lowest_architecture("80-real;90a-real") == 80);
  CHECK(lowest_architecture("native") == 0);
  CHECK(lowest_architecture("") == 0);
}

// ------------------------------------------------------------------------------------------------
// Dropout hash

TEST_CASE("cudnn host: the dropout hash is docs/ops.md's splitmix64 finaliser") {
  // An independent transcription of docs/ops.md.
  auto u = [](uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return double(z >> 40) / 16777216.0;
  };
  int below = 0;
  for (uint64_t i = 0; i < 10000; ++i) {
    const double v = dropout_uniform(42, i);
    CHECK(v == u(42, i));
    CHECK(v >= 0.0);
    CHECK(v < 1.0);
    below += v < 0.3;
  }
  CHECK(below > 2800);
  CHECK(below < 3200);
  CHECK(dropout_uniform(uint64_t(-1), 5) == u(uint64_t(-1), 5));
}

// ------------------------------------------------------------------------------------------------
// The plugin itself

TEST_CASE("cudnn host: the plugin scores 0 with the reason where CUDA has no usable device") {
  int devices = -1;
  const cudaError_t rc = cudaGetDeviceCount(&devices);
  // The build's plugin, or the one LAMINA_CUDNN_PLUGIN names (a relocated build: tests/gpu/run.sh).
  const char* path = std::getenv("LAMINA_CUDNN_PLUGIN");
  void* library = dlopen(path && *path ? path : LAMINA_CUDNN_PLUGIN, RTLD_NOW | RTLD_LOCAL);
  REQUIRE_MESSAGE(library, dlerror());
  using ScoreFn = int32_t (*)(lamina_error*);
  void* symbol = dlsym(library, "lamina_plugin_score");
  REQUIRE(symbol != nullptr);
  auto score = reinterpret_cast<ScoreFn>(symbol);
  lamina_error why{};
  const int32_t s = score(&why);
  MESSAGE("cudaGetDeviceCount: " << int(rc) << ", score " << s << ", reason: " << why.message);
  if (rc != cudaSuccess) {
    CHECK(s == 0);
    CHECK(std::string(why.message)
              .find("no usable CUDA device: cudaGetDeviceCount returned " + std::to_string(int(rc))) !=
          std::string::npos);
  } else if (devices == 0) {
    CHECK(s == 0);
  } else {
    CHECK((s > 100 || std::string(why.message).find("no usable CUDA device") != std::string::npos));
  }
}
