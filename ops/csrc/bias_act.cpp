// Python binding of the bias_act kernel (host side: checks, allocation, dispatch on dtype).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "launch.h"
#include "prepare.h"

namespace studio_ops {

at::Tensor bias_act(at::Tensor x, std::optional<at::Tensor> b, std::optional<at::Tensor> g,
                       int64_t dim, int64_t act, int64_t order, double alpha, double gain, double clamp) {
  TORCH_CHECK(x.is_cuda(), "bias_act: x must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(x.device());
  auto call = prepare_bias_act(x, b, g, dim, act, order, alpha, gain, clamp);
  if (call.x.numel() == 0) return call.y;
  STUDIO_DISPATCH_FLOAT_TYPES(call.x.scalar_type(), "bias_act", [&] {
    C10_CUDA_CHECK(launch_bias_act<scalar_t>(
        call.x.numel(), call.x.data_ptr<scalar_t>(), call.b.defined() ? call.b.data_ptr<scalar_t>() : nullptr,
        call.g.defined() ? call.g.data_ptr<scalar_t>() : nullptr, call.y.data_ptr<scalar_t>(), call.p,
        c10::cuda::getCurrentCUDAStream()));
  });
  return call.y;
}

}  // namespace studio_ops

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("bias_act", &studio_ops::bias_act, "bias_act, or its order-th derivative times g (CUDA)");
}
