// upfirdn2d kernel: one thread per output element (grid-stride loop); the math is in upfirdn2d.cuh.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>

#include "launch.h"

namespace studio_ops {

template <typename scalar_t>
__global__ void upfirdn2d_kernel(int64_t numel, const scalar_t* x, const float* w, scalar_t* y, UpFirDnParams p) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < numel; i += step)
    upfirdn2d_element(i, x, w, y, p);
}

template <typename scalar_t>
cudaError_t launch_upfirdn2d(int64_t numel, const scalar_t* x, const float* w, scalar_t* y, const UpFirDnParams& p,
                             cudaStream_t stream) {
  constexpr int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((numel + threads - 1) / threads, 1 << 20));
  upfirdn2d_kernel<scalar_t><<<blocks, threads, 0, stream>>>(numel, x, w, y, p);
  return cudaGetLastError();
}

#define INSTANTIATE(T) \
  template cudaError_t launch_upfirdn2d<T>(int64_t, const T*, const float*, T*, const UpFirDnParams&, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(c10::Half)
INSTANTIATE(c10::BFloat16)

}  // namespace studio_ops
