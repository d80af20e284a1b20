// Per-block math of the fused filtered_lrelu:
//   u = up_gain * upfirdn2d(x + b, wu, up, padding)      (intermediate, never written to global memory)
//   t = clamp(lrelu(u, slope) * gain)
//   y = upfirdn2d(t, wd, down)
// A block owns one output tile of one (n, c) plane. Phase 1 computes every intermediate sample the tile
// reads into shared memory (and the optional sign/clamp code per sample); phase 2 correlates it with wd.
#pragma once
#include "upfirdn2d.cuh"

namespace studio_ops {

// Codes stored per intermediate sample for the backward pass: the derivative of t with respect to u.
enum LreluCode : uint8_t { kPositive = 0, kNegative = 1, kClamped = 2 };

struct FilteredLreluParams {
  Shape4 x, y;
  int64_t uh, uw;  // intermediate size: H * upy + pady0 + pady1 - fuh + 1 (likewise for the width)
  Resampling r;    // upsampling with the wu weights
  int fdh, fdw;    // wd weights, fdh x fdw
  int downy, downx;
  float up_gain, gain, slope, clamp;  // clamp < 0: no clamp
  int tile_h, tile_w;                 // outputs per block; one thread per output
};

// Intermediate samples read by one output tile: (tile - 1) * down + filter taps along each axis.
OPS_HD int64_t tile_rows(const FilteredLreluParams& p) { return (p.tile_h - 1) * int64_t(p.downy) + p.fdh; }
OPS_HD int64_t tile_cols(const FilteredLreluParams& p) { return (p.tile_w - 1) * int64_t(p.downx) + p.fdw; }

OPS_HD int64_t tiles_along(int64_t size, int tile) { return (size + tile - 1) / tile; }

// Phase 1, thread `t` of `threads`: fills tile[tile_rows * tile_cols] for output tile (ty, tx) of plane nc.
// Samples outside the intermediate image are set to 0; no valid output reads them.
template <typename scalar_t>
OPS_HD void filtered_lrelu_phase1(const FilteredLreluParams& p, const scalar_t* x, const scalar_t* b,
                                  const float* wu, uint8_t* codes, float* tile, int64_t nc, int64_t ty,
                                  int64_t tx, int t, int threads) {
  const int64_t n = nc / p.x.c, c = nc % p.x.c;
  const Plane<scalar_t> plane{x + n * p.x.sn + c * p.x.sc, p.x.h, p.x.w, p.x.sh, p.x.sw};
  const float bias = b != nullptr ? static_cast<float>(b[c]) : 0.0f;
  const int64_t rows = tile_rows(p), cols = tile_cols(p);
  const int64_t uy0 = ty * p.tile_h * p.downy, ux0 = tx * p.tile_w * p.downx;
  for (int64_t k = t; k < rows * cols; k += threads) {
    const int64_t uy = uy0 + k / cols, ux = ux0 + k % cols;
    float v = 0.0f;
    if (uy < p.uh && ux < p.uw) {
      const float u = p.up_gain * upsampled_window_sum(plane, p.r, wu, uy, ux, bias);
      uint8_t code = u > 0 ? kPositive : kNegative;  // torch: leaky_relu'(0) = slope
      v = (u > 0 ? u : u * p.slope) * p.gain;
      // As torch.clamp: NaN stays NaN but passes no gradient (only [-clamp, clamp] does).
      if (p.clamp >= 0 && !(fabsf(v) <= p.clamp)) {
        if (fabsf(v) > p.clamp) v = copysignf(p.clamp, v);
        code = kClamped;
      }
      if (codes != nullptr) codes[(nc * p.uh + uy) * p.uw + ux] = code;
    }
    tile[k] = v;
  }
}

// Phase 2, thread `t`: output (ty * tile_h + t / tile_w, tx * tile_w + t % tile_w) of plane nc.
template <typename scalar_t>
OPS_HD void filtered_lrelu_phase2(const FilteredLreluParams& p, const float* tile, const float* wd, scalar_t* y,
                                  int64_t nc, int64_t ty, int64_t tx, int t) {
  const int64_t ly = t / p.tile_w, lx = t % p.tile_w;
  const int64_t oy = ty * p.tile_h + ly, ox = tx * p.tile_w + lx;
  if (ly >= p.tile_h || oy >= p.y.h || ox >= p.y.w) return;
  const int64_t cols = tile_cols(p);
  float acc = 0.0f;
  for (int sy = 0; sy < p.fdh; ++sy) {
    const float* row = tile + (ly * p.downy + sy) * cols + lx * p.downx;
    for (int sx = 0; sx < p.fdw; ++sx) acc += row[sx] * wd[sy * p.fdw + sx];
  }
  const int64_t n = nc / p.x.c, c = nc % p.x.c;
  y[n * p.y.sn + c * p.y.sc + oy * p.y.sh + ox * p.y.sw] = static_cast<scalar_t>(acc);
}

}  // namespace studio_ops
