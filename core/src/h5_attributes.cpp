// lamina::h5's attributes: reading and writing the attributes of groups and datasets in every
// encoding Keras and h5py use (h5.cpp has the files and datasets).
#include <lamina/h5.hpp>

#include "h5_support.hpp"

#include <hdf5.h>

#include <cstring>
#include <string>
#include <vector>

namespace lamina::h5 {

using namespace support;

// ------------------------------------------------------------------------------------------------
// attributes

namespace {

Hid open_object(hid_t file, const std::string& path, const std::string& object) {
  Hid o(H5Oopen(file, clean(object).c_str(), H5P_DEFAULT), H5Oclose);
  if (!o.ok()) throw Error(path + ": there is no group or dataset '" + clean(object) + "'" + hdf5_detail());
  return o;
}

Hid open_attribute(hid_t file, const std::string& path, const std::string& object, const std::string& name) {
  Hid o = open_object(file, path, object);
  htri_t has = H5Aexists(o.get(), name.c_str());
  if (has <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw Error(path + ": '" + clean(object) + "' has no attribute '" + name + "'");
  }
  Hid a(H5Aopen(o.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!a.ok())
    throw Error(path + ": cannot open attribute '" + name + "' of '" + clean(object) + "'" + hdf5_detail());
  return a;
}

// Creates (replacing) attribute `name` with the given type and space, then writes `data`.
void write_attribute(hid_t file, const std::string& path, const std::string& object, const std::string& name,
                     hid_t type, hid_t space, const void* data, hid_t memory_type) {
  Hid o = open_object(file, path, object);
  if (H5Aexists(o.get(), name.c_str()) > 0) H5Adelete(o.get(), name.c_str());
  H5Eclear2(H5E_DEFAULT);
  Hid a(H5Acreate2(o.get(), name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a.ok())
    throw Error(path + ": cannot create attribute '" + name + "' of '" + clean(object) + "'" + hdf5_detail());
  if (H5Sget_simple_extent_npoints(space) > 0 && H5Awrite(a.get(), memory_type, data) < 0)
    throw Error(path + ": cannot write attribute '" + name + "' of '" + clean(object) + "'" + hdf5_detail());
}

bool is_fixed(StringType t) {
  return t == StringType::fixed_ascii || t == StringType::fixed_utf8;
}
H5T_cset_t cset(StringType t) {
  return t == StringType::fixed_ascii || t == StringType::variable_ascii ? H5T_CSET_ASCII : H5T_CSET_UTF8;
}

// Strings from a fixed-length buffer: NULLTERM and NULLPAD end at the first NUL, SPACEPAD drops
// trailing spaces.
std::string fixed_item(const char* p, size_t size, H5T_str_t pad) {
  size_t n = 0;
  while (n < size && p[n] != '\0') ++n;
  std::string s(p, n);
  if (pad == H5T_STR_SPACEPAD)
    while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

bool File::has_attribute(const std::string& object, const std::string& name) const {
  if (!exists(object)) return false;
  Hid o = open_object(id_, path_, object);
  htri_t r = H5Aexists(o.get(), name.c_str());
  H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

std::vector<std::string> File::attributes(const std::string& object) const {
  Hid o = open_object(id_, path_, object);
  std::vector<std::string> names;
  H5Aiterate2(
      o.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->push_back(name);
        return 0;
      },
      &names);
  H5Eclear2(H5E_DEFAULT);
  return names;
}

void File::remove_attribute(const std::string& object, const std::string& name) {
  Hid o = open_object(id_, path_, object);
  if (H5Aexists(o.get(), name.c_str()) > 0 && H5Adelete(o.get(), name.c_str()) < 0)
    throw Error(path_ + ": cannot remove attribute '" + name + "' of '" + clean(object) + "'" +
                hdf5_detail());
  H5Eclear2(H5E_DEFAULT);
}

void File::set_attribute(const std::string& object, const std::string& name, const std::string& value,
                         StringType type) {
  if (is_fixed(type) && value.size() >= kAttributeLimit)
    type = cset(type) == H5T_CSET_ASCII ? StringType::variable_ascii : StringType::variable_utf8;
  Hid t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_cset(t.get(), cset(type));
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  if (is_fixed(type)) {
    H5Tset_size(t.get(), std::max<size_t>(value.size(), 1));
    H5Tset_strpad(t.get(), H5T_STR_NULLPAD);
    std::string padded = value;
    padded.resize(std::max<size_t>(value.size(), 1), '\0');
    write_attribute(id_, path_, object, name, t.get(), space.get(), padded.data(), t.get());
  } else {
    H5Tset_size(t.get(), H5T_VARIABLE);
    H5Tset_strpad(t.get(), H5T_STR_NULLTERM);
    const char* p = value.c_str();
    write_attribute(id_, path_, object, name, t.get(), space.get(), &p, t.get());
  }
}

void File::set_attribute(const std::string& object, const std::string& name,
                         const std::vector<std::string>& values, StringType type) {
  hsize_t n = values.size();
  if (values.empty()) {
    // What h5py writes for np.asarray([]), and what every Keras loader expects for "no weights".
    Hid space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    write_attribute(id_, path_, object, name, H5T_IEEE_F64LE, space.get(), nullptr, H5T_NATIVE_DOUBLE);
    return;
  }
  Hid space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Hid t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_cset(t.get(), cset(type));
  if (is_fixed(type)) {
    size_t width = 1;
    for (const auto& v : values) width = std::max(width, v.size());
    if (width * values.size() >= kAttributeLimit)
      throw Error(path_ + ": attribute '" + name + "' of '" + clean(object) + "' would take " +
                  std::to_string(width * values.size()) +
                  " bytes, more than an HDF5 object header holds (64 KB); split it into several attributes");
    H5Tset_size(t.get(), width);
    H5Tset_strpad(t.get(), H5T_STR_NULLPAD);
    std::vector<char> buffer(width * values.size(), '\0');
    for (size_t i = 0; i < values.size(); ++i)
      std::memcpy(buffer.data() + i * width, values[i].data(), values[i].size());
    write_attribute(id_, path_, object, name, t.get(), space.get(), buffer.data(), t.get());
  } else {
    H5Tset_size(t.get(), H5T_VARIABLE);
    H5Tset_strpad(t.get(), H5T_STR_NULLTERM);
    std::vector<const char*> pointers;
    for (const auto& v : values) pointers.push_back(v.c_str());
    write_attribute(id_, path_, object, name, t.get(), space.get(), pointers.data(), t.get());
  }
}

void File::set_attribute(const std::string& object, const std::string& name, double value) {
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  write_attribute(id_, path_, object, name, H5T_IEEE_F64LE, space.get(), &value, H5T_NATIVE_DOUBLE);
}
void File::set_attribute(const std::string& object, const std::string& name, int64_t value) {
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  write_attribute(id_, path_, object, name, H5T_STD_I64LE, space.get(), &value, H5T_NATIVE_INT64);
}
void File::set_attribute(const std::string& object, const std::string& name,
                         const std::vector<double>& values) {
  hsize_t n = values.size();
  Hid space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  write_attribute(id_, path_, object, name, H5T_IEEE_F64LE, space.get(), values.data(), H5T_NATIVE_DOUBLE);
}
void File::set_attribute(const std::string& object, const std::string& name,
                         const std::vector<int64_t>& values) {
  hsize_t n = values.size();
  Hid space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  write_attribute(id_, path_, object, name, H5T_STD_I64LE, space.get(), values.data(), H5T_NATIVE_INT64);
}

DatasetInfo File::attribute_info(const std::string& object, const std::string& name) const {
  Hid a = open_attribute(id_, path_, object, name);
  Hid type(H5Aget_type(a.get()), H5Tclose);
  Hid space(H5Aget_space(a.get()), H5Sclose);
  return {classify(type.get()), extent(space.get()), uint64_t(H5Aget_storage_size(a.get()))};
}

std::vector<std::string> File::strings_attribute(const std::string& object, const std::string& name) const {
  Hid a = open_attribute(id_, path_, object, name);
  Hid type(H5Aget_type(a.get()), H5Tclose);
  Hid space(H5Aget_space(a.get()), H5Sclose);
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0)
    throw Error(path_ + ": attribute '" + name + "' of '" + clean(object) + "' is damaged" + hdf5_detail());
  if (n == 0) return {};
  std::string where = path_ + ": attribute '" + name + "' of '" + clean(object) + "'";
  if (H5Tget_class(type.get()) != H5T_STRING)
    throw Error(where + " holds " + type_text(type.get()) + ", not text");
  std::vector<std::string> out;
  if (H5Tis_variable_str(type.get()) > 0) {
    check_global_heaps();
    Hid memory(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(memory.get(), H5T_VARIABLE);
    H5Tset_cset(memory.get(), H5Tget_cset(type.get()));
    std::vector<char*> pointers(static_cast<size_t>(n), nullptr);
    if (H5Aread(a.get(), memory.get(), pointers.data()) < 0)
      throw Error(where + ": cannot read it" + hdf5_detail());
    for (char* p : pointers) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(memory.get(), space.get(), H5P_DEFAULT, pointers.data());
  } else {
    size_t width = H5Tget_size(type.get());
    if (width == 0 || double(width) * double(n) > double(1u << 30))
      throw Error(where + " is damaged (bad string size)");
    std::vector<char> buffer(width * size_t(n));
    if (H5Aread(a.get(), type.get(), buffer.data()) < 0)
      throw Error(where + ": cannot read it" + hdf5_detail());
    H5T_str_t pad = H5Tget_strpad(type.get());
    for (hssize_t i = 0; i < n; ++i) out.push_back(fixed_item(buffer.data() + size_t(i) * width, width, pad));
  }
  return out;
}

std::string File::string_attribute(const std::string& object, const std::string& name) const {
  std::vector<std::string> v = strings_attribute(object, name);
  if (v.size() != 1)
    throw Error(path_ + ": attribute '" + name + "' of '" + clean(object) + "' holds " +
                std::to_string(v.size()) + " strings, expected one");
  return v[0];
}

std::vector<double> File::numbers_attribute(const std::string& object, const std::string& name) const {
  Hid a = open_attribute(id_, path_, object, name);
  Hid type(H5Aget_type(a.get()), H5Tclose);
  Hid space(H5Aget_space(a.get()), H5Sclose);
  std::string where = path_ + ": attribute '" + name + "' of '" + clean(object) + "'";
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) throw Error(where + " is damaged" + hdf5_detail());
  if (n == 0) return {};
  H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    throw Error(where + " holds " + type_text(type.get()) + ", not numbers");
  std::vector<double> out(static_cast<size_t>(n));
  if (H5Aread(a.get(), H5T_NATIVE_DOUBLE, out.data()) < 0)
    throw Error(where + ": cannot read it" + hdf5_detail());
  return out;
}

}  // namespace lamina::h5
