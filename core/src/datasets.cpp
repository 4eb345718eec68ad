// IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed, and to_categorical.
#include <lamina/datasets.hpp>

#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace lamina {

namespace {

struct GzFile {
  gzFile f = nullptr;
  explicit GzFile(const std::string& path) : f(gzopen(path.c_str(), "rb")) {}
  ~GzFile() {
    if (f) gzclose(f);
  }
};

void read_exact(GzFile& in, void* dst, size_t bytes, const std::string& path, const char* what) {
  char* p = static_cast<char*>(dst);
  while (bytes > 0) {
    unsigned chunk = unsigned(std::min<size_t>(bytes, 1u << 30));
    int got = gzread(in.f, p, chunk);
    if (got <= 0) {
      int code = 0;
      const char* msg = gzerror(in.f, &code);
      throw Error(path + ": truncated or corrupt IDX file while reading the " + what +
                  (code != Z_OK && msg ? std::string(" (") + msg + ")" : std::string()));
    }
    p += got;
    bytes -= size_t(got);
  }
}

}  // namespace

Tensor read_idx(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error("data file " + path + " does not exist");
  GzFile in(path);
  if (!in.f) throw Error("cannot open data file " + path);
  unsigned char magic[4];
  read_exact(in, magic, 4, path, "header");
  if (magic[0] != 0 || magic[1] != 0)
    throw Error(path + ": not an IDX file (bad magic number); expected MNIST-style idx1/idx3 data");
  int type = magic[2], ndim = magic[3];
  size_t elem = type == 0x08 || type == 0x09 ? 1 : type == 0x0B ? 2 : type == 0x0C || type == 0x0D ? 4 : type == 0x0E ? 8 : 0;
  if (!elem) throw Error(path + ": unknown IDX element type 0x" + std::to_string(type));
  if (ndim < 1 || ndim > 4) throw Error(path + ": IDX files with " + std::to_string(ndim) + " dimensions are not supported");
  Shape shape;
  for (int i = 0; i < ndim; ++i) {
    unsigned char b[4];
    read_exact(in, b, 4, path, "dimensions");
    int64_t d = (int64_t(b[0]) << 24) | (int64_t(b[1]) << 16) | (int64_t(b[2]) << 8) | int64_t(b[3]);
    if (d <= 0 || d > (int64_t(1) << 28)) throw Error(path + ": implausible IDX dimension " + std::to_string(d));
    shape.push_back(d);
  }
  // Each dimension is at most 2^28, so the product is checked step by step before it can overflow.
  int64_t count = 1;
  for (int64_t d : shape) {
    if (count > (int64_t(1) << 32) / d)
      throw Error(path + ": IDX data of shape " + shape_to_string(shape) +
                  " is too large (more than 2^32 values)");
    count *= d;
  }
  // The header's size is not trusted with an allocation: the data is read in blocks, so a short or
  // hostile file fails after reading what it really holds.
  std::vector<unsigned char> raw;
  const size_t total = size_t(count) * elem;
  for (size_t done = 0; done < total;) {
    size_t n = std::min<size_t>(total - done, size_t(16) << 20);
    raw.resize(done + n);
    read_exact(in, raw.data() + done, n, path, "data");
    done += n;
  }
  Tensor t = Tensor::empty_host(shape);
  float* out = t.host_data();
  for (size_t i = 0; i < size_t(count); ++i) {
    const unsigned char* p = raw.data() + i * elem;
    switch (type) {
      case 0x08: out[i] = float(p[0]); break;
      case 0x09: out[i] = float(int8_t(p[0])); break;
      case 0x0B: out[i] = float(int16_t((p[0] << 8) | p[1])); break;
      case 0x0C: out[i] = float(int32_t((uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3])); break;
      case 0x0D: {
        uint32_t u = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
        float f;
        std::memcpy(&f, &u, 4);
        out[i] = f;
        break;
      }
      default: {
        uint64_t u = 0;
        for (int k = 0; k < 8; ++k) u = (u << 8) | p[k];
        double d;
        std::memcpy(&d, &u, 8);
        out[i] = float(d);
      }
    }
  }
  return t;
}

static std::string find_file(const std::string& folder, const std::string& stem) {
  for (const char* suffix : {"", ".gz"}) {
    std::string p = folder + "/" + stem + suffix;
    if (std::filesystem::exists(p)) return p;
  }
  // t10k-images.idx3-ubyte is another common spelling
  std::string dotted = stem;
  if (auto pos = dotted.find("-idx"); pos != std::string::npos) dotted[pos] = '.';
  for (const char* suffix : {"", ".gz"}) {
    std::string p = folder + "/" + dotted + suffix;
    if (std::filesystem::exists(p)) return p;
  }
  return {};
}

static Dataset load_idx_folder(const std::string& folder, const std::string& what, const std::string& hint) {
  if (!std::filesystem::is_directory(folder))
    throw Error(what + ": folder " + folder + " does not exist" + hint);
  auto need = [&](const std::string& stem) {
    std::string p = find_file(folder, stem);
    if (p.empty()) throw Error(what + ": " + folder + " has no " + stem + " (or " + stem + ".gz)" + hint);
    return p;
  };
  Dataset d;
  d.train.x = read_idx(need("train-images-idx3-ubyte"));
  d.train.y = read_idx(need("train-labels-idx1-ubyte"));
  d.test.x = read_idx(need("t10k-images-idx3-ubyte"));
  d.test.y = read_idx(need("t10k-labels-idx1-ubyte"));
  if (d.train.x.dim(0) != d.train.y.dim(0) || d.test.x.dim(0) != d.test.y.dim(0))
    throw Error(what + ": image and label counts differ in " + folder);
  return d;
}

namespace datasets {
Dataset mnist::load_data(const std::string& folder) {
  std::string f = folder;
  if (f.empty()) {
    const char* data = std::getenv("LAMINA_DATA");
    f = std::string(data && *data ? data : ".") + "/mnist";
  }
  return load_idx_folder(f, "mnist.load_data",
                         "; put the four MNIST IDX files there or pass the folder, e.g. mnist::load_data(\"data/mnist\")");
}
Dataset fashion_mnist::load_data(const std::string& folder) {
  std::string f = folder.empty() ? "/usr/share/datasets/fashion-mnist" : folder;
  return load_idx_folder(f, "fashion_mnist.load_data",
                         folder.empty() ? "; install it with: apt-get install dataset-fashion-mnist" : "");
}
}  // namespace datasets

// More classes than this is a damaged label file, not a classification problem.
constexpr int64_t kMaxClasses = int64_t(1) << 24;

Tensor utils::to_categorical(const Tensor& y, int64_t num_classes) {
  std::vector<float> v = y.to_vector();
  if (!(y.ndim() == 1 || (y.ndim() == 2 && y.dim(1) == 1)))
    throw Error("to_categorical: expects class indices of shape (N,) or (N, 1), got " + shape_to_string(y.shape()));
  int64_t classes = num_classes;
  if (classes < 0) {
    float m = 0;
    for (float x : v) m = std::max(m, x);
    if (!(m < float(kMaxClasses)))
      throw Error("to_categorical: the largest label is " + std::to_string(m) + ", not a class index below " +
                  std::to_string(kMaxClasses) + "; pass num_classes or check the labels");
    classes = int64_t(m) + 1;
  }
  if (classes > kMaxClasses || (v.size() && size_t(classes) > (size_t(1) << 34) / v.size()))
    throw Error("to_categorical: " + std::to_string(classes) + " classes for " + std::to_string(v.size()) +
                " labels is too large a one-hot matrix");
  std::vector<float> out(v.size() * size_t(classes), 0.0f);
  for (size_t i = 0; i < v.size(); ++i) {
    // Range first: converting a float outside int64's range is undefined.
    int64_t c = v[i] >= 0 && v[i] < float(classes) ? int64_t(v[i]) : -1;
    if (c < 0 || c >= classes || float(c) != v[i])
      throw Error("to_categorical: label " + std::to_string(v[i]) + " at row " + std::to_string(i) +
                  " is not a class index in [0, " + std::to_string(classes) + ")");
    out[i * size_t(classes) + size_t(c)] = 1.0f;
  }
  return Tensor::from_vector(out, {int64_t(v.size()), classes});
}

}  // namespace lamina
