// bias_act kernel: one thread per element (grid-stride loop); the math is in bias_act.cuh.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>

#include "launch.h"

namespace studio_ops {

template <typename scalar_t>
__global__ void bias_act_kernel(int64_t numel, const scalar_t* x, const scalar_t* b, const scalar_t* g,
                                scalar_t* y, BiasActParams p) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < numel; i += step)
    bias_act_element(i, x, b, g, y, p);
}

template <typename scalar_t>
cudaError_t launch_bias_act(int64_t numel, const scalar_t* x, const scalar_t* b, const scalar_t* g, scalar_t* y,
                            const BiasActParams& p, cudaStream_t stream) {
  constexpr int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((numel + threads - 1) / threads, 65536));
  bias_act_kernel<scalar_t><<<blocks, threads, 0, stream>>>(numel, x, b, g, y, p);
  return cudaGetLastError();
}

#define INSTANTIATE(T)                                                                                     \
  template cudaError_t launch_bias_act<T>(int64_t, const T*, const T*, const T*, T*, const BiasActParams&, \
                                          cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(c10::Half)
INSTANTIATE(c10::BFloat16)

}  // namespace studio_ops
