// Per-element math of upfirdn2d: zero-insertion upsampling, padding, FIR correlation, downsampling.
//
// Along one axis, with input length H, the padded upsampled signal is p[k] = x[(k - pad0) / up] when
// k - pad0 is a multiple of up inside [0, H * up), else 0. Output o is the correlation window that starts
// at k = o * down: y[o] = gain * sum_t w[t] * p[o * down + t]. Callers pass w already flipped for a true
// convolution, so the kernels only correlate.
#pragma once
#include "common.cuh"

namespace studio_ops {

// One image plane in memory: element (row, col) lives at data[row * row_stride + col * col_stride].
template <typename scalar_t>
struct Plane {
  const scalar_t* data;
  int64_t rows, cols, row_stride, col_stride;
};

struct Resampling {
  int upy, upx, pady0, padx0;  // upsampling factors and leading padding (negative crops)
  int fh, fw;                  // correlation weights w: fh x fw, row-major float32
};

// Along one axis, the window that starts at padded sample k touches input samples only at taps
// t = tap, tap + up, ..., which read inputs index, index + 1, ... (k + t - pad0 must be a multiple of up).
struct FirstTap {
  int tap;
  int64_t index;
};

OPS_HD FirstTap first_input_tap(int64_t k, int pad0, int up) {
  const int tap = static_cast<int>(positive_mod(pad0 - k, up));
  return {tap, (k + tap - pad0) / up};  // exact: the numerator is a multiple of up
}

// sum_{ty, tx} w[ty, tx] * (p[ky + ty, kx + tx] + bias), where bias is added to real input samples only
// (zero padding and inserted zeros stay zero). Only taps that land on an input sample are visited (no
// division inside the loops).
template <typename scalar_t>
OPS_HD float upsampled_window_sum(const Plane<scalar_t>& x, const Resampling& r, const float* w, int64_t ky,
                                  int64_t kx, float bias) {
  const FirstTap fy = first_input_tap(ky, r.pady0, r.upy), fx = first_input_tap(kx, r.padx0, r.upx);
  float acc = 0.0f;
  int64_t iy = fy.index;
  for (int ty = fy.tap; ty < r.fh; ty += r.upy, ++iy) {
    if (iy < 0 || iy >= x.rows) continue;
    int64_t ix = fx.index;
    for (int tx = fx.tap; tx < r.fw; tx += r.upx, ++ix) {
      if (ix < 0 || ix >= x.cols) continue;
      acc += (static_cast<float>(x.data[iy * x.row_stride + ix * x.col_stride]) + bias) * w[ty * r.fw + tx];
    }
  }
  return acc;
}

// Logical 4-D sizes and element strides of a tensor.
struct Shape4 {
  int64_t n, c, h, w;
  int64_t sn, sc, sh, sw;
};

struct UpFirDnParams {
  Shape4 x, y;
  Resampling r;
  int downy, downx;
  float gain;
  bool channels_fastest;  // enumerate outputs as (n, h, w, c) so channels_last memory is walked in order
};

// Output element number i (0 <= i < numel of y) of upfirdn2d.
template <typename scalar_t>
OPS_HD void upfirdn2d_element(int64_t i, const scalar_t* x, const float* w, scalar_t* y, const UpFirDnParams& p) {
  int64_t n, c, oy, ox;
  if (p.channels_fastest) {
    c = i % p.y.c;
    ox = (i / p.y.c) % p.y.w;
    oy = (i / (p.y.c * p.y.w)) % p.y.h;
    n = i / (p.y.c * p.y.w * p.y.h);
  } else {
    ox = i % p.y.w;
    oy = (i / p.y.w) % p.y.h;
    c = (i / (p.y.w * p.y.h)) % p.y.c;
    n = i / (p.y.w * p.y.h * p.y.c);
  }
  const Plane<scalar_t> plane{x + n * p.x.sn + c * p.x.sc, p.x.h, p.x.w, p.x.sh, p.x.sw};
  const float v = upsampled_window_sum(plane, p.r, w, oy * p.downy, ox * p.downx, 0.0f);
  y[n * p.y.sn + c * p.y.sc + oy * p.y.sh + ox * p.y.sw] = static_cast<scalar_t>(v * p.gain);
}

}  // namespace studio_ops
