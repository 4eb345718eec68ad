// lamina::h5 — named arrays and attributes in HDF5 files, the format Keras and h5py use.
//
//   h5::File f("data.h5", h5::File::create);
//   f.write("x", pixels, {10000, 28, 28});                // uint8, float, double, int32, int64
//   f.set_attribute("x", "source", "MNIST t10k");
//   h5::File g("data.h5");
//   std::vector<float> rows = g.read_rows<float>("x", 0, 128);   // the first 128 rows only
//
// Every failure throws lamina::Error naming the file, the object and what HDF5 reported.
#pragma once

#include <lamina/tensor.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace lamina::h5 {

enum class DType { float32, float64, uint8, int32, int64, string, other };
std::string dtype_name(DType dtype);  // "float32", ...

// How a string attribute is stored. h5py reads fixed-length strings as bytes in every version and
// variable-length ones as str, which old Keras releases cannot decode; hence the fixed default.
enum class StringType { fixed_ascii, fixed_utf8, variable_ascii, variable_utf8 };

struct DatasetInfo {
  DType dtype = DType::other;
  Shape shape;                // () for a scalar
  uint64_t stored_bytes = 0;  // what the file holds of it (less than the full size when damaged)
};

class File {
 public:
  enum Mode {
    read_only,
    read_write,
    create,            // truncates an existing file
    create_exclusive,  // fails if the file exists
  };
  File() = default;
  explicit File(const std::string& path, Mode mode = read_only);
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  const std::string& path() const { return path_; }
  bool is_open() const { return id_ >= 0; }
  // Flushes and closes; throws if HDF5 could not write everything (the destructor cannot report).
  void close();

  // Objects: "a/b/c" paths relative to the root; "/" or "" is the root group.
  bool exists(const std::string& object) const;  // false, not an error, when a parent is missing
  bool is_group(const std::string& object) const;
  bool is_dataset(const std::string& object) const;
  std::vector<std::string> children(const std::string& group = "/") const;  // names, in HDF5's order
  // Where the object's header lies in the file: paths with the same address name one object (hard
  // links, including a group linked into itself). Throws when the object cannot be read.
  uint64_t object_address(const std::string& object) const;
  void create_group(const std::string& group);  // parents too; no-op if present

  // Datasets. Writing creates missing parent groups and replaces nothing: an existing name is an
  // error. Reading converts from any stored integer or float type to T.
  DatasetInfo info(const std::string& dataset) const;
  template <class T>
  void write(const std::string& dataset, const T* data, const Shape& shape);
  template <class T>
  void write(const std::string& dataset, const std::vector<T>& data, const Shape& shape) {
    check_size(dataset, data.size(), shape);
    write(dataset, data.data(), shape);
  }
  void write(const std::string& dataset, const Tensor& tensor);  // float32, the tensor's shape
  template <class T>
  std::vector<T> read(const std::string& dataset, Shape* shape = nullptr) const;
  // Rows [begin, end) along the first axis (a hyperslab): only those bytes are read.
  template <class T>
  std::vector<T> read_rows(const std::string& dataset, int64_t begin, int64_t end,
                           Shape* shape = nullptr) const;
  Tensor read_tensor(const std::string& dataset) const;  // float32
  Tensor read_tensor_rows(const std::string& dataset, int64_t begin, int64_t end) const;
  // A dataset whose rows are written piece by piece with write_rows (outputs larger than memory).
  void create_dataset(const std::string& dataset, DType dtype, const Shape& shape);
  template <class T>
  void write_rows(const std::string& dataset, int64_t begin, const T* data, int64_t rows);

  // Attributes of a group or dataset ("/" is the file's root).
  bool has_attribute(const std::string& object, const std::string& name) const;
  std::vector<std::string> attributes(const std::string& object) const;
  void remove_attribute(const std::string& object, const std::string& name);
  // Replaces an attribute of the same name. A fixed-length string longer than HDF5's 64 KB
  // object-header limit is stored variable-length instead.
  void set_attribute(const std::string& object, const std::string& name, const std::string& value,
                     StringType type = StringType::fixed_utf8);
  void set_attribute(const std::string& object, const std::string& name, const char* value,
                     StringType type = StringType::fixed_utf8) {
    set_attribute(object, name, std::string(value), type);
  }
  // A 1-D string array; an empty list is stored as Keras/h5py store it: float64, shape (0,).
  void set_attribute(const std::string& object, const std::string& name,
                     const std::vector<std::string>& values, StringType type = StringType::fixed_ascii);
  void set_attribute(const std::string& object, const std::string& name, double value);
  void set_attribute(const std::string& object, const std::string& name, int64_t value);
  void set_attribute(const std::string& object, const std::string& name, const std::vector<double>& values);
  void set_attribute(const std::string& object, const std::string& name, const std::vector<int64_t>& values);
  // Strings of any kind (fixed or variable length, ASCII or UTF-8), scalar or 1-D; a zero-length
  // attribute of any type is an empty list.
  std::string string_attribute(const std::string& object, const std::string& name) const;
  std::vector<std::string> strings_attribute(const std::string& object, const std::string& name) const;
  std::vector<double> numbers_attribute(const std::string& object, const std::string& name) const;
  DatasetInfo attribute_info(const std::string& object, const std::string& name) const;

  // The raw HDF5 file id, for code that needs the C API directly.
  int64_t id() const { return id_; }

 private:
  void check_size(const std::string& dataset, size_t count, const Shape& shape) const;
  void check_global_heaps() const;
  int64_t id_ = -1;
  std::string path_;
  mutable bool heaps_checked_ = false;
};

// libhdf5 1.10 itself crashes or loops on some damaged files (its own C code, which no check
// beforehand catches). So before a file is first opened for reading, a child process (fork) opens it
// and reads every group, attribute and dataset; if the child dies by a signal or does not finish
// within the time limit, opening throws lamina::Error ("libhdf5 crashed reading FILE (signal N)...")
// and the process goes on. A file is probed once per process (by device, inode, size and mtime).
// On by default; LAMINA_H5_PROBE=0 or set_probe(false) turns it off, LAMINA_H5_PROBE_TIMEOUT (seconds)
// sets the limit (default: 30 s plus 1 s per 64 MB). docs/reliability.md has the measurements.
void set_probe(bool enabled);
bool probe_enabled();
// Probes `path` now (whether or not probing is on); throws as opening would.
void probe(const std::string& path);

// Writes `path` all or nothing: the data goes to a temporary file beside it, and commit() flushes
// it to disk and renames it over `path`. Without commit() (an exception on the way) the temporary
// file is removed and an existing `path` is left as it was.
class AtomicWrite {
 public:
  explicit AtomicWrite(const std::string& path);
  AtomicWrite(const AtomicWrite&) = delete;
  AtomicWrite& operator=(const AtomicWrite&) = delete;
  ~AtomicWrite();
  File& file() { return file_; }
  void commit();

 private:
  std::string path_, temp_;
  File file_;
  bool committed_ = false;
};

// True when `path` starts with the HDF5 signature (the cheap check before opening).
bool is_hdf5(const std::string& path);

}  // namespace lamina::h5
