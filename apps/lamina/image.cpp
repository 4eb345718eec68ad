#include "image.hpp"

#include <lamina/error.hpp>

#include <png.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>

namespace lamina::cli {

namespace {

// A 5x7 bitmap font: seven rows of five pixels per character, '1' for ink.
struct Glyph {
  char rows[7][6];
};

const std::map<char, Glyph>& font() {
  static const std::map<char, Glyph> glyphs{
      {'0', {{"01110", "10001", "10011", "10101", "11001", "10001", "01110"}}},
      {'1', {{"00100", "01100", "00100", "00100", "00100", "00100", "01110"}}},
      {'2', {{"01110", "10001", "00001", "00010", "00100", "01000", "11111"}}},
      {'3', {{"11111", "00010", "00100", "00010", "00001", "10001", "01110"}}},
      {'4', {{"00010", "00110", "01010", "10010", "11111", "00010", "00010"}}},
      {'5', {{"11111", "10000", "11110", "00001", "00001", "10001", "01110"}}},
      {'6', {{"00110", "01000", "10000", "11110", "10001", "10001", "01110"}}},
      {'7', {{"11111", "00001", "00010", "00100", "01000", "01000", "01000"}}},
      {'8', {{"01110", "10001", "10001", "01110", "10001", "10001", "01110"}}},
      {'9', {{"01110", "10001", "10001", "01111", "00001", "00010", "01100"}}},
      {'A', {{"01110", "10001", "10001", "11111", "10001", "10001", "10001"}}},
      {'B', {{"11110", "10001", "10001", "11110", "10001", "10001", "11110"}}},
      {'C', {{"01110", "10001", "10000", "10000", "10000", "10001", "01110"}}},
      {'D', {{"11100", "10010", "10001", "10001", "10001", "10010", "11100"}}},
      {'E', {{"11111", "10000", "10000", "11110", "10000", "10000", "11111"}}},
      {'F', {{"11111", "10000", "10000", "11110", "10000", "10000", "10000"}}},
      {'G', {{"01110", "10001", "10000", "10111", "10001", "10001", "01111"}}},
      {'H', {{"10001", "10001", "10001", "11111", "10001", "10001", "10001"}}},
      {'I', {{"01110", "00100", "00100", "00100", "00100", "00100", "01110"}}},
      {'J', {{"00111", "00010", "00010", "00010", "00010", "10010", "01100"}}},
      {'K', {{"10001", "10010", "10100", "11000", "10100", "10010", "10001"}}},
      {'L', {{"10000", "10000", "10000", "10000", "10000", "10000", "11111"}}},
      {'M', {{"10001", "11011", "10101", "10101", "10001", "10001", "10001"}}},
      {'N', {{"10001", "10001", "11001", "10101", "10011", "10001", "10001"}}},
      {'O', {{"01110", "10001", "10001", "10001", "10001", "10001", "01110"}}},
      {'P', {{"11110", "10001", "10001", "11110", "10000", "10000", "10000"}}},
      {'Q', {{"01110", "10001", "10001", "10001", "10101", "10010", "01101"}}},
      {'R', {{"11110", "10001", "10001", "11110", "10100", "10010", "10001"}}},
      {'S', {{"01111", "10000", "10000", "01110", "00001", "00001", "11110"}}},
      {'T', {{"11111", "00100", "00100", "00100", "00100", "00100", "00100"}}},
      {'U', {{"10001", "10001", "10001", "10001", "10001", "10001", "01110"}}},
      {'V', {{"10001", "10001", "10001", "10001", "10001", "01010", "00100"}}},
      {'W', {{"10001", "10001", "10001", "10101", "10101", "10101", "01010"}}},
      {'X', {{"10001", "10001", "01010", "00100", "01010", "10001", "10001"}}},
      {'Y', {{"10001", "10001", "10001", "01010", "00100", "00100", "00100"}}},
      {'Z', {{"11111", "00001", "00010", "00100", "01000", "10000", "11111"}}},
      {' ', {{"00000", "00000", "00000", "00000", "00000", "00000", "00000"}}},
      {'.', {{"00000", "00000", "00000", "00000", "00000", "01100", "01100"}}},
      {',', {{"00000", "00000", "00000", "00000", "01100", "00100", "01000"}}},
      {'-', {{"00000", "00000", "00000", "11111", "00000", "00000", "00000"}}},
      {'+', {{"00000", "00100", "00100", "11111", "00100", "00100", "00000"}}},
      {'_', {{"00000", "00000", "00000", "00000", "00000", "00000", "11111"}}},
      {':', {{"00000", "01100", "01100", "00000", "01100", "01100", "00000"}}},
      {'(', {{"00010", "00100", "01000", "01000", "01000", "00100", "00010"}}},
      {')', {{"01000", "00100", "00010", "00010", "00010", "00100", "01000"}}},
      {'/', {{"00000", "00001", "00010", "00100", "01000", "10000", "00000"}}},
      {'%', {{"11000", "11001", "00010", "00100", "01000", "10011", "00011"}}},
      {'=', {{"00000", "00000", "11111", "00000", "11111", "00000", "00000"}}},
      {'#', {{"01010", "01010", "11111", "01010", "11111", "01010", "01010"}}},
      {'?', {{"01110", "10001", "00001", "00010", "00100", "00000", "00100"}}},
  };
  return glyphs;
}

}  // namespace

Image::Image(int width, int height, Rgb background) : width_(width), height_(height) {
  if (width < 1 || height < 1 || int64_t(width) * height > (int64_t(1) << 28))
    throw Error("cannot draw a picture of " + std::to_string(width) + " x " + std::to_string(height) +
                " pixels");
  pixels_.assign(size_t(width) * size_t(height), background);
}

void Image::set(int x, int y, Rgb c) {
  if (x >= 0 && y >= 0 && x < width_ && y < height_) pixels_[size_t(y) * size_t(width_) + size_t(x)] = c;
}

void Image::fill(int x, int y, int w, int h, Rgb c) {
  for (int j = std::max(0, y); j < std::min(height_, y + h); ++j)
    for (int i = std::max(0, x); i < std::min(width_, x + w); ++i)
      pixels_[size_t(j) * size_t(width_) + size_t(i)] = c;
}

void Image::frame(int x, int y, int w, int h, Rgb c) {
  fill(x, y, w, 1, c);
  fill(x, y + h - 1, w, 1, c);
  fill(x, y, 1, h, c);
  fill(x + w - 1, y, 1, h, c);
}

void Image::line(double x0, double y0, double x1, double y1, Rgb c, int thickness) {
  double length = std::max(std::fabs(x1 - x0), std::fabs(y1 - y0));
  int steps = std::max(1, int(std::ceil(length)));
  int lo = -(thickness - 1) / 2, hi = thickness / 2;
  for (int s = 0; s <= steps; ++s) {
    double t = double(s) / steps;
    int x = int(std::lround(x0 + (x1 - x0) * t)), y = int(std::lround(y0 + (y1 - y0) * t));
    for (int dy = lo; dy <= hi; ++dy)
      for (int dx = lo; dx <= hi; ++dx) set(x + dx, y + dy, c);
  }
}

void Image::text(int x, int y, const std::string& s, Rgb c, int scale) {
  const auto& glyphs = font();
  int pen = x;
  for (char ch : s) {
    auto it = glyphs.find(char(std::toupper(static_cast<unsigned char>(ch))));
    const Glyph& g = it != glyphs.end() ? it->second : glyphs.at('?');
    for (int row = 0; row < 7; ++row)
      for (int col = 0; col < 5; ++col)
        if (g.rows[row][col] == '1') fill(pen + col * scale, y + row * scale, scale, scale, c);
    pen += 6 * scale;
  }
}

int Image::text_width(const std::string& s, int scale) {
  return s.empty() ? 0 : int(s.size()) * 6 * scale - scale;
}

void Image::write_png(const std::string& path) const {
  std::filesystem::path temp(path);
  temp += ".tmp";
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = png_uint_32(width_);
  image.height = png_uint_32(height_);
  image.format = PNG_FORMAT_RGB;
  static_assert(sizeof(Rgb) == 3, "Rgb must be three packed bytes");
  if (!png_image_write_to_file(&image, temp.c_str(), 0, pixels_.data(), 0, nullptr)) {
    std::string why = image.message[0] ? image.message : "unknown libpng error";
    png_image_free(&image);
    std::filesystem::remove(temp);
    throw Error("cannot write " + path + ": " + why + " (does the folder exist and is it writable?)");
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp);
    throw Error("cannot write " + path + ": " + ec.message());
  }
}

int scale_for(int rows, int cols, int target) {
  int side = std::max(1, std::max(rows, cols));
  return std::max(1, (target + side - 1) / side);
}

Image tile_grid(const std::vector<Tile>& tiles, int columns, int scale, int gap) {
  if (tiles.empty()) throw Error("nothing to draw: no tiles");
  int rows_px = 0, cols_px = 0;
  for (const Tile& t : tiles) rows_px = std::max(rows_px, t.rows), cols_px = std::max(cols_px, t.cols);
  int n = int(tiles.size());
  if (columns <= 0) columns = int(std::ceil(std::sqrt(double(n))));
  columns = std::min(columns, n);
  int rows = (n + columns - 1) / columns;
  int tile_w = cols_px * scale, tile_h = rows_px * scale;
  // Blue lines between the tiles, so grey tiles stay apart; unused cells of the last row light grey.
  Image img(columns * tile_w + (columns + 1) * gap, rows * tile_h + (rows + 1) * gap, kSeries[0]);
  for (int k = n; k < rows * columns; ++k)
    img.fill(gap + (k % columns) * (tile_w + gap), gap + (k / columns) * (tile_h + gap), tile_w, tile_h,
             kGrid);
  for (int k = 0; k < n; ++k) {
    const Tile& t = tiles[size_t(k)];
    auto [lo, hi] = std::minmax_element(t.values.begin(), t.values.end());
    const bool fixed = t.low < t.high;
    float min = fixed ? t.low : *lo, range = fixed ? t.high - t.low : *hi - *lo;
    int ox = gap + (k % columns) * (tile_w + gap), oy = gap + (k / columns) * (tile_h + gap);
    for (int r = 0; r < t.rows; ++r)
      for (int c = 0; c < t.cols; ++c) {
        float v = t.values[size_t(r) * size_t(t.cols) + size_t(c)];
        const float unit = range > 0 && std::isfinite(v) ? std::clamp((v - min) / range, 0.0f, 1.0f) : 0.0f;
        auto level = uint8_t(std::lround(255.0f * unit));
        img.fill(ox + c * scale, oy + r * scale, scale, scale, Rgb{level, level, level});
      }
  }
  return img;
}

}  // namespace lamina::cli
