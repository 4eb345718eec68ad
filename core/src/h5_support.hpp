// Helpers the lamina::h5 sources share (h5.cpp, h5_attributes.cpp): quiet libhdf5, its error
// messages, an owning identifier, type mapping and extents. Internal to the core.
#pragma once

#include <lamina/error.hpp>
#include <lamina/h5.hpp>

#include <hdf5.h>

#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lamina::h5::support {

// An HDF5 attribute lives in its object's header, which holds at most 64 KB with the default format.
inline constexpr size_t kAttributeLimit = 64512;

// Reads larger than this much more than the bytes a chunked (possibly compressed) dataset stores
// are refused: a damaged or hostile file must not make lamina allocate terabytes.
inline constexpr double kMaxExpansion = 1024.0;
inline constexpr uint64_t kExpansionSlack = uint64_t(64) << 20;

inline void quiet_hdf5() {
  // HDF5 prints its error stack to stderr by default; lamina reports errors itself.
  static std::once_flag once;
  std::call_once(once, [] {
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

// The most specific messages of HDF5's error stack, then clears it.
inline std::string hdf5_detail() {
  std::vector<std::string> messages;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
        auto* out = static_cast<std::vector<std::string>*>(data);
        if (e->desc && *e->desc && out->size() < 2) {
          std::string d = e->desc;
          if (out->empty() || out->back() != d) out->push_back(d);
        }
        return 0;
      },
      &messages);
  H5Eclear2(H5E_DEFAULT);
  if (messages.empty()) return "";
  std::string s = " (HDF5: " + messages[0];
  if (messages.size() > 1) s += "; " + messages[1];
  return s + ")";
}

// Owns one HDF5 identifier.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Hid(Hid&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Hid& operator=(Hid&& o) noexcept {
    std::swap(id_, o.id_);
    std::swap(close_, o.close_);
    return *this;
  }
  ~Hid() {
    if (id_ >= 0 && close_) close_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

inline std::string clean(const std::string& object) {
  if (object.empty() || object == "/" || object == ".") return "/";
  return object;
}

inline std::string shape_text(const Shape& s) {
  std::string t = "(";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + (s.size() == 1 ? ",)" : ")");
}

template <class T>
hid_t memory_type();
template <>
inline hid_t memory_type<float>() {
  return H5T_NATIVE_FLOAT;
}
template <>
inline hid_t memory_type<double>() {
  return H5T_NATIVE_DOUBLE;
}
template <>
inline hid_t memory_type<uint8_t>() {
  return H5T_NATIVE_UINT8;
}
template <>
inline hid_t memory_type<int32_t>() {
  return H5T_NATIVE_INT32;
}
template <>
inline hid_t memory_type<int64_t>() {
  return H5T_NATIVE_INT64;
}

// Little-endian on disk, as numpy and Keras write.
inline hid_t file_type(DType d) {
  switch (d) {
    case DType::float32:
      return H5T_IEEE_F32LE;
    case DType::float64:
      return H5T_IEEE_F64LE;
    case DType::uint8:
      return H5T_STD_U8LE;
    case DType::int32:
      return H5T_STD_I32LE;
    case DType::int64:
      return H5T_STD_I64LE;
    default:
      throw Error("h5: datasets of type " + dtype_name(d) + " cannot be created");
  }
}
template <class T>
DType dtype_of();
template <>
inline DType dtype_of<float>() {
  return DType::float32;
}
template <>
inline DType dtype_of<double>() {
  return DType::float64;
}
template <>
inline DType dtype_of<uint8_t>() {
  return DType::uint8;
}
template <>
inline DType dtype_of<int32_t>() {
  return DType::int32;
}
template <>
inline DType dtype_of<int64_t>() {
  return DType::int64;
}

inline DType classify(hid_t type) {
  size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      return size == 4 ? DType::float32 : size == 8 ? DType::float64 : DType::other;
    case H5T_INTEGER: {
      bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
      if (!is_signed && size == 1) return DType::uint8;
      if (is_signed && size == 4) return DType::int32;
      if (is_signed && size == 8) return DType::int64;
      return DType::other;
    }
    case H5T_STRING:
      return DType::string;
    default:
      return DType::other;
  }
}

inline std::string type_text(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      return "float" + std::to_string(8 * H5Tget_size(type));
    case H5T_INTEGER:
      return std::string(H5Tget_sign(type) == H5T_SGN_2 ? "int" : "uint") +
             std::to_string(8 * H5Tget_size(type));
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "a compound type";
    case H5T_VLEN:
      return "a variable-length sequence";
    case H5T_ARRAY:
      return "an array type";
    case H5T_ENUM:
      return "an enum";
    case H5T_REFERENCE:
      return "references";
    case H5T_OPAQUE:
      return "opaque bytes";
    default:
      return "an unknown type";
  }
}

inline Shape extent(hid_t space) {
  int n = H5Sget_simple_extent_ndims(space);
  if (n < 0) return {};
  std::vector<hsize_t> dims(static_cast<size_t>(n));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  Shape s;
  for (hsize_t d : dims) s.push_back(d > hsize_t(std::numeric_limits<int64_t>::max()) ? -1 : int64_t(d));
  return s;
}

// Element count, or -1 when it overflows (a damaged header).
inline int64_t checked_count(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

}  // namespace lamina::h5::support
