// Layout ops (concat, slice, slice_backward, pad, transpose): their shape rules and the copies that
// carry them out, written once for the core and every backend.
//
// Each of these ops moves elements without arithmetic. The core checks shapes with the rules below;
// a backend turns a call into a CopyPlan (an optional fill of the output, then boxes of elements
// copied from an input to the output with element strides on both sides) and runs it with one
// strided-copy routine of its own. Host-memory backends use run_copy_plan below as it is.
//
// Depends only on the C ABI header and the standard library, so the core, plugins and CUDA host
// code can all include it. Errors are std::invalid_argument with a message for people.
#pragma once

#include <lamina/lamina_plugin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace lamina::sdk::layout {

using Dims = std::vector<int64_t>;

// "to the end of the axis" for a slice's `end`
inline constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();

inline std::string dims_string(const Dims& d) {
  std::string s = "(";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + (d.size() == 1 ? ",)" : ")");
}

// A negative axis counts from the end (-1 is the last); throws when out of range.
inline int64_t normalize_axis(int64_t axis, size_t rank, const char* what = "axis") {
  int64_t r = int64_t(rank);
  if (axis < -r || axis >= r)
    throw std::invalid_argument(std::string(what) + " " + std::to_string(axis) +
                                " is out of range for rank " + std::to_string(r));
  return axis < 0 ? axis + r : axis;
}

// ------------------------------------------------------------------------------------------------
// Shape rules

// concat: every input has the same rank and the same dims except along `axis`.
inline Dims concat_shape(const std::vector<Dims>& inputs, int64_t axis) {
  if (inputs.empty()) throw std::invalid_argument("concat needs at least one input");
  const Dims& first = inputs[0];
  if (first.empty()) throw std::invalid_argument("concat cannot join rank-0 tensors");
  size_t a = size_t(normalize_axis(axis, first.size()));
  Dims out = first;
  out[a] = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Dims& d = inputs[i];
    bool fits = d.size() == first.size();
    for (size_t k = 0; fits && k < d.size(); ++k) fits = k == a || d[k] == first[k];
    if (!fits)
      throw std::invalid_argument("input " + std::to_string(i) + " has shape " + dims_string(d) +
                                  ", which does not match input 0's " + dims_string(first) +
                                  " on every axis but axis " + std::to_string(a));
    out[a] += d[a];
  }
  return out;
}

// One axis of a slice, Python's rules: negative begin/end count from the end, both are clamped to
// the axis, a negative step walks backwards. `count` elements starting at `start`, `step` apart.
struct AxisSlice {
  int64_t start = 0, count = 0, step = 1;
};
inline AxisSlice slice_axis(int64_t dim, int64_t begin, int64_t end, int64_t step) {
  if (step == 0) throw std::invalid_argument("a slice step must not be 0");
  auto clamp = [&](int64_t v, int64_t lo, int64_t hi) {
    if (v < 0) v = v < -dim ? lo : v + dim;  // -dim-1 and below clamp to the low end
    return std::clamp(v, lo, hi);
  };
  AxisSlice s;
  s.step = step;
  if (step > 0) {
    int64_t b = clamp(begin, 0, dim), e = end == kEnd ? dim : clamp(end, 0, dim);
    s.start = b;
    s.count = e > b ? (e - b + step - 1) / step : 0;
  } else {
    int64_t b = begin == kEnd ? dim - 1 : clamp(begin, -1, dim - 1);
    int64_t e = end == kEnd || end < -dim ? -1 : clamp(end, -1, dim - 1);
    s.start = b;
    s.count = b > e ? (b - e - step - 1) / -step : 0;
  }
  return s;
}

// The slice of every axis of `shape`: `axes` (default: the first begin.size() axes) with their
// `begin`, `end` and `step` (default 1); axes not named are kept whole.
inline std::vector<AxisSlice> resolve_slice(const Dims& shape, const Dims& axes, const Dims& begin,
                                            const Dims& end, const Dims& step) {
  if (begin.size() != end.size() || (!step.empty() && step.size() != begin.size()) ||
      (!axes.empty() && axes.size() != begin.size()))
    throw std::invalid_argument("slice: begin, end, step and axes need one value per sliced axis (got " +
                                std::to_string(begin.size()) + ", " + std::to_string(end.size()) + ", " +
                                std::to_string(step.size()) + ", " + std::to_string(axes.size()) + ")");
  if (begin.size() > shape.size())
    throw std::invalid_argument("slice: " + std::to_string(begin.size()) +
                                " axes given for a tensor of rank " + std::to_string(shape.size()));
  std::vector<AxisSlice> out(shape.size());
  for (size_t k = 0; k < shape.size(); ++k) out[k] = {0, shape[k], 1};
  std::vector<bool> seen(shape.size(), false);
  for (size_t i = 0; i < begin.size(); ++i) {
    size_t a = axes.empty() ? i : size_t(normalize_axis(axes[i], shape.size(), "slice axis"));
    if (seen[a]) throw std::invalid_argument("slice: axis " + std::to_string(a) + " is named twice");
    seen[a] = true;
    out[a] = slice_axis(shape[a], begin[i], end[i], step.empty() ? 1 : step[i]);
  }
  return out;
}
inline Dims slice_shape(const std::vector<AxisSlice>& slices) {
  Dims out;
  for (const AxisSlice& s : slices) out.push_back(s.count);
  return out;
}

// pad: `before` and `after` elements on each axis (non-negative, one per axis).
inline Dims pad_shape(const Dims& x, const Dims& before, const Dims& after) {
  if (before.size() != x.size() || after.size() != x.size())
    throw std::invalid_argument("pad: pads_before and pads_after need one value per axis of " +
                                dims_string(x) + ", got " + std::to_string(before.size()) + " and " +
                                std::to_string(after.size()));
  Dims out = x;
  for (size_t k = 0; k < x.size(); ++k) {
    if (before[k] < 0 || after[k] < 0)
      throw std::invalid_argument("pad: pads must not be negative (axis " + std::to_string(k) +
                                  "); use slice to crop");
    out[k] += before[k] + after[k];
  }
  return out;
}

// transpose: output axis k is input axis perm[k]; an empty perm reverses the axes.
inline Dims resolve_perm(const Dims& perm, size_t rank) {
  Dims p = perm;
  if (p.empty())
    for (size_t k = 0; k < rank; ++k) p.push_back(int64_t(rank - 1 - k));
  if (p.size() != rank)
    throw std::invalid_argument("transpose: perm " + dims_string(perm) + " does not name each of the " +
                                std::to_string(rank) + " axes once");
  std::vector<bool> seen(rank, false);
  for (int64_t& a : p) {
    a = normalize_axis(a, rank, "transpose axis");
    if (seen[size_t(a)])
      throw std::invalid_argument("transpose: perm " + dims_string(perm) + " names axis " +
                                  std::to_string(a) + " twice");
    seen[size_t(a)] = true;
  }
  return p;
}
inline Dims transpose_shape(const Dims& x, const Dims& perm) {
  Dims p = resolve_perm(perm, x.size()), out;
  for (int64_t a : p) out.push_back(x[size_t(a)]);
  return out;
}

// ------------------------------------------------------------------------------------------------
// Copy plans

// A box of elements copied from input `input` to the output: for every index i (rank dims, i[k] <
// extent[k]), out[dst_offset + Σ i[k]·dst_stride[k]] = in[src_offset + Σ i[k]·src_stride[k]].
// Offsets and strides count elements from each view's element 0; strides may be negative (a
// backward slice). Dims are merged where both sides step contiguously, so the last dim is usually
// long and often contiguous on both sides.
struct CopyRegion {
  int32_t input = 0;
  int32_t rank = 0;
  int64_t extent[LAMINA_MAX_DIMS] = {};
  int64_t src_stride[LAMINA_MAX_DIMS] = {};
  int64_t dst_stride[LAMINA_MAX_DIMS] = {};
  int64_t src_offset = 0, dst_offset = 0;
  int64_t elements() const {
    int64_t n = 1;
    for (int32_t k = 0; k < rank; ++k) n *= extent[k];
    return n;
  }
};

// What a layout op does to its output: fill it with `value` first (when `fill`), then copy the
// regions, which never overlap one another in the output.
struct CopyPlan {
  bool fill = false;
  float value = 0.0f;
  std::vector<CopyRegion> regions;
};

inline Dims view_dims(const lamina_view& v) {
  return Dims(v.shape, v.shape + std::max(0, std::min(v.ndim, int32_t(LAMINA_MAX_DIMS))));
}
inline Dims row_major_strides(const Dims& shape) {
  Dims s(shape.size(), 1);
  for (size_t k = shape.size(); k-- > 1;) s[k - 1] = s[k] * shape[k];
  return s;
}

// Drops dims of extent 1 and merges neighbours that both sides step through contiguously.
inline CopyRegion simplify(const CopyRegion& r) {
  CopyRegion out = r;
  out.rank = 0;
  for (int32_t k = 0; k < r.rank; ++k) {
    if (r.extent[k] == 1) continue;
    int32_t last = out.rank - 1;
    if (last >= 0 && out.src_stride[last] == r.src_stride[k] * r.extent[k] &&
        out.dst_stride[last] == r.dst_stride[k] * r.extent[k]) {
      out.extent[last] *= r.extent[k];
      out.src_stride[last] = r.src_stride[k];
      out.dst_stride[last] = r.dst_stride[k];
      continue;
    }
    out.extent[out.rank] = r.extent[k];
    out.src_stride[out.rank] = r.src_stride[k];
    out.dst_stride[out.rank] = r.dst_stride[k];
    ++out.rank;
  }
  if (out.rank == 0) {  // a single element
    out.rank = 1;
    out.extent[0] = 1;
    out.src_stride[0] = out.dst_stride[0] = 1;
  }
  return out;
}

namespace detail {
inline void add_region(CopyPlan& plan, CopyRegion r) {
  for (int32_t k = 0; k < r.rank; ++k)
    if (r.extent[k] == 0) return;
  plan.regions.push_back(simplify(r));
}
inline const lamina_attr* find_attr(const lamina_attrs* attrs, const char* name) {
  if (!attrs) return nullptr;
  for (int32_t i = 0; i < attrs->count; ++i)
    if (std::strcmp(attrs->items[i].name, name) == 0) return &attrs->items[i];
  return nullptr;
}
inline Dims ints_attr(const lamina_attrs* attrs, const char* name) {
  const lamina_attr* a = find_attr(attrs, name);
  if (!a) return {};
  if (a->type == LAMINA_ATTR_INT) return {a->ints[0]};
  if (a->type != LAMINA_ATTR_INTS)
    throw std::invalid_argument(std::string("attribute '") + name + "' must be integers");
  return Dims(a->ints, a->ints + std::clamp(a->count, 0, int32_t(LAMINA_MAX_DIMS)));
}
inline int64_t int_attr(const lamina_attrs* attrs, const char* name, int64_t fallback) {
  const lamina_attr* a = find_attr(attrs, name);
  if (!a) return fallback;
  return a->type == LAMINA_ATTR_FLOAT ? int64_t(a->real) : a->ints[0];
}
inline double float_attr(const lamina_attrs* attrs, const char* name, double fallback) {
  const lamina_attr* a = find_attr(attrs, name);
  if (!a) return fallback;
  return a->type == LAMINA_ATTR_FLOAT ? a->real : double(a->ints[0]);
}
inline void expect(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}
}  // namespace detail

// The slices of a slice or slice_backward call, from its attributes, for a tensor of `shape`.
inline std::vector<AxisSlice> slice_from_attrs(const Dims& shape, const lamina_attrs* attrs) {
  using namespace detail;
  return resolve_slice(shape, ints_attr(attrs, "axes"), ints_attr(attrs, "begin"), ints_attr(attrs, "end"),
                       ints_attr(attrs, "step"));
}

// The plan of layout op `op` ("concat", "slice", "slice_backward", "pad", "transpose") for these
// views and attributes; checks that the output has the shape the op's rule gives.
inline CopyPlan plan_copy(const char* op_name, const lamina_view* in, int32_t n_in, const lamina_view& out,
                          const lamina_attrs* attrs) {
  using namespace detail;
  const std::string op = op_name;
  CopyPlan plan;
  const Dims y = view_dims(out), ys = row_major_strides(y);
  auto expect_output = [&](const Dims& want) {
    expect(want == y, op + ": the output has shape " + dims_string(y) + ", expected " + dims_string(want));
  };
  auto expect_one_input = [&] { expect(n_in == 1, op + " takes one input, got " + std::to_string(n_in)); };
  if (op == "concat") {
    std::vector<Dims> shapes;
    for (int32_t i = 0; i < n_in; ++i) shapes.push_back(view_dims(in[i]));
    int64_t axis = int_attr(attrs, "axis", -1);
    expect_output(concat_shape(shapes, axis));
    size_t a = size_t(normalize_axis(axis, y.size()));
    int64_t at = 0;
    for (int32_t i = 0; i < n_in; ++i) {
      const Dims& x = shapes[size_t(i)];
      Dims xs = row_major_strides(x);
      CopyRegion r;
      r.input = i;
      r.rank = int32_t(x.size());
      for (size_t k = 0; k < x.size(); ++k) {
        r.extent[k] = x[k];
        r.src_stride[k] = xs[k];
        r.dst_stride[k] = ys[k];
      }
      r.dst_offset = at * ys[a];
      at += x[a];
      add_region(plan, r);
    }
  } else if (op == "slice" || op == "slice_backward") {
    expect_one_input();
    // slice reads a strided box of x into y; slice_backward writes dy into that box of a zeroed dx
    bool backward = op == "slice_backward";
    const Dims whole = backward ? y : view_dims(in[0]), part = backward ? view_dims(in[0]) : y;
    const Dims ws = row_major_strides(whole), ps = row_major_strides(part);
    std::vector<AxisSlice> s = slice_from_attrs(whole, attrs);
    expect(slice_shape(s) == part, op + ": " + (backward ? "dy" : "the output") + " has shape " +
                                       dims_string(part) + ", but the slice of " + dims_string(whole) +
                                       " has shape " + dims_string(slice_shape(s)));
    CopyRegion r;
    r.rank = int32_t(whole.size());
    int64_t box_offset = 0;
    for (size_t k = 0; k < whole.size(); ++k) {
      r.extent[k] = s[k].count;
      (backward ? r.dst_stride : r.src_stride)[k] = ws[k] * s[k].step;
      (backward ? r.src_stride : r.dst_stride)[k] = ps[k];
      box_offset += s[k].start * ws[k];
    }
    (backward ? r.dst_offset : r.src_offset) = box_offset;
    plan.fill = backward;
    add_region(plan, r);
  } else if (op == "pad") {
    expect_one_input();
    const Dims x = view_dims(in[0]), xs = row_major_strides(x);
    const Dims before = ints_attr(attrs, "pads_before"), after = ints_attr(attrs, "pads_after");
    expect_output(pad_shape(x, before, after));
    plan.fill = true;
    plan.value = float(float_attr(attrs, "value", 0.0));
    CopyRegion r;
    r.rank = int32_t(x.size());
    for (size_t k = 0; k < x.size(); ++k) {
      r.extent[k] = x[k];
      r.src_stride[k] = xs[k];
      r.dst_stride[k] = ys[k];
      r.dst_offset += before[k] * ys[k];
    }
    add_region(plan, r);
  } else if (op == "transpose") {
    expect_one_input();
    const Dims x = view_dims(in[0]), xs = row_major_strides(x);
    const Dims perm = resolve_perm(ints_attr(attrs, "perm"), x.size());
    expect_output(transpose_shape(x, perm));
    CopyRegion r;
    r.rank = int32_t(x.size());
    for (size_t k = 0; k < x.size(); ++k) {
      r.extent[k] = y[k];
      r.src_stride[k] = xs[size_t(perm[k])];
      r.dst_stride[k] = ys[k];
    }
    add_region(plan, r);
  } else {
    throw std::invalid_argument("'" + op + "' is not a layout op");
  }
  return plan;
}

// Runs one region on host memory.
inline void copy_region(const float* src, float* dst, const CopyRegion& r) {
  const int32_t last = r.rank - 1;
  const int64_t n = r.extent[last], ss = r.src_stride[last], ds = r.dst_stride[last];
  int64_t index[LAMINA_MAX_DIMS] = {};
  int64_t rows = 1;
  for (int32_t k = 0; k < last; ++k) rows *= r.extent[k];
  for (int64_t row = 0; row < rows; ++row) {
    int64_t so = r.src_offset, d = r.dst_offset;
    for (int32_t k = 0; k < last; ++k) {
      so += index[k] * r.src_stride[k];
      d += index[k] * r.dst_stride[k];
    }
    const float* s = src + so;
    float* t = dst + d;
    if (ss == 1 && ds == 1) {
      std::memcpy(t, s, size_t(n) * sizeof(float));
    } else {
      for (int64_t i = 0; i < n; ++i) t[i * ds] = s[i * ss];
    }
    for (int32_t k = last - 1; k >= 0; --k) {  // next row: odometer over the outer dims
      if (++index[k] < r.extent[k]) break;
      index[k] = 0;
    }
  }
}

inline int64_t view_elements(const lamina_view& v) {
  int64_t n = 1;
  for (int32_t k = 0; k < v.ndim; ++k) n *= v.shape[k];
  return n;
}

// Runs a plan on host views (host-memory backends).
inline void run_copy_plan(const CopyPlan& plan, const lamina_view* in, const lamina_view& out) {
  float* y = static_cast<float*>(out.data);
  if (plan.fill) std::fill(y, y + view_elements(out), plan.value);
  for (const CopyRegion& r : plan.regions) copy_region(static_cast<const float*>(in[r.input].data), y, r);
}

// Kernels for host-memory backends: each plans its call and runs the plan; a backend lists them in
// its kernel table as they are ({"concat", sdk::layout::host::concat}, ...).
namespace host {
inline lamina_status run(const char* op, const lamina_view* in, int32_t n_in, const lamina_view* out,
                         int32_t n_out, const lamina_attrs* attrs, lamina_error* error) noexcept {
  try {
    if (n_out != 1)
      throw std::invalid_argument(std::string(op) + " has one output, got " + std::to_string(n_out));
    for (int32_t i = 0; i < n_in; ++i)
      if (in[i].dtype != LAMINA_DTYPE_FLOAT32 || (!in[i].data && view_elements(in[i]) > 0))
        throw std::invalid_argument("input " + std::to_string(i) + " is not a float32 host tensor");
    if (out[0].dtype != LAMINA_DTYPE_FLOAT32 || (!out[0].data && view_elements(out[0]) > 0))
      throw std::invalid_argument("the output is not a float32 host tensor");
    run_copy_plan(plan_copy(op, in, n_in, out[0], attrs), in, out[0]);
    return LAMINA_OK;
  } catch (const std::exception& e) {
    if (error) {
      std::strncpy(error->message, e.what(), sizeof(error->message) - 1);
      error->message[sizeof(error->message) - 1] = '\0';
    }
  }
  return LAMINA_ERROR;
}
#define LAMINA_LAYOUT_HOST_KERNEL(name)                                                         \
  inline lamina_status name(void*, const lamina_view* in, int32_t n_in, const lamina_view* out, \
                            int32_t n_out, const lamina_attrs* attrs, lamina_error* error) {    \
    return run(#name, in, n_in, out, n_out, attrs, error);                                      \
  }
LAMINA_LAYOUT_HOST_KERNEL(concat)
LAMINA_LAYOUT_HOST_KERNEL(slice)
LAMINA_LAYOUT_HOST_KERNEL(slice_backward)
LAMINA_LAYOUT_HOST_KERNEL(pad)
LAMINA_LAYOUT_HOST_KERNEL(transpose)
#undef LAMINA_LAYOUT_HOST_KERNEL
// The table entries of a host-memory backend for every layout op.
inline constexpr lamina_kernel kKernels[] = {{"concat", concat},
                                             {"slice", slice},
                                             {"slice_backward", slice_backward},
                                             {"pad", pad},
                                             {"transpose", transpose}};
}  // namespace host

// The layout ops, for kernel tables and checks.
inline constexpr const char* kOps[] = {"concat", "slice", "slice_backward", "pad", "transpose"};

}  // namespace lamina::sdk::layout
