// Fused filtered_lrelu kernel: one block per (plane, output tile), one thread per output; the intermediate
// tile lives in shared memory only. The math is in filtered_lrelu.cuh.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "launch.h"

namespace studio_ops {

template <typename scalar_t>
__global__ void filtered_lrelu_kernel(const scalar_t* x, const scalar_t* b, const float* wu, const float* wd,
                                      scalar_t* y, uint8_t* codes, FilteredLreluParams p) {
  extern __shared__ float tile[];
  // Grid: x = plane (n * C + c), y = tile row, z = tile column; every thread reaches the barrier.
  filtered_lrelu_phase1(p, x, b, wu, codes, tile, blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, blockDim.x);
  __syncthreads();
  filtered_lrelu_phase2(p, tile, wd, y, blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x);
}

template <typename scalar_t>
cudaError_t launch_filtered_lrelu(int64_t planes, const scalar_t* x, const scalar_t* b, const float* wu,
                                  const float* wd, scalar_t* y, uint8_t* codes, const FilteredLreluParams& p,
                                  cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(planes), static_cast<unsigned>(tiles_along(p.y.h, p.tile_h)),
                  static_cast<unsigned>(tiles_along(p.y.w, p.tile_w)));
  const size_t shared = tile_rows(p) * tile_cols(p) * sizeof(float);
  filtered_lrelu_kernel<scalar_t><<<grid, p.tile_h * p.tile_w, shared, stream>>>(x, b, wu, wd, y, codes, p);
  return cudaGetLastError();
}

#define INSTANTIATE(T)                                                                                   \
  template cudaError_t launch_filtered_lrelu<T>(int64_t, const T*, const T*, const float*, const float*, \
                                                T*, uint8_t*, const FilteredLreluParams&, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(c10::Half)
INSTANTIATE(c10::BFloat16)

}  // namespace studio_ops
