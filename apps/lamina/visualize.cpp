// `lamina visualize filters MODEL.h5 --layer 0 -o filters.png`: a layer's kernels as a grid of
// grey tiles; `lamina visualize activations MODEL.h5 --layer K --input SPEC --index I -o act.png`:
// the feature maps layer K computes for input sample I; `lamina visualize reconstructions AE.h5
// --input SPEC -o recon.png`: samples above what an autoencoder makes of them.
#include "commands.hpp"
#include "data.hpp"
#include "image.hpp"

#include <lamina/lamina.hpp>

#include <algorithm>
#include <cmath>
#include <iostream>

namespace lamina::cli {

void add_visualize(CLI::App& app, VisualizeArgs& a) {
  auto* v = app.add_subcommand("visualize", "Draw a layer's filters or activations as a PNG picture");
  v->require_subcommand(1);
  auto common = [&](CLI::App* c, bool layer) {
    c->add_option("model", a.model, "The model file (.h5, written by Keras or lamina)")->required();
    if (layer)
      c->add_option("--layer", a.layer, "The layer: its index in model.layers (from 0) or its name")
          ->required();
    c->add_option("-o,--output", a.output, "The PNG file to write")->required();
    c->add_option("--scale", a.scale, "Screen pixels per value (default: tiles at least 48 pixels wide)")
        ->check(CLI::Range(1, 64));
    c->add_option("--columns", a.columns, "Tiles per row (default: about square)")
        ->check(CLI::PositiveNumber);
    c->add_option("--backend", a.backend, "Compute backend (onednn, reference, auto, ...)");
  };
  auto* f = v->add_subcommand(
      "filters",
      "A grid of the layer's kernels, each normalised to its own range: one tile per filter of a Conv2D "
      "with one input channel, a row of input channels per filter otherwise; one tile per unit of a "
      "Dense layer whose inputs form a square image");
  common(f, true);
  f->final_callback([&a] { a.what = "filters"; });
  auto input = [&](CLI::App* c, const char* index_help) {
    c->add_option("--input", a.input, "mnist:DIR, fashion_mnist[:DIR] or h5:FILE:X")->required();
    c->add_option("--index", a.index, index_help)->check(CLI::NonNegativeNumber);
    c->add_option("--input-scale", a.input_scale,
                  "Divide the inputs by this (default: 255 for mnist and fashion_mnist, 1 for h5)")
        ->check(CLI::PositiveNumber);
  };
  auto* act = v->add_subcommand(
      "activations", "The feature maps of a layer for one input sample, each normalised to its own range");
  common(act, true);
  input(act, "Which sample of the input (from 0; default 0)");
  act->final_callback([&a] { a.what = "activations"; });
  auto* rec = v->add_subcommand(
      "reconstructions",
      "An autoencoder's work: input samples in the top row, the model's outputs for them below, each pair "
      "on the input's grey scale");
  common(rec, false);
  input(rec, "The first sample to draw (from 0; default 0)");
  rec->add_option("--count", a.count, "How many samples (default 10)")->check(CLI::Range(1, 256));
  rec->final_callback([&a] { a.what = "reconstructions"; });
}

namespace {

size_t find_layer(const Model& model, const std::string& spec, const std::string& file) {
  std::string names;
  for (size_t i = 0; i < model.size(); ++i) {
    if (model.layer(i).name() == spec) return i;
    names += (names.empty() ? "" : ", ") + std::to_string(i) + " " + model.layer(i).name() + " (" +
             model.layer(i).class_name() + ")";
  }
  bool digits = !spec.empty() && spec.find_first_not_of("0123456789") == std::string::npos;
  if (digits && std::stoull(spec) < model.size()) return size_t(std::stoull(spec));
  throw Error(file + ": there is no layer '" + spec + "'; the layers are: " + names);
}

// The kernel of `layer` as tiles: Conv2D (kh, kw, in, out) gives `out` rows of `in` tiles (one
// tile per filter when in == 1); Dense (in, out) gives `out` tiles when `in` is a square number.
std::vector<Tile> filter_tiles(const Layer& layer, int* columns, const std::string& where) {
  std::vector<Tensor> w = layer.get_weights();
  if (w.empty())
    throw Error(where + ": layer '" + layer.name() + "' (" + layer.class_name() +
                ") has no weights to draw; pick a Conv2D or Dense layer");
  const Tensor& k = w[0];
  std::vector<float> v = k.to_vector();
  std::vector<Tile> tiles;
  if (k.ndim() == 4) {
    int64_t kh = k.dim(0), kw = k.dim(1), in = k.dim(2), out = k.dim(3);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t c = 0; c < in; ++c) {
        Tile t{int(kh), int(kw), {}};
        for (int64_t y = 0; y < kh; ++y)
          for (int64_t x = 0; x < kw; ++x) t.values.push_back(v[size_t(((y * kw + x) * in + c) * out + o)]);
        tiles.push_back(std::move(t));
      }
    if (in > 1 && *columns == 0) *columns = int(in);
    return tiles;
  }
  if (k.ndim() == 2) {
    int64_t in = k.dim(0), out = k.dim(1), side = std::llround(std::sqrt(double(in)));
    if (side * side != in)
      throw Error(where + ": layer '" + layer.name() + "' (Dense) has " + std::to_string(in) +
                  " inputs, which do not form a square picture; draw a Conv2D layer, or a Dense layer right "
                  "after Flatten of a square image");
    for (int64_t o = 0; o < out; ++o) {
      Tile t{int(side), int(side), {}};
      for (int64_t i = 0; i < in; ++i) t.values.push_back(v[size_t(i * out + o)]);
      tiles.push_back(std::move(t));
    }
    return tiles;
  }
  throw Error(where + ": layer '" + layer.name() + "' (" + layer.class_name() + ") has a kernel of shape " +
              shape_to_string(k.shape()) + "; only Conv2D and Dense kernels can be drawn");
}

// Layer output for one sample as tiles: (h, w, c) gives c maps; (h, w) one; (n) one strip.
std::vector<Tile> activation_tiles(const Tensor& out) {
  Shape s(out.shape().begin() + 1, out.shape().end());
  std::vector<float> v = out.to_vector();
  std::vector<Tile> tiles;
  if (s.size() == 3) {
    for (int64_t c = 0; c < s[2]; ++c) {
      Tile t{int(s[0]), int(s[1]), {}};
      for (int64_t i = 0; i < s[0] * s[1]; ++i) t.values.push_back(v[size_t(i * s[2] + c)]);
      tiles.push_back(std::move(t));
    }
  } else if (s.size() == 2) {
    tiles.push_back(Tile{int(s[0]), int(s[1]), v});
  } else {
    // A vector: rows of 16 units, the unused cells of the last row at the minimum.
    int64_t n = shape_size(s), cols = std::min<int64_t>(n, 16), rows = (n + cols - 1) / cols;
    float lo = *std::min_element(v.begin(), v.end());
    Tile t{int(rows), int(cols), std::vector<float>(size_t(rows * cols), lo)};
    std::copy(v.begin(), v.end(), t.values.begin());
    tiles.push_back(std::move(t));
  }
  return tiles;
}

// One sample of shape (h, w), (h, w, 1) or (n) with n a square as a picture; else an error.
Tile picture_of(const std::vector<float>& values, const Shape& shape, const std::string& what) {
  if (shape.size() == 2 || (shape.size() == 3 && shape[2] == 1))
    return Tile{int(shape[0]), int(shape[1]), values};
  const int64_t side = shape.size() == 1 ? std::llround(std::sqrt(double(shape[0]))) : 0;
  if (side * side == shape_size(shape)) return Tile{int(side), int(side), values};
  throw Error(what + " has samples of shape " + shape_to_string(shape) +
              ", which are not grey pictures; reconstructions draws (rows, cols), (rows, cols, 1) or flat "
              "square samples");
}

// Rows of `count` samples from `first`: the inputs above, the model's outputs below; each output on
// its input's grey scale, so that a faint reconstruction looks faint.
std::vector<Tile> reconstruction_tiles(const Model& model, const DataSource& data, int64_t first,
                                       int64_t count, const std::string& file) {
  const Shape& in = model.input_shape();
  if (model.outputs().size() != 1 || model.output_shape() != in)
    throw Error(
        file + ": the model's output has shape " + shape_to_string(model.output_shape()) + " and its input " +
        shape_to_string(in) +
        "; reconstructions needs a model that maps each sample to one of its own shape (an autoencoder)");
  const Tensor x = data.inputs(first, first + count, in);
  const Tensor y = model.predict(x);
  const std::vector<float> xs = x.to_vector(), ys = y.to_vector();
  const size_t per = size_t(shape_size(in));
  std::vector<Tile> inputs, outputs;
  for (int64_t k = 0; k < count; ++k) {
    const auto from = [&](const std::vector<float>& v) {
      return std::vector<float>(v.begin() + ptrdiff_t(size_t(k) * per),
                                v.begin() + ptrdiff_t(size_t(k + 1) * per));
    };
    Tile t = picture_of(from(xs), in, file);
    auto [lo, hi] = std::minmax_element(t.values.begin(), t.values.end());
    t.low = *lo, t.high = *hi > *lo ? *hi : *lo + 1.0f;
    Tile r = picture_of(from(ys), in, file);
    r.low = t.low, r.high = t.high;
    inputs.push_back(std::move(t));
    outputs.push_back(std::move(r));
  }
  inputs.insert(inputs.end(), outputs.begin(), outputs.end());
  return inputs;
}

}  // namespace

int run_visualize(const VisualizeArgs& a) {
  if (!a.backend.empty()) set_backend(a.backend);
  Model model = load_model(a.model, false);
  if (a.what == "reconstructions") {
    DataSource data(a.input, a.input_scale);
    const int64_t first = a.index.value_or(0);
    if (first >= data.rows())
      throw Error(a.input + ": --index " + std::to_string(first) + " is out of range; it has " +
                  std::to_string(data.rows()) + " samples (0 to " + std::to_string(data.rows() - 1) + ")");
    const int64_t count = std::min(a.count, data.rows() - first);
    std::vector<Tile> tiles = reconstruction_tiles(model, data, first, count, a.model);
    Image img = tile_grid(tiles, int(count), a.scale.value_or(scale_for(tiles[0].rows, tiles[0].cols)));
    img.write_png(a.output);
    std::cout << "Wrote " << a.output << " (" << img.width() << "x" << img.height() << "): samples " << first
              << " to " << first + count - 1 << " of " << a.input
              << " (top) and the model's reconstructions\n";
    return 0;
  }
  size_t index = find_layer(model, a.layer, a.model);
  const Layer& layer = model.layer(index);
  int columns = a.columns.value_or(0);
  std::vector<Tile> tiles;
  std::string what;
  if (a.what == "filters") {
    tiles = filter_tiles(layer, &columns, a.model);
    Shape k = layer.get_weights()[0].shape();
    what = std::to_string(tiles.size()) + (k.size() == 2 ? " units' weights as " : " kernels of ") +
           std::to_string(tiles[0].rows) + "x" + std::to_string(tiles[0].cols) + " (kernel shape " +
           shape_to_string(k) + ")";
  } else {
    DataSource data(a.input, a.input_scale);
    int64_t i = a.index.value_or(0);
    if (i >= data.rows())
      throw Error(a.input + ": --index " + std::to_string(i) + " is out of range; it has " +
                  std::to_string(data.rows()) + " samples (0 to " + std::to_string(data.rows() - 1) + ")");
    Tensor out = model.predict_until(data.inputs(i, i + 1, model.input_shape()), index, 1);
    tiles = activation_tiles(out);
    what = "the output " + shape_to_string(layer.output_shape()) + " for sample " + std::to_string(i) +
           " of " + a.input;
    if (data.has_labels()) {
      std::vector<float> label = data.labels(i, i + 1).to_vector();
      if (label.size() == 1) what += " (label " + std::to_string(int64_t(label[0])) + ")";
    }
  }
  // A vector's cells get 16 pixels each; maps and kernels at least 48 pixels a side.
  bool vector = a.what == "activations" && layer.output_shape().size() == 1;
  int scale = a.scale.value_or(vector ? 16 : scale_for(tiles[0].rows, tiles[0].cols));
  Image img = tile_grid(tiles, columns, scale);
  img.write_png(a.output);
  std::cout << "Wrote " << a.output << " (" << img.width() << "x" << img.height() << "): layer " << index
            << " '" << layer.name() << "' (" << layer.class_name() << "), " << what << "\n";
  return 0;
}

}  // namespace lamina::cli
