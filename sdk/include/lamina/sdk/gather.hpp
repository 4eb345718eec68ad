// gather (rows of a table picked by indices, as Embedding looks tokens up) and gather_backward (its
// gradient, the scatter-add of the rows' gradients): the shape rules, the index check and the host
// loops, written once for the core's fallback and the host-memory backends' kernels.
//
// Tensors are float32 only, so indices arrive as floats. Each must be a whole number in
// [0, rows): anything else is an error that names the position and the value, never a read outside
// the table. Float32 holds every whole number up to 2^24 exactly, far beyond any vocabulary.
//
// Depends only on the C ABI header and the standard library, so the core, plugins and CUDA host
// code can all include it. Errors are std::invalid_argument with a message for people.
#pragma once

#include <lamina/lamina_plugin.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace lamina::sdk::gather {

using Dims = std::vector<int64_t>;

inline std::string dims_string(const Dims& d) {
  std::string s = "(";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + (d.size() == 1 ? ",)" : ")");
}

// gather: table (rows, width), indices of any shape → indices' shape + (width,).
inline Dims gather_shape(const Dims& table, const Dims& indices) {
  if (table.size() != 2)
    throw std::invalid_argument("the table must have rank 2 (rows, width), got " + dims_string(table));
  if (indices.size() + 1 > LAMINA_MAX_DIMS)
    throw std::invalid_argument("indices of rank " + std::to_string(indices.size()) +
                                " leave no room for the row axis");
  Dims out = indices;
  out.push_back(table[1]);
  return out;
}

// gather_backward: dy (indices' shape + (width,)), indices → (rows, width).
inline Dims gather_backward_shape(const Dims& dy, const Dims& indices, int64_t rows) {
  if (rows < 1) throw std::invalid_argument("input_dim must be 1 or more, got " + std::to_string(rows));
  Dims expected = indices;
  if (dy.empty()) throw std::invalid_argument("dy must have rank 1 or more");
  expected.push_back(dy.back());
  if (expected != dy)
    throw std::invalid_argument("dy of shape " + dims_string(dy) + " does not fit indices of shape " +
                                dims_string(indices) + " (it must be the indices' shape plus the row width)");
  return {rows, dy.back()};
}

// The row `value` names, checked: a whole number in [0, rows).
inline int64_t row_of(float value, int64_t position, int64_t rows) {
  if (!(value >= 0.0f && value < float(rows)) || std::floor(value) != value) {
    char text[48];
    std::snprintf(text, sizeof text, "%.9g", double(value));
    throw std::invalid_argument("index " + std::string(text) + " at position " + std::to_string(position) +
                                " is not a whole number in [0, " + std::to_string(rows) +
                                "); every index must name a row of the table (e.g. a token below input_dim)");
  }
  return int64_t(value);
}

// y[p, :] = table[indices[p], :]
inline void gather_rows(const float* table, int64_t rows, int64_t width, const float* indices, int64_t n,
                        float* y) {
  for (int64_t p = 0; p < n; ++p)
    std::memcpy(y + p * width, table + row_of(indices[p], p, rows) * width, size_t(width) * sizeof(float));
}

// dtable = zeros(rows, width); dtable[indices[p], :] += dy[p, :], summed in double precision.
inline void scatter_add_rows(const float* dy, const float* indices, int64_t n, int64_t rows, int64_t width,
                             float* dtable) {
  std::vector<int64_t> at(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) at[size_t(p)] = row_of(indices[p], p, rows);  // all checked first
  std::vector<double> sum(size_t(rows * width), 0.0);
  for (int64_t p = 0; p < n; ++p) {
    double* row = sum.data() + at[size_t(p)] * width;
    for (int64_t k = 0; k < width; ++k) row[k] += double(dy[p * width + k]);
  }
  for (size_t i = 0; i < sum.size(); ++i) dtable[i] = float(sum[i]);
}

inline int64_t elements(const lamina_view& v) {
  int64_t n = 1;
  for (int32_t i = 0; i < v.ndim; ++i) n *= v.shape[i];
  return n;
}

// Kernels for host-memory backends, entered in a kernel table as they are (sdk::KernelEntries).
namespace host {
inline lamina_status fail(lamina_error* error, const char* op, const std::string& message) {
  if (error) {
    std::string text = std::string("op '") + op + "': " + message;
    std::strncpy(error->message, text.c_str(), sizeof(error->message) - 1);
    error->message[sizeof(error->message) - 1] = '\0';
  }
  return LAMINA_ERROR;
}
inline bool host_float(const lamina_view& v) {
  return v.dtype == LAMINA_DTYPE_FLOAT32 && (v.data || elements(v) == 0);
}

// gather(table, indices) → y
inline lamina_status gather(void*, const lamina_view* in, int32_t n_in, const lamina_view* out, int32_t n_out,
                            const lamina_attrs*, lamina_error* error) {
  try {
    if (n_in != 2 || n_out != 1)
      throw std::invalid_argument("takes a table and indices and gives one output");
    if (!host_float(in[0]) || !host_float(in[1]) || !host_float(out[0]))
      throw std::invalid_argument("expects float32 host tensors");
    if (in[0].ndim != 2) throw std::invalid_argument("the table must have rank 2");
    int64_t n = elements(in[1]);
    if (elements(out[0]) != n * in[0].shape[1]) throw std::invalid_argument("the output has the wrong size");
    gather_rows(static_cast<const float*>(in[0].data), in[0].shape[0], in[0].shape[1],
                static_cast<const float*>(in[1].data), n, static_cast<float*>(out[0].data));
    return LAMINA_OK;
  } catch (const std::exception& e) {
    return fail(error, "gather", e.what());
  }
}

// gather_backward(dy, indices) → dtable (rows, width)
inline lamina_status gather_backward(void*, const lamina_view* in, int32_t n_in, const lamina_view* out,
                                     int32_t n_out, const lamina_attrs*, lamina_error* error) {
  try {
    if (n_in != 2 || n_out != 1) throw std::invalid_argument("takes dy and indices and gives one output");
    if (!host_float(in[0]) || !host_float(in[1]) || !host_float(out[0]))
      throw std::invalid_argument("expects float32 host tensors");
    if (out[0].ndim != 2) throw std::invalid_argument("the output must have rank 2");
    int64_t n = elements(in[1]), rows = out[0].shape[0], width = out[0].shape[1];
    if (elements(in[0]) != n * width) throw std::invalid_argument("dy has the wrong size");
    scatter_add_rows(static_cast<const float*>(in[0].data), static_cast<const float*>(in[1].data), n, rows,
                     width, static_cast<float*>(out[0].data));
    return LAMINA_OK;
  } catch (const std::exception& e) {
    return fail(error, "gather_backward", e.what());
  }
}

inline constexpr lamina_kernel kKernels[] = {{"gather", gather}, {"gather_backward", gather_backward}};
}  // namespace host

}  // namespace lamina::sdk::gather
