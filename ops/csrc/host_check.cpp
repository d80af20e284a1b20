// CPU harness: runs the kernels' per-element and per-block functions (*.cuh) on the CPU with the same
// parameters the CUDA entry points build (prepare.h), emulating the CUDA grid and the block barrier.
// Lets tests compare the kernel math with the reference ops on machines without a GPU.
#include <ATen/ops/ones.h>

#include <vector>

#include "prepare.h"

namespace studio_ops {

at::Tensor bias_act(at::Tensor x, std::optional<at::Tensor> b, std::optional<at::Tensor> g,
                       int64_t dim, int64_t act, int64_t order, double alpha, double gain, double clamp) {
  auto call = prepare_bias_act(x, b, g, dim, act, order, alpha, gain, clamp);
  STUDIO_DISPATCH_FLOAT_TYPES(call.x.scalar_type(), "bias_act", [&] {
    const scalar_t* bp = call.b.defined() ? call.b.data_ptr<scalar_t>() : nullptr;
    const scalar_t* gp = call.g.defined() ? call.g.data_ptr<scalar_t>() : nullptr;
    for (int64_t i = 0; i < call.x.numel(); ++i)
      bias_act_element(i, call.x.data_ptr<scalar_t>(), bp, gp, call.y.data_ptr<scalar_t>(), call.p);
  });
  return call.y;
}

at::Tensor upfirdn2d(at::Tensor x, at::Tensor w, int64_t upx, int64_t upy, int64_t downx, int64_t downy,
                        int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, double gain) {
  auto call = prepare_upfirdn2d(x, w, upx, upy, downx, downy, padx0, padx1, pady0, pady1, gain);
  STUDIO_DISPATCH_FLOAT_TYPES(x.scalar_type(), "upfirdn2d", [&] {
    for (int64_t i = 0; i < call.y.numel(); ++i)
      upfirdn2d_element(i, call.x.data_ptr<scalar_t>(), call.w.data_ptr<float>(), call.y.data_ptr<scalar_t>(),
                        call.p);
  });
  return call.y;
}

std::tuple<at::Tensor, at::Tensor> filtered_lrelu(at::Tensor x, std::optional<at::Tensor> b,
                                                        at::Tensor wu, at::Tensor wd, int64_t upx,
                                                        int64_t upy, int64_t downx, int64_t downy, int64_t padx0,
                                                        int64_t padx1, int64_t pady0, int64_t pady1,
                                                        double up_gain, double gain, double slope, double clamp,
                                                        bool write_codes) {
  auto call = prepare_filtered_lrelu(x, b, wu, wd, upx, upy, downx, downy, padx0, padx1, pady0, pady1, up_gain,
                                     gain, slope, clamp, write_codes);
  const auto& p = call.p;
  const int threads = p.tile_h * p.tile_w;
  std::vector<float> shared(shared_floats(p));
  float* tile = shared.data();
  float* staged = tile + tile_floats(p);
  float* filtered = staged + staged_floats(p);
  // Each loop over t is one stretch of the kernel between barriers.
  const auto for_each_thread = [&](const auto& stage) {
    for (int t = 0; t < threads; ++t) stage(t);
  };
  STUDIO_DISPATCH_FLOAT_TYPES(x.scalar_type(), "filtered_lrelu", [&] {
    const scalar_t* xp = call.x.data_ptr<scalar_t>();
    const scalar_t* bp = call.b.defined() ? call.b.data_ptr<scalar_t>() : nullptr;
    const float* wu = call.wu.data_ptr<float>();
    const float* wd = call.wd.data_ptr<float>();
    scalar_t* y = call.y.data_ptr<scalar_t>();
    uint8_t* codes = call.codes.defined() ? call.codes.data_ptr<uint8_t>() : nullptr;
    for (int64_t nc = 0; nc < x.size(0) * x.size(1); ++nc)
      for (int64_t ty = 0; ty < tiles_along(p.y.h, p.tile_h); ++ty)
        for (int64_t tx = 0; tx < tiles_along(p.y.w, p.tile_w); ++tx) {
          std::fill(shared.begin(), shared.end(), std::nanf(""));  // a sample a stage misses shows up as NaN
          if (p.up_separable) {
            for_each_thread([&](int t) {
              filtered_lrelu_upsample_rows(p, xp, bp, wu, staged, nc, ty, tx, t, threads);
            });
            for_each_thread([&](int t) {
              filtered_lrelu_upsample_cols(p, wu, staged, codes, tile, nc, ty, tx, t, threads);
            });
          } else {
            for_each_thread([&](int t) {
              filtered_lrelu_upsample_2d(p, xp, bp, wu, codes, tile, nc, ty, tx, t, threads);
            });
          }
          if (p.down_separable) {
            for_each_thread([&](int t) { filtered_lrelu_downsample_rows(p, tile, wd, filtered, t, threads); });
            for_each_thread([&](int t) { filtered_lrelu_downsample_cols(p, filtered, wd, y, nc, ty, tx, t); });
          } else {
            for_each_thread([&](int t) { filtered_lrelu_downsample_2d(p, tile, wd, y, nc, ty, tx, t); });
          }
        }
  });
  return {call.y, call.codes};
}

}  // namespace studio_ops

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("bias_act", &studio_ops::bias_act);
  m.def("upfirdn2d", &studio_ops::upfirdn2d);
  m.def("filtered_lrelu", &studio_ops::filtered_lrelu);
  m.def("fast_divmod", [](int64_t n, int64_t d) {
    const auto f = studio_ops::make_fast_div(d);
    return std::make_tuple(studio_ops::fast_div(n, f), studio_ops::fast_mod(n, f));
  });
  // Output tile of the fused kernel for a [fdh, fdw] downsampling filter (fdw == 0: fdh separable taps).
  m.def("tile_shape", [](int64_t fdh, int64_t fdw, int64_t downy, int64_t downx) {
    auto x = at::zeros({1, 1, 64, 64});
    auto wd = fdw == 0 ? at::ones({fdh}) : at::ones({fdh, fdw});
    auto p = studio_ops::prepare_filtered_lrelu(x, std::nullopt, at::ones({1, 1}), wd, 1, 1, downx, downy, 0,
                                                0, 0, 0, 1.0, 1.0, 0.2, -1.0, false).p;
    return std::make_tuple(p.tile_h, p.tile_w);
  });
}
