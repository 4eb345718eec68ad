// Winograd convolutions: the backend's own kernels for stride-1, undilated, ungrouped 3×3 and 5×5
// convolutions, forward, backward-data and backward-filter (docs/convolution.md, docs/ops.md).
//
// F(m×m, r×r) computes an m×m block of outputs from an α×α block of inputs, α = m + r − 1, with α²
// multiplications per channel pair instead of m²r²: each input tile d and kernel g is transformed
// (V = Bᵀ d B, U = G g Gᵀ), the α² positions are α² independent matrix products over the channels
// (M[ξ] = V[ξ] · U[ξ], tiles × C times C × O), and Y = Aᵀ M A transforms back. The weight gradient
// is the same product with the roles of the output and the kernel exchanged: dW = Gᵀ (Σ_tiles
// V ⊙ A dY Aᵀ) G, and the data gradient is the forward pass of the flipped kernel over dy.
//
// Tiles m ∈ {2, 4}: F(2×2, 3×3), F(4×4, 3×3), F(2×2, 5×5), F(4×4, 5×5). The conv kernels choose
// per shape between these and oneDNN's direct convolution by timing them on the first call
// (conv.cpp); LAMINA_WINOGRAD / backends.onednn.winograd turn the choice off or force Winograd.
#pragma once

#include <lamina/sdk/geometry.hpp>

#include <cstdint>
#include <vector>

namespace lamina::onednn::winograd {

// off: oneDNN's direct convolution always; on: Winograd whenever the shape allows it, with the
// larger tile; automatic: whichever is faster for each shape, timed once.
enum class Mode { off, on, automatic };

// LAMINA_WINOGRAD (0 / off, 1 / on, auto) if set, else the configuration's setting (automatic by
// default). Throws sdk::Error for an unknown value.
Mode mode();
void set_configured_mode(Mode mode);
Mode parse_mode(const char* text, const char* where);

// The tile `on` uses among `tiles` (the first, the largest): LAMINA_WINOGRAD_TILE (2 or 4) picks
// another one where it applies, for tests and benchmarks of each tile.
int forced_tile(const std::vector<int>& tiles);

// Whether Winograd kernels exist for this geometry, and the output tiles to try for it.
bool eligible(const sdk::ConvGeometry& g);
std::vector<int> tiles(const sdk::ConvGeometry& g);

// Reusable memory for the kernels (grown, never shrunk); one per backend, used under its lock.
class Workspace {
 public:
  ~Workspace();
  float* get(size_t floats);

 private:
  float* data_ = nullptr;
  size_t floats_ = 0;
};

// y = act(conv2d(x, w) + bias) with output tile m; bias may be null.
void forward(const sdk::ConvGeometry& g, int m, const float* x, const float* w, const float* bias,
             sdk::Activation act, float* y, Workspace& ws);
// dx = conv2d_backward_data(dy, w) with output tile m.
void backward_data(const sdk::ConvGeometry& g, int m, const float* dy, const float* w, float* dx,
                   Workspace& ws);
// dw = conv2d_backward_filter(x, dy) with tile m, and db = Σ dy when db is not null. The sums run
// over a partition of the tiles fixed by the shape alone, so results do not depend on the thread
// count or on which thread ran what.
void backward_filter(const sdk::ConvGeometry& g, int m, const float* x, const float* dy, float* dw, float* db,
                     Workspace& ws);

}  // namespace lamina::onednn::winograd
