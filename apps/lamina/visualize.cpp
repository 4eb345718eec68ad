// `lamina visualize filters MODEL.h5 --layer 0 -o filters.png`: a layer's kernels as a grid of
// grey tiles; `lamina visualize activations MODEL.h5 --layer K --input SPEC --index I -o act.png`:
// the feature maps layer K computes for input sample I.
#include "commands.hpp"
#include "data.hpp"
#include "image.hpp"

#include <lamina/lamina.hpp>

#include <cmath>
#include <iostream>

namespace lamina::cli {

void add_visualize(CLI::App& app, VisualizeArgs& a) {
  auto* v = app.add_subcommand("visualize", "Draw a layer's filters or activations as a PNG picture");
  v->require_subcommand(1);
  auto common = [&](CLI::App* c) {
    c->add_option("model", a.model, "The model file (.h5, written by Keras or lamina)")->required();
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
  common(f);
  f->final_callback([&a] { a.what = "filters"; });
  auto* act = v->add_subcommand(
      "activations", "The feature maps of a layer for one input sample, each normalised to its own range");
  common(act);
  act->add_option("--input", a.input, "mnist:DIR, fashion_mnist[:DIR] or h5:FILE:X")->required();
  act->add_option("--index", a.index, "Which sample of the input (from 0; default 0)")
      ->check(CLI::NonNegativeNumber);
  act->add_option("--input-scale", a.input_scale,
                  "Divide the inputs by this (default: 255 for mnist and fashion_mnist, 1 for h5)")
      ->check(CLI::PositiveNumber);
  act->final_callback([&a] { a.what = "activations"; });
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

}  // namespace

int run_visualize(const VisualizeArgs& a) {
  if (!a.backend.empty()) set_backend(a.backend);
  Model model = load_model(a.model, false);
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
