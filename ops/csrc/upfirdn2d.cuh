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

// Zero-insertion upsampling along one axis: factor `up`, leading padding `pad0` (negative crops).
// `up_div` divides by up; `lift` = lift_steps * up >= max(pad0, 0) keeps the dividends non-negative.
struct UpAxis {
  int up, pad0;
  FastDiv up_div;
  int64_t lift_steps;
};

// Host only.
inline UpAxis make_up_axis(int64_t up, int64_t pad0) {
  const int64_t lift_steps = pad0 > 0 ? (pad0 + up - 1) / up : 0;
  return {static_cast<int>(up), static_cast<int>(pad0), make_fast_div(up), lift_steps};
}

struct Resampling {
  UpAxis y, x;
  int fh, fw;  // correlation weights w: fh x fw, row-major float32
};

// Along one axis, the window that starts at padded sample k >= 0 touches input samples only at taps
// t = tap, tap + up, ..., which read inputs index, index + 1, ...: index = ceil((k - pad0) / up) and
// tap = index * up - (k - pad0), in [0, up).
struct FirstTap {
  int tap;
  int64_t index;
};

OPS_HD FirstTap first_input_tap(int64_t k, const UpAxis& a) {
  const int64_t offset = k - a.pad0;
  const int64_t index = fast_div(offset + a.lift_steps * a.up + a.up - 1, a.up_div) - a.lift_steps;
  return {static_cast<int>(index * a.up - offset), index};
}

// sum_{ty, tx} w[ty, tx] * (p[ky + ty, kx + tx] + bias), where bias is added to real input samples only
// (zero padding and inserted zeros stay zero). Only taps that land on an input sample are visited (no
// division inside the loops).
template <typename scalar_t>
OPS_HD float upsampled_window_sum(const Plane<scalar_t>& x, const Resampling& r, const float* w, int64_t ky,
                                  int64_t kx, float bias) {
  const FirstTap fy = first_input_tap(ky, r.y), fx = first_input_tap(kx, r.x);
  float acc = 0.0f;
  int64_t iy = fy.index;
  for (int ty = fy.tap; ty < r.fh; ty += r.y.up, ++iy) {
    if (iy < 0 || iy >= x.rows) continue;
    int64_t ix = fx.index;
    for (int tx = fx.tap; tx < r.fw; tx += r.x.up, ++ix) {
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
  FastDiv y_c, y_h, y_w;  // divide by the output's channel count, height and width
};

// Output element number i (0 <= i < numel of y) of upfirdn2d.
template <typename scalar_t>
OPS_HD void upfirdn2d_element(int64_t i, const scalar_t* x, const float* w, scalar_t* y, const UpFirDnParams& p) {
  int64_t n, c, oy, ox;
  if (p.channels_fastest) {  // i = ((n * H + oy) * W + ox) * C + c
    const int64_t pixel = fast_div(i, p.y_c), row = fast_div(pixel, p.y_w);
    c = i - pixel * p.y.c;
    ox = pixel - row * p.y.w;
    n = fast_div(row, p.y_h);
    oy = row - n * p.y.h;
  } else {  // i = ((n * C + c) * H + oy) * W + ox
    const int64_t row = fast_div(i, p.y_w), plane = fast_div(row, p.y_h);
    ox = i - row * p.y.w;
    oy = row - plane * p.y.h;
    n = fast_div(plane, p.y_c);
    c = plane - n * p.y.c;
  }
  const Plane<scalar_t> plane{x + n * p.x.sn + c * p.x.sc, p.x.h, p.x.w, p.x.sh, p.x.sw};
  const float v = upsampled_window_sum(plane, p.r, w, oy * p.downy, ox * p.downx, 0.0f);
  y[n * p.y.sn + c * p.y.sc + oy * p.y.sh + ox * p.y.sw] = static_cast<scalar_t>(v * p.gain);
}

}  // namespace studio_ops
