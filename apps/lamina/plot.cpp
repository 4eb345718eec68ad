// `lamina plot HISTORY.csv -o curves.png`: training curves from a history file (CSVLogger's CSV,
// or `lamina train --history`'s CSV or JSON), one panel per metric: training and validation per
// epoch, with axes, tick labels and a legend.
#include "commands.hpp"
#include "image.hpp"

#include <lamina/lamina.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

namespace lamina::cli {

void add_plot(CLI::App& app, PlotArgs& a) {
  auto* c = app.add_subcommand(
      "plot",
      "Draw training curves (loss, accuracy, ... per epoch; training and validation) as a PNG picture");
  c->add_option("history", a.history, "The history: a CSV (CSVLogger, train --history) or JSON file")
      ->required();
  c->add_option("-o,--output", a.output, "The PNG file to write")->required();
  c->add_option("--metrics", a.metrics,
                "Which panels, e.g. --metrics loss accuracy (default: every metric in the file)");
}

namespace {

constexpr int kPanelWidth = 560, kPanelHeight = 420;
constexpr int kText = 2;  // font scale: 10x14 pixel letters

struct Series {
  std::string label;
  std::vector<double> values;
  Rgb colour;
};

// About `target` tick values covering [lo, hi] at a step of 1, 2 or 5 times a power of ten.
std::vector<double> nice_ticks(double lo, double hi, int target, double* step_out) {
  double raw = (hi - lo) / std::max(1, target);
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  *step_out = step;
  return ticks;
}

std::string tick_label(double v, double step) {
  int decimals = std::max(0, int(-std::floor(std::log10(step) + 1e-9)));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", std::min(decimals, 8), v);
  return buf;
}

void draw_panel(Image& img, int ox, const std::string& title, const std::vector<double>& epochs,
                const std::vector<Series>& series) {
  // The value range over every finite point.
  double lo = INFINITY, hi = -INFINITY;
  for (auto& s : series)
    for (double v : s.values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) {
    double pad = std::max(std::fabs(lo) * 0.1, 0.5);
    lo -= pad, hi += pad;
  } else {
    double pad = (hi - lo) * 0.06;
    lo -= pad, hi += pad;
  }
  double y_step = 1;
  std::vector<double> y_ticks = nice_ticks(lo, hi, 7, &y_step);
  double x_lo = epochs.front(), x_hi = epochs.back();
  if (x_hi - x_lo < 1) x_lo -= 0.5, x_hi += 0.5;
  double x_step = 1;
  std::vector<double> x_ticks = nice_ticks(x_lo, x_hi, 8, &x_step);
  if (x_step < 1) {  // whole epochs only
    x_step = 1;
    x_ticks.clear();
    for (double t = std::ceil(x_lo); t <= x_hi; t += 1) x_ticks.push_back(t);
  }

  int label_width = 0;
  for (double t : y_ticks)
    label_width = std::max(label_width, Image::text_width(tick_label(t, y_step), kText));
  int left = ox + 16 + label_width, right = ox + kPanelWidth - 20, top = 44, bottom = kPanelHeight - 56;
  auto px = [&](double e) { return left + (e - x_lo) / (x_hi - x_lo) * (right - left); };
  auto py = [&](double v) { return bottom - (v - lo) / (hi - lo) * (bottom - top); };

  img.text(ox + (kPanelWidth - Image::text_width(title, kText)) / 2, 14, title, kBlack, kText);
  for (double t : y_ticks) {
    int y = int(std::lround(py(t)));
    img.fill(left, y, right - left, 1, kGrid);
    img.fill(left - 5, y, 5, 1, kAxis);
    std::string s = tick_label(t, y_step);
    img.text(left - 8 - Image::text_width(s, kText), y - Image::text_height(kText) / 2, s, kAxis, kText);
  }
  for (double t : x_ticks) {
    int x = int(std::lround(px(t)));
    img.fill(x, top, 1, bottom - top, kGrid);
    img.fill(x, bottom, 1, 5, kAxis);
    std::string s = tick_label(t, x_step);
    img.text(x - Image::text_width(s, kText) / 2, bottom + 9, s, kAxis, kText);
  }
  img.frame(left, top, right - left + 1, bottom - top + 1, kAxis);
  img.text((left + right - Image::text_width("epoch", kText)) / 2, kPanelHeight - 24, "epoch", kAxis, kText);

  for (auto& s : series) {
    for (size_t i = 0; i < s.values.size(); ++i) {
      if (!std::isfinite(s.values[i])) continue;
      double x = px(epochs[i]), y = py(s.values[i]);
      if (i + 1 < s.values.size() && std::isfinite(s.values[i + 1]))
        img.line(x, y, px(epochs[i + 1]), py(s.values[i + 1]), s.colour, 2);
      if (s.values.size() <= 60) img.fill(int(std::lround(x)) - 2, int(std::lround(y)) - 2, 5, 5, s.colour);
    }
  }

  // The legend, in the corner of the plot with the fewest points under it.
  int row = Image::text_height(kText) + 8, legend_w = 0;
  for (auto& s : series) legend_w = std::max(legend_w, Image::text_width(s.label, kText));
  legend_w += 44;
  int legend_h = int(series.size()) * row + 8;
  int best_x = right - legend_w - 8, best_y = top + 8;
  int fewest = -1;
  for (int corner = 0; corner < 4; ++corner) {
    int cx = corner % 2 ? left + 8 : right - legend_w - 8;
    int cy = corner < 2 ? top + 8 : bottom - legend_h - 8;
    int under = 0;
    for (auto& s : series)
      for (size_t i = 0; i < s.values.size(); ++i) {
        if (!std::isfinite(s.values[i])) continue;
        double x = px(epochs[i]), y = py(s.values[i]);
        under += x >= cx - 6 && x <= cx + legend_w + 6 && y >= cy - 6 && y <= cy + legend_h + 6;
      }
    if (fewest < 0 || under < fewest) fewest = under, best_x = cx, best_y = cy;
  }
  img.fill(best_x, best_y, legend_w, legend_h, kWhite);
  img.frame(best_x, best_y, legend_w, legend_h, Rgb{180, 180, 180});
  for (size_t k = 0; k < series.size(); ++k) {
    int y = best_y + 6 + int(k) * row;
    int mid = y + Image::text_height(kText) / 2;
    img.line(best_x + 8, mid, best_x + 32, mid, series[k].colour, 2);
    img.fill(best_x + 18, mid - 2, 5, 5, series[k].colour);
    img.text(best_x + 38, y, series[k].label, kBlack, kText);
  }
}

}  // namespace

int run_plot(const PlotArgs& a) {
  History h = read_history(a.history);
  if (h.epoch.empty()) throw Error(a.history + ": the history has no epochs to draw");
  std::vector<std::string> panels = a.metrics;
  if (panels.empty()) {
    if (h.history.count("loss") || h.history.count("val_loss")) panels.push_back("loss");
    for (auto& [k, v] : h.history) {
      std::string base = k.rfind("val_", 0) == 0 ? k.substr(4) : k;
      if (base != "loss" && std::find(panels.begin(), panels.end(), base) == panels.end())
        panels.push_back(base);
    }
  }
  std::vector<double> epochs;
  for (int e : h.epoch)
    epochs.push_back(double(e) + 1);  // epochs count from 1 on the axis, as Keras prints them
  Image img(kPanelWidth * int(panels.size()), kPanelHeight);
  for (size_t p = 0; p < panels.size(); ++p) {
    const std::string& name = panels[p];
    std::vector<Series> series;
    if (auto it = h.history.find(name); it != h.history.end())
      series.push_back({"training", it->second, kSeries[0]});
    if (auto it = h.history.find("val_" + name); it != h.history.end())
      series.push_back({"validation", it->second, kSeries[1]});
    if (series.empty()) {
      std::string known;
      for (auto& [k, v] : h.history) known += (known.empty() ? "" : ", ") + k;
      throw Error(a.history + ": no column '" + name + "' or 'val_" + name + "' (it has: " + known + ")");
    }
    for (auto& s : series)
      if (s.values.size() != epochs.size())
        throw Error(a.history + ": '" + name + "' has " + std::to_string(s.values.size()) + " values for " +
                    std::to_string(epochs.size()) + " epochs");
    draw_panel(img, kPanelWidth * int(p), name, epochs, series);
  }
  img.write_png(a.output);
  std::string names;
  for (auto& p : panels) names += (names.empty() ? "" : ", ") + p;
  std::cout << "Wrote " << a.output << " (" << img.width() << "x" << img.height() << "): " << names
            << " over " << epochs.size() << " epoch" << (epochs.size() == 1 ? "" : "s") << "\n";
  return 0;
}

}  // namespace lamina::cli
