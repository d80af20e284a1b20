// Per-block math of the fused filtered_lrelu:
//   u = up_gain * upfirdn2d(x + b, wu, up, padding)      (intermediate, never written to global memory)
//   t = clamp(lrelu(u, slope) * gain)
//   y = upfirdn2d(t, wd, down)
// A block owns one output tile of one (n, c) plane. The upsampling stage computes every intermediate
// sample the tile reads into shared memory (and the optional sign/clamp code per sample); the
// downsampling stage correlates that tile with wd. Each stage has a 2-D form (any [fh, fw] weights) and a
// separable form for filters given as 1-D taps (the outer product with themselves, as ops.setup_filter's
// 1-D filters): a pass along rows into shared memory, a barrier, then a pass along columns. For the
// StyleGAN3 layers (12 taps, up 2, down 2) that is 12 + 6 instead of 36 multiply-adds per intermediate
// sample and 12 + 12 instead of 144 per output, and every input sample is read from global memory once
// per row pass instead of once per tap.
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
  bool up_separable, down_separable;  // the weights are 1-D taps used along both axes (fh == fw)
  FastDiv x_c, tile_w_div, tile_cols_div;  // divide by C, tile_w and tile_cols(p)
};

// Intermediate samples read by one output tile: (tile - 1) * down + filter taps along each axis.
OPS_HD int64_t tile_rows(const FilteredLreluParams& p) { return (p.tile_h - 1) * int64_t(p.downy) + p.fdh; }
OPS_HD int64_t tile_cols(const FilteredLreluParams& p) { return (p.tile_w - 1) * int64_t(p.downx) + p.fdw; }

OPS_HD int64_t tiles_along(int64_t size, int tile) { return (size + tile - 1) / tile; }

// Separable upsampling stages the input rows the tile's windows touch, each filtered along x. The
// windows of tile_rows consecutive intermediate rows span tile_rows + fh - 1 padded rows, which hold at
// most ceil(that / upy) input rows, starting at the first input row at or after the tile's first window.
OPS_HD int64_t staged_rows(const FilteredLreluParams& p) {
  return fast_div(tile_rows(p) + p.r.fh - 1 + p.r.y.up - 1, p.r.y.up_div);
}
OPS_HD int64_t first_staged_row(const FilteredLreluParams& p, int64_t ty) {
  return first_input_tap(ty * p.tile_h * p.downy, p.r.y).index;
}

// Shared memory of one block, in floats: the intermediate tile, then the staged input rows (separable
// upsampling), then the row-filtered intermediate rows (separable downsampling).
OPS_HD int64_t tile_floats(const FilteredLreluParams& p) { return tile_rows(p) * tile_cols(p); }
OPS_HD int64_t staged_floats(const FilteredLreluParams& p) {
  return p.up_separable ? staged_rows(p) * tile_cols(p) : 0;
}
OPS_HD int64_t shared_floats(const FilteredLreluParams& p) {
  return tile_floats(p) + staged_floats(p) + (p.down_separable ? tile_rows(p) * p.tile_w : 0);
}

// t = clamp(lrelu(u) * gain) and the code of the branch taken (written when code is not null).
OPS_HD float activate(const FilteredLreluParams& p, float u, uint8_t* code) {
  uint8_t branch = u > 0 ? kPositive : kNegative;  // torch: leaky_relu'(0) = slope
  float v = (u > 0 ? u : u * p.slope) * p.gain;
  // As torch.clamp: NaN stays NaN but passes no gradient (only [-clamp, clamp] does).
  if (p.clamp >= 0 && !(fabsf(v) <= p.clamp)) {
    if (fabsf(v) > p.clamp) v = copysignf(p.clamp, v);
    branch = kClamped;
  }
  if (code != nullptr) *code = branch;
  return v;
}

template <typename scalar_t>
OPS_HD Plane<scalar_t> input_plane(const FilteredLreluParams& p, const scalar_t* x, int64_t nc) {
  const int64_t n = fast_div(nc, p.x_c);
  return {x + n * p.x.sn + (nc - n * p.x.c) * p.x.sc, p.x.h, p.x.w, p.x.sh, p.x.sw};
}

// Intermediate sample k of the tile: its row and column in the intermediate image.
OPS_HD int64_t tile_sample_row(const FilteredLreluParams& p, int64_t ty, int64_t k) {
  return ty * p.tile_h * p.downy + fast_div(k, p.tile_cols_div);
}
OPS_HD int64_t tile_sample_col(const FilteredLreluParams& p, int64_t tx, int64_t k) {
  return tx * p.tile_w * p.downx + fast_mod(k, p.tile_cols_div);
}

// Tile sample k from its upsampled value u: activated into tile[k], code stored; 0 outside the image
// (no valid output reads those).
OPS_HD void store_tile_sample(const FilteredLreluParams& p, float u, uint8_t* codes, float* tile, int64_t nc,
                              int64_t uy, int64_t ux, int64_t k) {
  float v = 0.0f;
  if (uy < p.uh && ux < p.uw) {
    v = activate(p, u, codes != nullptr ? &codes[(nc * p.uh + uy) * p.uw + ux] : nullptr);
  }
  tile[k] = v;
}

// 2-D upsampling, thread `t` of `threads`: fills tile[tile_rows * tile_cols] for output tile (ty, tx) of
// plane nc.
template <typename scalar_t>
OPS_HD void filtered_lrelu_upsample_2d(const FilteredLreluParams& p, const scalar_t* x, const scalar_t* b,
                                       const float* wu, uint8_t* codes, float* tile, int64_t nc, int64_t ty,
                                       int64_t tx, int t, int threads) {
  const Plane<scalar_t> plane = input_plane(p, x, nc);
  const float bias = b != nullptr ? static_cast<float>(b[fast_mod(nc, p.x_c)]) : 0.0f;
  const int64_t samples = tile_floats(p);
  for (int64_t k = t; k < samples; k += threads) {
    const int64_t uy = tile_sample_row(p, ty, k), ux = tile_sample_col(p, tx, k);
    const bool inside = uy < p.uh && ux < p.uw;
    const float u = inside ? p.up_gain * upsampled_window_sum(plane, p.r, wu, uy, ux, bias) : 0.0f;
    store_tile_sample(p, u, codes, tile, nc, uy, ux, k);
  }
}

// Separable upsampling, row pass: staged[staged_rows * tile_cols] holds, for each staged input row, the
// tile's columns filtered along x (bias added to real samples); rows outside the input are 0.
template <typename scalar_t>
OPS_HD void filtered_lrelu_upsample_rows(const FilteredLreluParams& p, const scalar_t* x, const scalar_t* b,
                                         const float* wu, float* staged, int64_t nc, int64_t ty, int64_t tx,
                                         int t, int threads) {
  const Plane<scalar_t> plane = input_plane(p, x, nc);
  const float bias = b != nullptr ? static_cast<float>(b[fast_mod(nc, p.x_c)]) : 0.0f;
  const int64_t iy0 = first_staged_row(p, ty), samples = staged_rows(p) * tile_cols(p);
  for (int64_t k = t; k < samples; k += threads) {
    const int64_t iy = iy0 + fast_div(k, p.tile_cols_div);
    float acc = 0.0f;
    if (iy >= 0 && iy < plane.rows) {
      const FirstTap fx = first_input_tap(tile_sample_col(p, tx, k), p.r.x);
      int64_t ix = fx.index;
      for (int tap = fx.tap; tap < p.r.fw; tap += p.r.x.up, ++ix) {
        if (ix < 0 || ix >= plane.cols) continue;
        acc += (static_cast<float>(plane.data[iy * plane.row_stride + ix * plane.col_stride]) + bias) * wu[tap];
      }
    }
    staged[k] = acc;
  }
}

// Separable upsampling, column pass: each tile sample filters the staged rows along y, then activates.
OPS_HD void filtered_lrelu_upsample_cols(const FilteredLreluParams& p, const float* wu, const float* staged,
                                         uint8_t* codes, float* tile, int64_t nc, int64_t ty, int64_t tx, int t,
                                         int threads) {
  const int64_t cols = tile_cols(p), iy0 = first_staged_row(p, ty), samples = tile_floats(p);
  for (int64_t k = t; k < samples; k += threads) {
    const int64_t uy = tile_sample_row(p, ty, k), ux = tile_sample_col(p, tx, k);
    float acc = 0.0f;
    if (uy < p.uh && ux < p.uw) {
      const FirstTap fy = first_input_tap(uy, p.r.y);
      const float* column = staged + (fy.index - iy0) * cols + fast_mod(k, p.tile_cols_div);
      for (int tap = fy.tap; tap < p.r.fh; tap += p.r.y.up, column += cols) acc += *column * wu[tap];
    }
    store_tile_sample(p, p.up_gain * acc, codes, tile, nc, uy, ux, k);
  }
}

// Output (ty * tile_h + ly, tx * tile_w + lx) of plane nc, if it exists.
template <typename scalar_t>
OPS_HD void store_output(const FilteredLreluParams& p, scalar_t* y, int64_t nc, int64_t ty, int64_t tx, int64_t ly,
                         int64_t lx, float value) {
  const int64_t oy = ty * p.tile_h + ly, ox = tx * p.tile_w + lx;
  if (ly >= p.tile_h || oy >= p.y.h || ox >= p.y.w) return;
  const int64_t n = fast_div(nc, p.x_c);
  y[n * p.y.sn + (nc - n * p.x.c) * p.y.sc + oy * p.y.sh + ox * p.y.sw] = static_cast<scalar_t>(value);
}

// 2-D downsampling, thread `t` of tile_h * tile_w: output (ly, lx) = (t / tile_w, t % tile_w) of the tile.
template <typename scalar_t>
OPS_HD void filtered_lrelu_downsample_2d(const FilteredLreluParams& p, const float* tile, const float* wd,
                                         scalar_t* y, int64_t nc, int64_t ty, int64_t tx, int t) {
  const int64_t ly = fast_div(t, p.tile_w_div), lx = t - ly * p.tile_w, cols = tile_cols(p);
  float acc = 0.0f;
  for (int sy = 0; sy < p.fdh; ++sy) {
    const float* row = tile + (ly * p.downy + sy) * cols + lx * p.downx;
    for (int sx = 0; sx < p.fdw; ++sx) acc += row[sx] * wd[sy * p.fdw + sx];
  }
  store_output(p, y, nc, ty, tx, ly, lx, acc);
}

// Separable downsampling, row pass: filtered[tile_rows * tile_w] is the tile filtered and decimated along x.
OPS_HD void filtered_lrelu_downsample_rows(const FilteredLreluParams& p, const float* tile, const float* wd,
                                           float* filtered, int t, int threads) {
  const int64_t cols = tile_cols(p), samples = tile_rows(p) * p.tile_w;
  for (int64_t k = t; k < samples; k += threads) {
    const int64_t r = fast_div(k, p.tile_w_div);
    const float* row = tile + r * cols + (k - r * p.tile_w) * p.downx;
    float acc = 0.0f;
    for (int sx = 0; sx < p.fdw; ++sx) acc += row[sx] * wd[sx];
    filtered[k] = acc;
  }
}

// Separable downsampling, column pass, thread `t`: output (t / tile_w, t % tile_w) of the tile.
template <typename scalar_t>
OPS_HD void filtered_lrelu_downsample_cols(const FilteredLreluParams& p, const float* filtered, const float* wd,
                                           scalar_t* y, int64_t nc, int64_t ty, int64_t tx, int t) {
  const int64_t ly = fast_div(t, p.tile_w_div), lx = t - ly * p.tile_w;
  float acc = 0.0f;
  const float* column = filtered + ly * p.downy * p.tile_w + lx;
  for (int sy = 0; sy < p.fdh; ++sy, column += p.tile_w) acc += *column * wd[sy];
  store_output(p, y, nc, ty, tx, ly, lx, acc);
}

}  // namespace studio_ops
