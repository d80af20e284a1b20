// Host-side argument checks, output allocation and kernel parameters, shared by the CUDA entry points
// (*.cu) and the CPU harness (host_check.cpp) so the harness exercises exactly what the kernels receive.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/utils/pybind.h>

#include <optional>
#include <tuple>

#include "bias_act.cuh"
#include "filtered_lrelu.cuh"
#include "upfirdn2d.cuh"

// float32, float16 and bfloat16 only: the kernels accumulate in float32, so float64 stays on the reference.
#define STUDIO_DISPATCH_FLOAT_TYPES(TYPE, NAME, ...)                                            \
  AT_DISPATCH_SWITCH(TYPE, NAME, AT_DISPATCH_CASE(at::kFloat, __VA_ARGS__)                     \
                         AT_DISPATCH_CASE(at::kHalf, __VA_ARGS__) AT_DISPATCH_CASE(at::kBFloat16, __VA_ARGS__))

namespace studio_ops {

inline Shape4 shape4(const at::Tensor& t) {
  return {t.size(0), t.size(1), t.size(2), t.size(3), t.stride(0), t.stride(1), t.stride(2), t.stride(3)};
}

inline void check_dtype(const at::Tensor& x, const char* op) {
  const auto dt = x.scalar_type();
  TORCH_CHECK(dt == at::kFloat || dt == at::kHalf || dt == at::kBFloat16, op,
              ": the compiled kernel supports float32, float16 and bfloat16, got ", dt, "; use impl='ref'");
}

inline void check_same_device(const std::optional<at::Tensor>& t, const at::Tensor& x, const char* op) {
  TORCH_CHECK(!t.has_value() || t->device() == x.device(), op, ": all tensors must be on the device of x (",
              x.device(), "), got one on ", t.has_value() ? t->device() : x.device());
}

// 2-D [fh, fw] weights; with `separable_ok`, also 1-D taps used along both axes.
inline void check_weights(const at::Tensor& w, const at::Tensor& x, const char* op, bool separable_ok = false) {
  TORCH_CHECK((w.dim() == 2 || (separable_ok && w.dim() == 1)) && w.scalar_type() == at::kFloat &&
                  w.is_contiguous() && w.numel() > 0,
              op, ": weights must be a contiguous non-empty ", separable_ok ? "1-D or 2-D" : "2-D",
              " float32 tensor");
  check_same_device(w, x, op);
}

// Output length of upfirdn along one axis.
inline int64_t resampled_size(int64_t in, int up, int down, int pad0, int pad1, int64_t taps) {
  return (in * up + pad0 + pad1 - taps + down) / down;
}

struct BiasActCall {
  at::Tensor x, b, g, y;
  BiasActParams p;
};

inline BiasActCall prepare_bias_act(at::Tensor x, const std::optional<at::Tensor>& b,
                                    const std::optional<at::Tensor>& g, int64_t dim, int64_t act,
                                    int64_t order, double alpha, double gain, double clamp) {
  check_dtype(x, "bias_act");
  check_same_device(b, x, "bias_act");
  check_same_device(g, x, "bias_act");
  TORCH_CHECK(0 <= dim && dim < std::max<int64_t>(x.dim(), 1), "bias_act: dim out of range");
  TORCH_CHECK(0 <= order && order <= 2, "bias_act: derivative order must be 0, 1 or 2");
  // x, g and y share one dense layout, so one memory index addresses the same element in all three.
  const auto fmt = x.suggest_memory_format();
  BiasActCall call;
  call.x = x.contiguous(fmt);
  call.y = at::empty_like(call.x, fmt);
  int64_t bias_len = 0;
  if (b.has_value()) {
    TORCH_CHECK(b->dim() == 1 && b->size(0) == x.size(dim), "bias_act: b must have shape [x.shape[dim]]");
    TORCH_CHECK(b->scalar_type() == x.scalar_type(), "bias_act: b must have the dtype of x");
    call.b = b->contiguous();
    bias_len = x.size(dim);
  }
  if (order > 0) {
    TORCH_CHECK(g.has_value() && g->sizes() == x.sizes() && g->scalar_type() == x.scalar_type(),
                "bias_act: the incoming gradient must match x in shape and dtype");
    call.g = g->contiguous(fmt);
  }
  const int64_t stride = x.dim() > 0 && call.x.size(dim) > 1 ? call.x.stride(dim) : 1;
  call.p = {static_cast<int>(act),   static_cast<int>(order), static_cast<float>(alpha),
            static_cast<float>(gain), static_cast<float>(clamp), bias_len,
            make_fast_div(stride),     make_fast_div(bias_len)};
  return call;
}

struct UpFirDnCall {
  at::Tensor x, w, y;
  UpFirDnParams p;
};

inline UpFirDnCall prepare_upfirdn2d(const at::Tensor& x, const at::Tensor& w, int64_t upx, int64_t upy,
                                     int64_t downx, int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0,
                                     int64_t pady1, double gain) {
  check_dtype(x, "upfirdn2d");
  check_weights(w, x, "upfirdn2d");
  TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must be [N, C, H, W]");
  TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: up and down must be >= 1");
  const int64_t oh = resampled_size(x.size(2), upy, downy, pady0, pady1, w.size(0));
  const int64_t ow = resampled_size(x.size(3), upx, downx, padx0, padx1, w.size(1));
  TORCH_CHECK(oh >= 1 && ow >= 1, "upfirdn2d: padding and filter leave an empty output");
  const bool channels_last = x.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
  UpFirDnCall call;
  call.x = x;
  call.w = w;
  call.y = at::empty({x.size(0), x.size(1), oh, ow},
                        x.options().memory_format(channels_last ? at::MemoryFormat::ChannelsLast
                                                                : at::MemoryFormat::Contiguous));
  const Resampling r{make_up_axis(upy, pady0), make_up_axis(upx, padx0), static_cast<int>(w.size(0)),
                     static_cast<int>(w.size(1))};
  call.p = {shape4(x),
            shape4(call.y),
            r,
            static_cast<int>(downy),
            static_cast<int>(downx),
            static_cast<float>(gain),
            channels_last,
            make_fast_div(call.y.size(1)),
            make_fast_div(oh),
            make_fast_div(ow)};
  return call;
}

constexpr int64_t kMaxTileBytes = 48 * 1024;  // static shared-memory limit per block without opt-in

struct FilteredLreluCall {
  at::Tensor x, b, wu, wd, y, codes;
  FilteredLreluParams p;
};

inline FilteredLreluCall prepare_filtered_lrelu(const at::Tensor& x, const std::optional<at::Tensor>& b,
                                                const at::Tensor& wu, const at::Tensor& wd, int64_t upx,
                                                int64_t upy, int64_t downx, int64_t downy, int64_t padx0,
                                                int64_t padx1, int64_t pady0, int64_t pady1, double up_gain,
                                                double gain, double slope, double clamp, bool write_codes) {
  check_dtype(x, "filtered_lrelu");
  check_weights(wu, x, "filtered_lrelu", true);
  check_weights(wd, x, "filtered_lrelu", true);
  check_same_device(b, x, "filtered_lrelu");
  TORCH_CHECK(x.dim() == 4, "filtered_lrelu: x must be [N, C, H, W]");
  TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "filtered_lrelu: up and down must be >= 1");
  FilteredLreluCall call;
  call.x = x;
  call.wu = wu;
  call.wd = wd;
  if (b.has_value()) {
    TORCH_CHECK(b->dim() == 1 && b->size(0) == x.size(1), "filtered_lrelu: b must have shape [C]");
    TORCH_CHECK(b->scalar_type() == x.scalar_type(), "filtered_lrelu: b must have the dtype of x");
    call.b = b->contiguous();
  }
  const int64_t uh = resampled_size(x.size(2), upy, 1, pady0, pady1, wu.size(0));
  const int64_t uw = resampled_size(x.size(3), upx, 1, padx0, padx1, wu.size(-1));
  const int64_t oh = resampled_size(uh, 1, downy, 0, 0, wd.size(0));
  const int64_t ow = resampled_size(uw, 1, downx, 0, 0, wd.size(-1));
  TORCH_CHECK(uh >= 1 && uw >= 1 && oh >= 1 && ow >= 1,
              "filtered_lrelu: padding and filters leave an empty output");
  const auto fmt = x.suggest_memory_format() == at::MemoryFormat::ChannelsLast ? at::MemoryFormat::ChannelsLast
                                                                               : at::MemoryFormat::Contiguous;
  call.y = at::empty({x.size(0), x.size(1), oh, ow}, x.options().memory_format(fmt));
  if (write_codes) call.codes = at::zeros({x.size(0), x.size(1), uh, uw}, x.options().dtype(at::kByte));
  const Resampling r{make_up_axis(upy, pady0), make_up_axis(upx, padx0), static_cast<int>(wu.size(0)),
                     static_cast<int>(wu.size(-1))};
  FilteredLreluParams p{shape4(x), shape4(call.y), uh, uw, r, static_cast<int>(wd.size(0)),
                        static_cast<int>(wd.size(-1)), static_cast<int>(downy), static_cast<int>(downx),
                        static_cast<float>(up_gain), static_cast<float>(gain), static_cast<float>(slope),
                        static_cast<float>(clamp), 16, 16, wu.dim() == 1, wd.dim() == 1, make_fast_div(x.size(1))};
  // Shrink the output tile until the block's shared memory fits.
  while (shared_floats(p) * int64_t(sizeof(float)) > kMaxTileBytes && p.tile_h > 1) {
    p.tile_h /= 2;
    p.tile_w /= 2;
  }
  TORCH_CHECK(shared_floats(p) * int64_t(sizeof(float)) <= kMaxTileBytes,
              "filtered_lrelu: the downsampling filter is too large for the fused kernel; use impl='ref'");
  TORCH_CHECK(x.size(0) * x.size(1) < (int64_t(1) << 31) && tiles_along(oh, p.tile_h) <= 65535 &&
                  tiles_along(ow, p.tile_w) <= 65535,
              "filtered_lrelu: tensor too large for the kernel grid; use impl='ref'");
  p.tile_w_div = make_fast_div(p.tile_w);
  p.tile_cols_div = make_fast_div(tile_cols(p));
  call.p = p;
  return call;
}

}  // namespace studio_ops
