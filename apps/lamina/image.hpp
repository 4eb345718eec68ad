// RGB pictures for `lamina visualize` and `lamina plot`: drawing (rectangles, lines, a 5x7 bitmap
// font) and PNG output through libpng.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lamina::cli {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

inline constexpr Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0}, kGrid{225, 225, 225}, kAxis{60, 60, 60};
// Matplotlib's first colours ("tab:blue", "tab:orange", ...), so curves look as in Keras tutorials.
inline constexpr Rgb kSeries[] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}};

class Image {
 public:
  Image(int width, int height, Rgb background = kWhite);
  int width() const { return width_; }
  int height() const { return height_; }
  void set(int x, int y, Rgb c);  // clipped to the picture
  Rgb get(int x, int y) const { return pixels_[size_t(y) * size_t(width_) + size_t(x)]; }
  void fill(int x, int y, int w, int h, Rgb c);
  void frame(int x, int y, int w, int h, Rgb c);  // a one-pixel outline
  // A line `thickness` pixels wide, from (x0, y0) to (x1, y1).
  void line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1);
  // Text in the built-in 5x7 font (letters print in capitals), each font pixel `scale` pixels wide;
  // (x, y) is the top left corner.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1);
  static int text_width(const std::string& s, int scale = 1);
  static int text_height(int scale = 1) { return 7 * scale; }
  // Writes a PNG (8-bit RGB) through a temporary file beside `path` and a rename.
  void write_png(const std::string& path) const;

 private:
  int width_, height_;
  std::vector<Rgb> pixels_;
};

// Grey levels for values, each tile normalised to its own range: what `visualize` draws.
struct Tile {
  int rows = 0, cols = 0;
  std::vector<float> values;  // row-major, rows x cols
  // When low < high: drawn on this fixed range (values outside it clipped) instead of the tile's own,
  // so that tiles meant to be compared (an input and its reconstruction) share one grey scale.
  float low = 0.0f, high = 0.0f;
};
// Lays the tiles out in a grid of `columns` (0: about square), each pixel `scale` times enlarged,
// `gap` pixels of blue between tiles. Every tile is normalised to its own minimum and maximum (a constant
// tile is drawn black), or to its fixed range when it has one.
Image tile_grid(const std::vector<Tile>& tiles, int columns, int scale, int gap = 2);
// The enlargement that makes the larger side of a rows x cols tile at least `target` pixels.
int scale_for(int rows, int cols, int target = 48);

}  // namespace lamina::cli
