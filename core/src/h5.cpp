// lamina::h5 on libhdf5's C API. Files are written with HDF5's default (earliest) format, the one
// h5py and therefore Keras write, so every Keras and h5py version reads them.
#include <lamina/h5.hpp>

#include "child.hpp"
#include "h5_support.hpp"

#include <hdf5.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>
#include <set>

namespace lamina::h5 {

using namespace support;

namespace {

std::atomic<uint64_t> temp_counter{0};

}  // namespace

std::string dtype_name(DType dtype) {
  switch (dtype) {
    case DType::float32:
      return "float32";
    case DType::float64:
      return "float64";
    case DType::uint8:
      return "uint8";
    case DType::int32:
      return "int32";
    case DType::int64:
      return "int64";
    case DType::string:
      return "string";
    default:
      return "other";
  }
}

bool is_hdf5(const std::string& path) {
  quiet_hdf5();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  htri_t r = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

// ------------------------------------------------------------------------------------------------
// The probe: reading an untrusted file in a child process first

namespace {

struct ProbedFile {
  dev_t device;
  ino_t inode;
  off_t size;
  int64_t mtime_ns;
  bool operator==(const ProbedFile&) const = default;
};

std::mutex probe_mutex;
std::vector<ProbedFile> probed_files;  // files whose probe passed, in this process
int probe_setting = -1;                // -1: not decided yet (LAMINA_H5_PROBE decides)
bool in_probe_child = false;           // set in the child: it opens files without probing them

// Reads everything the loaders could read: every attribute of every object as strings or numbers,
// every numeric dataset as float in bounded row blocks. Errors HDF5 reports are fine here (the
// reader in the parent reports them where they matter); only a crash or a hang is what the probe is
// for, so each object is tried on its own and the walk goes on. Each object is read once, however
// many links lead to it: a group linked into itself, a few times over, would otherwise make the
// walk exponential in its depth.
void walk(const File& f, const std::string& object, int depth, std::set<uint64_t>& visited) {
  if (depth > 64) return;
  try {
    if (!visited.insert(f.object_address(object)).second) return;
  } catch (const Error&) {
    return;
  }
  try {
    for (const std::string& a : f.attributes(object)) {
      try {
        DType t = f.attribute_info(object, a).dtype;
        if (t == DType::string)
          f.strings_attribute(object, a);
        else
          f.numbers_attribute(object, a);
      } catch (const Error&) {
      }
    }
  } catch (const Error&) {
  }
  try {
    if (f.is_dataset(object)) {
      DatasetInfo info = f.info(object);
      if (info.dtype == DType::string || info.dtype == DType::other) return;
      if (info.shape.empty()) {
        f.read<float>(object);
        return;
      }
      int64_t rows = info.shape[0], row = 1;
      for (size_t i = 1; i < info.shape.size(); ++i)
        row = info.shape[i] > 0 ? std::min<int64_t>(row * info.shape[i], int64_t(1) << 40) : 0;
      int64_t block = std::max<int64_t>(1, (int64_t(16) << 20) / std::max<int64_t>(row, 1));
      for (int64_t b = 0; b < rows; b += block) f.read_rows<float>(object, b, std::min(rows, b + block));
      return;
    }
    if (!f.is_group(object)) return;
    std::string prefix = object == "/" ? "" : object + "/";
    for (const std::string& child : f.children(object)) walk(f, prefix + child, depth + 1, visited);
  } catch (const Error&) {
  }
}

std::optional<ProbedFile> identify(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return ProbedFile{st.st_dev, st.st_ino, st.st_size,
                    int64_t(st.st_mtim.tv_sec) * 1000000000 + int64_t(st.st_mtim.tv_nsec)};
}

double probe_timeout(off_t size) {
  if (const char* t = std::getenv("LAMINA_H5_PROBE_TIMEOUT")) {
    char* end = nullptr;
    double v = std::strtod(t, &end);
    if (end != t && v > 0) return v;
  }
  return 30.0 + double(size) / double(64 << 20);
}

}  // namespace

void set_probe(bool enabled) {
  std::lock_guard lock(probe_mutex);
  probe_setting = enabled ? 1 : 0;
}

bool probe_enabled() {
  std::lock_guard lock(probe_mutex);
  if (probe_setting < 0) {
    const char* e = std::getenv("LAMINA_H5_PROBE");
    probe_setting = !(e && (std::string(e) == "0" || std::string(e) == "off" || std::string(e) == "false"));
  }
  return probe_setting == 1;
}

void probe(const std::string& path) {
  if (in_probe_child) return;
  std::optional<ProbedFile> id = identify(path);
  if (!id) return;  // opening reports it
  {
    std::lock_guard lock(probe_mutex);
    if (std::find(probed_files.begin(), probed_files.end(), *id) != probed_files.end()) return;
  }
  quiet_hdf5();
  const double limit = probe_timeout(id->size);
  ChildOutcome outcome = run_in_child(
      [&] {
        in_probe_child = true;
        File f(path, File::read_only);
        std::set<uint64_t> visited;
        walk(f, "/", 0, visited);
      },
      limit);
  if (outcome.verdict == ChildOutcome::timed_out) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.0f", limit);
    throw Error(path + ": libhdf5 did not finish reading the file within " + seconds +
                " s (checked in a separate process); the file is corrupt (libhdf5 loops on it) or very "
                "large on a slow disk — LAMINA_H5_PROBE_TIMEOUT=SECONDS allows more time");
  }
  if (outcome.verdict == ChildOutcome::signalled || outcome.verdict == ChildOutcome::exited)
    throw Error(
        path + ": libhdf5 crashed reading the file (" + outcome.description +
        ", in a separate process that checks files first): the file is corrupt; lamina did not read it");
  if (outcome.verdict != ChildOutcome::ok) return;  // no verdict: read in-process, as without the probe
  std::lock_guard lock(probe_mutex);
  probed_files.push_back(*id);
}

// ------------------------------------------------------------------------------------------------
// File

File::File(const std::string& path, Mode mode) : path_(path) {
  quiet_hdf5();
  namespace fs = std::filesystem;
  std::error_code ec;
  if (mode == read_only || mode == read_write) {
    if (!fs::exists(path, ec)) throw Error(path + ": the file does not exist");
    if (fs::is_directory(path, ec)) throw Error(path + ": is a folder, not an HDF5 file");
    if (!is_hdf5(path)) {
      char head[8] = {};
      std::ifstream in(path, std::ios::binary);
      in.read(head, sizeof head);
      auto size = fs::file_size(path, ec);
      std::string why = " is not an HDF5 file (no HDF5 signature)";
      if (!ec && size == 0)
        why = " is empty, not an HDF5 file";
      else if (std::memcmp(head, "PK\x03\x04", 4) == 0)
        why +=
            "; it is a zip archive, like Keras 3's .keras format, which lamina does not read — in Keras, "
            "save with model.save(\"model.h5\") instead";
      else if (head[0] == '{')
        why += "; it looks like JSON text (a model config can be read with model_from_json)";
      throw Error(path + why);
    }
    if (!in_probe_child && probe_enabled()) probe(path);
  } else {
    fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw Error("cannot create " + path + ": the folder " + parent.string() + " does not exist");
  }
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // Closing the file closes everything in it, so a rename after close() sees a complete file.
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  // Lock as HDF5 does, but still open files on file systems without locks (NFS, some containers).
  H5Pset_file_locking(fapl.get(), 1, 1);
  switch (mode) {
    case read_only:
      id_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
      break;
    case read_write:
      id_ = H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get());
      break;
    case create:
      id_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
      break;
    case create_exclusive:
      id_ = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get());
      break;
  }
  if (id_ < 0) {
    std::string detail = hdf5_detail();
    if (detail.find("lock the file") != std::string::npos || detail.find("lock file") != std::string::npos)
      throw Error(path + ": cannot open the HDF5 file; another program has it open for writing" + detail);
    if (mode == read_only || mode == read_write)
      throw Error(path + ": cannot open the HDF5 file; it is truncated or damaged" + detail);
    throw Error("cannot create " + path + detail);
  }
}

File::File(File&& other) noexcept
    : id_(other.id_), path_(std::move(other.path_)), heaps_checked_(other.heaps_checked_) {
  other.id_ = -1;
}
File& File::operator=(File&& other) noexcept {
  std::swap(id_, other.id_);
  std::swap(path_, other.path_);
  std::swap(heaps_checked_, other.heaps_checked_);
  return *this;
}

// Variable-length strings live in "global heap collections". HDF5 1.10 trusts the object sizes
// stored there and copies that many bytes into a buffer sized from elsewhere, so one damaged size
// field crashes the process. Before the first variable-length read, every collection in the file
// is walked the way HDF5 parses it; the objects must tile it exactly.
void File::check_global_heaps() const {
  if (heaps_checked_) return;
  std::ifstream in(path_, std::ios::binary);
  if (!in) return;  // HDF5 has it open; nothing to check against
  in.seekg(0, std::ios::end);
  const uint64_t file_size = uint64_t(in.tellg());
  auto read_at = [&](uint64_t offset, size_t n, std::vector<unsigned char>& out) {
    out.assign(n, 0);
    in.clear();
    in.seekg(std::streamoff(offset));
    in.read(reinterpret_cast<char*>(out.data()), std::streamsize(n));
    return size_t(in.gcount()) == n;
  };
  auto u64 = [](const unsigned char* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  };
  // The check assumes 8-byte lengths (what h5py and lamina write); the superblock says.
  std::vector<unsigned char> head;
  bool eight = false;
  for (uint64_t base : {0ull, 512ull, 1024ull, 2048ull, 4096ull})
    if (read_at(base, 16, head) && std::memcmp(head.data(), "\x89HDF\r\n\x1a\n", 8) == 0) {
      eight = head[8] <= 1 ? head[14] == 8 : head[10] == 8;
      break;
    }
  if (!eight) {
    heaps_checked_ = true;
    return;
  }
  const std::string damaged = path_ +
                              ": the file is damaged (a global heap collection, where variable-length "
                              "strings are kept, is inconsistent); it cannot be read safely";
  constexpr size_t kBlock = size_t(16) << 20;
  std::vector<unsigned char> block, collection;
  for (uint64_t start = 0; start < file_size; start += kBlock) {
    size_t n = size_t(std::min<uint64_t>(kBlock + 15, file_size - start));
    read_at(start, n, block);
    for (size_t i = 0; i + 16 <= n && i < kBlock; ++i) {
      if (block[i] != 'G' || std::memcmp(&block[i], "GCOL\x01\0\0\0", 8) != 0) continue;
      uint64_t at = start + i, size = u64(&block[i + 8]);
      if (size < 16 + 16 || size > file_size - at) throw Error(damaged);
      if (!read_at(at, size_t(size), collection)) throw Error(damaged);
      uint64_t p = 16;
      while (p < size) {
        if (p + 16 > size) break;  // too small for an object header: free space, as HDF5 reads it
        unsigned index = unsigned(collection[p]) | unsigned(collection[p + 1]) << 8;
        uint64_t object = u64(&collection[p + 8]);
        if (object > size) throw Error(damaged);
        uint64_t need = index == 0 ? object : 16 + (object + 7) / 8 * 8;
        if (need == 0 || need > size - p) throw Error(damaged);
        p += need;
      }
    }
  }
  heaps_checked_ = true;
}
File::~File() {
  if (id_ >= 0) H5Fclose(id_);
  H5Eclear2(H5E_DEFAULT);
}

void File::close() {
  if (id_ < 0) return;
  hid_t id = id_;
  id_ = -1;
  herr_t a = H5Fflush(id, H5F_SCOPE_LOCAL);
  herr_t b = H5Fclose(id);
  if (a < 0 || b < 0) throw Error(path_ + ": writing the file failed" + hdf5_detail());
}

bool File::exists(const std::string& object) const {
  std::string p = clean(object);
  if (p == "/") return true;
  // H5Lexists fails rather than returning false when a parent is missing, so walk the path.
  std::string prefix;
  size_t start = p[0] == '/' ? 1 : 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    std::string part = p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!part.empty()) {
      prefix += (prefix.empty() ? "" : "/") + part;
      htri_t r = H5Lexists(id_, prefix.c_str(), H5P_DEFAULT);
      if (r <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
      if (slash != std::string::npos) {
        H5O_info_t info;
        if (H5Oget_info_by_name(id_, prefix.c_str(), &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_GROUP) {
          H5Eclear2(H5E_DEFAULT);
          return false;
        }
      }
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  htri_t r = H5Oexists_by_name(id_, p.c_str(), H5P_DEFAULT);
  H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

static int object_type(hid_t file, const std::string& p) {
  H5O_info_t info;
  if (H5Oget_info_by_name(file, p.c_str(), &info, H5P_DEFAULT) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return -1;
  }
  return info.type;
}

uint64_t File::object_address(const std::string& object) const {
  H5O_info_t info;
  if (H5Oget_info_by_name(id_, clean(object).c_str(), &info, H5P_DEFAULT) < 0)
    throw Error(path_ + ": cannot read the object '" + clean(object) + "'" + hdf5_detail());
  return uint64_t(info.addr);
}

bool File::is_group(const std::string& object) const {
  return exists(object) && object_type(id_, clean(object)) == H5O_TYPE_GROUP;
}
bool File::is_dataset(const std::string& object) const {
  return exists(object) && object_type(id_, clean(object)) == H5O_TYPE_DATASET;
}

std::vector<std::string> File::children(const std::string& group) const {
  if (!is_group(group)) throw Error(path_ + ": there is no group '" + clean(group) + "'");
  std::vector<std::string> names;
  herr_t r = H5Literate_by_name(
      id_, clean(group).c_str(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->push_back(name);
        return 0;
      },
      &names, H5P_DEFAULT);
  if (r < 0) throw Error(path_ + ": cannot list group '" + clean(group) + "'" + hdf5_detail());
  return names;
}

void File::create_group(const std::string& group) {
  if (exists(group)) {
    if (!is_group(group)) throw Error(path_ + ": '" + group + "' exists and is not a group");
    return;
  }
  Hid lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Hid g(H5Gcreate2(id_, clean(group).c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!g.ok()) throw Error(path_ + ": cannot create group '" + group + "'" + hdf5_detail());
}

// ------------------------------------------------------------------------------------------------
// datasets

void File::check_size(const std::string& dataset, size_t count, const Shape& shape) const {
  if (checked_count(shape) != int64_t(count))
    throw Error(path_ + ": dataset '" + dataset + "': " + std::to_string(count) +
                " values do not fill shape " + shape_text(shape));
}

DatasetInfo File::info(const std::string& dataset) const {
  if (!is_dataset(dataset)) throw Error(path_ + ": there is no dataset '" + dataset + "'");
  Hid d(H5Dopen2(id_, clean(dataset).c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.ok()) throw Error(path_ + ": cannot open dataset '" + dataset + "'" + hdf5_detail());
  Hid type(H5Dget_type(d.get()), H5Tclose);
  Hid space(H5Dget_space(d.get()), H5Sclose);
  return {classify(type.get()), extent(space.get()), uint64_t(H5Dget_storage_size(d.get()))};
}

template <class T>
void File::write(const std::string& dataset, const T* data, const Shape& shape) {
  create_dataset(dataset, dtype_of<T>(), shape);
  if (checked_count(shape) == 0) return;
  Hid d(H5Dopen2(id_, clean(dataset).c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.ok() || H5Dwrite(d.get(), memory_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw Error(path_ + ": cannot write dataset '" + dataset + "'" + hdf5_detail());
}

void File::write(const std::string& dataset, const Tensor& tensor) {
  std::vector<float> v = tensor.to_vector();
  write(dataset, v, tensor.shape());
}

void File::create_dataset(const std::string& dataset, DType dtype, const Shape& shape) {
  if (exists(dataset)) throw Error(path_ + ": dataset '" + dataset + "' already exists");
  if (checked_count(shape) < 0)
    throw Error(path_ + ": dataset '" + dataset + "': bad shape " + shape_text(shape));
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Hid space(shape.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
            H5Sclose);
  Hid lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Hid d(H5Dcreate2(id_, clean(dataset).c_str(), file_type(dtype), space.get(), lcpl.get(), H5P_DEFAULT,
                   H5P_DEFAULT),
        H5Dclose);
  if (!d.ok()) throw Error(path_ + ": cannot create dataset '" + dataset + "'" + hdf5_detail());
}

template <class T>
void File::write_rows(const std::string& dataset, int64_t begin, const T* data, int64_t rows) {
  if (!is_dataset(dataset)) throw Error(path_ + ": there is no dataset '" + dataset + "'");
  Hid d(H5Dopen2(id_, clean(dataset).c_str(), H5P_DEFAULT), H5Dclose);
  Hid space(H5Dget_space(d.get()), H5Sclose);
  Shape s = extent(space.get());
  if (s.empty() || begin < 0 || rows < 0 || begin + rows > s[0])
    throw Error(path_ + ": dataset '" + dataset + "' of shape " + shape_text(s) + " has no rows [" +
                std::to_string(begin) + ", " + std::to_string(begin + rows) + ")");
  if (rows == 0) return;
  std::vector<hsize_t> start(s.size(), 0), count(s.begin(), s.end());
  start[0] = hsize_t(begin);
  count[0] = hsize_t(rows);
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  Hid memory(H5Screate_simple(int(count.size()), count.data(), nullptr), H5Sclose);
  if (H5Dwrite(d.get(), memory_type<T>(), memory.get(), space.get(), H5P_DEFAULT, data) < 0)
    throw Error(path_ + ": cannot write rows of dataset '" + dataset + "'" + hdf5_detail());
}

namespace {

// Opens a numeric dataset for reading and checks that reading `count` elements is sane.
struct OpenedDataset {
  Hid dataset, space;
  Shape shape;
};

OpenedDataset open_numeric(hid_t file, const std::string& path, const std::string& name) {
  OpenedDataset o;
  o.dataset = Hid(H5Dopen2(file, clean(name).c_str(), H5P_DEFAULT), H5Dclose);
  if (!o.dataset.ok()) throw Error(path + ": cannot open dataset '" + name + "'" + hdf5_detail());
  Hid type(H5Dget_type(o.dataset.get()), H5Tclose);
  H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    throw Error(path + ": dataset '" + name + "' holds " + type_text(type.get()) + ", not numbers");
  o.space = Hid(H5Dget_space(o.dataset.get()), H5Sclose);
  if (H5Sget_simple_extent_type(o.space.get()) == H5S_NULL)
    throw Error(path + ": dataset '" + name + "' has no data (null dataspace)");
  o.shape = extent(o.space.get());
  int64_t count = checked_count(o.shape);
  if (count < 0) throw Error(path + ": dataset '" + name + "' has an impossible shape (damaged file)");
  double bytes = double(count) * double(H5Tget_size(type.get()));
  hsize_t stored = H5Dget_storage_size(o.dataset.get());
  Hid dcpl(H5Dget_create_plist(o.dataset.get()), H5Pclose);
  H5D_layout_t layout = H5Pget_layout(dcpl.get());
  if (count > 0 && stored == 0)
    throw Error(path + ": dataset '" + name + "' of shape " + shape_text(o.shape) + " has no data stored");
  if (layout == H5D_CONTIGUOUS && double(stored) < bytes)
    throw Error(path + ": dataset '" + name + "' of shape " + shape_text(o.shape) + " needs " +
                std::to_string(uint64_t(bytes)) + " bytes but the file stores " + std::to_string(stored) +
                " (truncated or damaged file)");
  if (layout == H5D_CHUNKED && bytes > double(stored) * kMaxExpansion + double(kExpansionSlack))
    throw Error(path + ": dataset '" + name + "' declares shape " + shape_text(o.shape) +
                ", far more than the file stores; refusing to read it (damaged file?)");
  return o;
}

}  // namespace

template <class T>
std::vector<T> File::read(const std::string& dataset, Shape* shape) const {
  if (!is_dataset(dataset)) throw Error(path_ + ": there is no dataset '" + dataset + "'");
  OpenedDataset o = open_numeric(id_, path_, dataset);
  std::vector<T> out(size_t(checked_count(o.shape)));
  if (!out.empty() &&
      H5Dread(o.dataset.get(), memory_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw Error(path_ + ": cannot read dataset '" + dataset + "'" + hdf5_detail());
  if (shape) *shape = o.shape;
  return out;
}

template <class T>
std::vector<T> File::read_rows(const std::string& dataset, int64_t begin, int64_t end, Shape* shape) const {
  if (!is_dataset(dataset)) throw Error(path_ + ": there is no dataset '" + dataset + "'");
  OpenedDataset o = open_numeric(id_, path_, dataset);
  if (o.shape.empty()) throw Error(path_ + ": dataset '" + dataset + "' is a scalar; it has no rows");
  if (begin < 0 || end < begin || end > o.shape[0])
    throw Error(path_ + ": dataset '" + dataset + "' has " + std::to_string(o.shape[0]) + " rows; rows [" +
                std::to_string(begin) + ", " + std::to_string(end) + ") do not exist");
  Shape s = o.shape;
  s[0] = end - begin;
  std::vector<T> out(size_t(checked_count(s)));
  if (!out.empty()) {
    std::vector<hsize_t> start(s.size(), 0), count(s.begin(), s.end());
    start[0] = hsize_t(begin);
    H5Sselect_hyperslab(o.space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    Hid memory(H5Screate_simple(int(count.size()), count.data(), nullptr), H5Sclose);
    if (H5Dread(o.dataset.get(), memory_type<T>(), memory.get(), o.space.get(), H5P_DEFAULT, out.data()) < 0)
      throw Error(path_ + ": cannot read rows of dataset '" + dataset + "'" + hdf5_detail());
  }
  if (shape) *shape = s;
  return out;
}

Tensor File::read_tensor(const std::string& dataset) const {
  Shape s;
  std::vector<float> v = read<float>(dataset, &s);
  return Tensor::from_vector(v, s);
}

Tensor File::read_tensor_rows(const std::string& dataset, int64_t begin, int64_t end) const {
  Shape s;
  std::vector<float> v = read_rows<float>(dataset, begin, end, &s);
  return Tensor::from_vector(v, s);
}

#define LAMINA_H5_TYPES(X) X(float) X(double) X(uint8_t) X(int32_t) X(int64_t)
#define LAMINA_H5_INSTANTIATE(T)                                                                  \
  template void File::write<T>(const std::string&, const T*, const Shape&);                       \
  template std::vector<T> File::read<T>(const std::string&, Shape*) const;                        \
  template std::vector<T> File::read_rows<T>(const std::string&, int64_t, int64_t, Shape*) const; \
  template void File::write_rows<T>(const std::string&, int64_t, const T*, int64_t);
LAMINA_H5_TYPES(LAMINA_H5_INSTANTIATE)
#undef LAMINA_H5_INSTANTIATE
#undef LAMINA_H5_TYPES

// ------------------------------------------------------------------------------------------------
// AtomicWrite

AtomicWrite::AtomicWrite(const std::string& path) : path_(path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // Through a symbolic link to the file it names, so the link survives the rename.
  if (fs::is_symlink(path, ec) && fs::exists(path, ec)) path_ = fs::canonical(path, ec).string();
  if (ec) path_ = path;
  fs::path target(path_);
  if (target.filename().empty()) throw Error("cannot write '" + path + "': it names a folder, not a file");
  if (fs::is_directory(target, ec)) throw Error("cannot write " + path + ": it is a folder");
  // Beside the target, so the final rename stays within one file system and is atomic.
  std::string name = ".";
  name += target.filename().string();
  name += ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(temp_counter++);
  fs::path temp = target.parent_path() / name;
  temp_ = temp.string();
  try {
    file_ = File(temp_, File::create_exclusive);
  } catch (const Error& e) {
    std::string msg = e.what();
    throw Error("cannot write " + path + ": " + msg);
  }
}

AtomicWrite::~AtomicWrite() {
  if (committed_) return;
  try {
    file_.close();
  } catch (...) {
  }
  ::unlink(temp_.c_str());
}

void AtomicWrite::commit() {
  file_.close();
  // The data must be on disk before the rename makes it the file, or a crash could leave a
  // renamed but empty file.
  int fd = ::open(temp_.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    throw Error("cannot write " + path_ + ": syncing " + temp_ + " failed: " + std::strerror(err));
  }
  ::close(fd);
  // A file that is replaced keeps its permissions.
  std::error_code ec;
  auto status = std::filesystem::status(path_, ec);
  if (!ec && std::filesystem::exists(status)) std::filesystem::permissions(temp_, status.permissions(), ec);
  if (std::rename(temp_.c_str(), path_.c_str()) != 0)
    throw Error("cannot write " + path_ + ": renaming " + temp_ + " failed: " + std::strerror(errno));
  committed_ = true;
  std::string folder = std::filesystem::path(path_).parent_path().string();
  int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);  // makes the rename itself durable
    ::close(dir);
  }
}

}  // namespace lamina::h5
