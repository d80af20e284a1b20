// Python binding of the upfirdn2d kernel (host side: checks, allocation, dispatch on dtype).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "launch.h"
#include "prepare.h"

namespace studio_ops {

at::Tensor upfirdn2d(at::Tensor x, at::Tensor w, int64_t upx, int64_t upy, int64_t downx, int64_t downy,
                        int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, double gain) {
  TORCH_CHECK(x.is_cuda(), "upfirdn2d: x must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(x.device());
  auto call = prepare_upfirdn2d(x, w, upx, upy, downx, downy, padx0, padx1, pady0, pady1, gain);
  if (call.y.numel() == 0) return call.y;
  STUDIO_DISPATCH_FLOAT_TYPES(x.scalar_type(), "upfirdn2d", [&] {
    C10_CUDA_CHECK(launch_upfirdn2d<scalar_t>(call.y.numel(), call.x.data_ptr<scalar_t>(), call.w.data_ptr<float>(),
                                              call.y.data_ptr<scalar_t>(), call.p,
                                              c10::cuda::getCurrentCUDAStream()));
  });
  return call.y;
}

}  // namespace studio_ops

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("upfirdn2d", &studio_ops::upfirdn2d, "upsample, pad, correlate with w, downsample (CUDA)");
}
