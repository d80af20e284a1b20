// Python binding of the fused filtered_lrelu kernel (host side: checks, allocation, dispatch on dtype).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "launch.h"
#include "prepare.h"

namespace studio_ops {

std::tuple<at::Tensor, at::Tensor> filtered_lrelu(at::Tensor x, std::optional<at::Tensor> b,
                                                        at::Tensor wu, at::Tensor wd, int64_t upx,
                                                        int64_t upy, int64_t downx, int64_t downy, int64_t padx0,
                                                        int64_t padx1, int64_t pady0, int64_t pady1,
                                                        double up_gain, double gain, double slope, double clamp,
                                                        bool write_codes) {
  TORCH_CHECK(x.is_cuda(), "filtered_lrelu: x must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(x.device());
  auto call = prepare_filtered_lrelu(x, b, wu, wd, upx, upy, downx, downy, padx0, padx1, pady0, pady1, up_gain,
                                     gain, slope, clamp, write_codes);
  const int64_t planes = x.size(0) * x.size(1);
  if (planes == 0) return {call.y, call.codes};
  STUDIO_DISPATCH_FLOAT_TYPES(x.scalar_type(), "filtered_lrelu", [&] {
    C10_CUDA_CHECK(launch_filtered_lrelu<scalar_t>(
        planes, call.x.data_ptr<scalar_t>(), call.b.defined() ? call.b.data_ptr<scalar_t>() : nullptr,
        call.wu.data_ptr<float>(), call.wd.data_ptr<float>(), call.y.data_ptr<scalar_t>(),
        call.codes.defined() ? call.codes.data_ptr<uint8_t>() : nullptr, call.p, c10::cuda::getCurrentCUDAStream()));
  });
  return {call.y, call.codes};
}

}  // namespace studio_ops

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("filtered_lrelu", &studio_ops::filtered_lrelu,
        "fused bias, upsampling FIR, leaky ReLU, gain, clamp and downsampling FIR (CUDA); returns (y, codes)");
}
