// Fused filtered_lrelu kernel: one block per (plane, output tile), one thread per output; the intermediate
// tile lives in shared memory only. The math, and the shared-memory layout, are in filtered_lrelu.cuh.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "launch.h"

namespace studio_ops {

template <typename scalar_t>
__global__ void filtered_lrelu_kernel(const scalar_t* x, const scalar_t* b, const float* wu, const float* wd,
                                      scalar_t* y, uint8_t* codes, FilteredLreluParams p) {
  extern __shared__ float tile[];
  float* staged = tile + tile_floats(p);
  float* filtered = staged + staged_floats(p);
  // Grid: x = plane (n * C + c), y = tile row, z = tile column. The separable flags are uniform over the
  // grid, so every thread reaches every barrier.
  const int64_t nc = blockIdx.x, ty = blockIdx.y, tx = blockIdx.z;
  const int t = threadIdx.x, threads = blockDim.x;
  if (p.up_separable) {
    filtered_lrelu_upsample_rows(p, x, b, wu, staged, nc, ty, tx, t, threads);
    __syncthreads();
    filtered_lrelu_upsample_cols(p, wu, staged, codes, tile, nc, ty, tx, t, threads);
  } else {
    filtered_lrelu_upsample_2d(p, x, b, wu, codes, tile, nc, ty, tx, t, threads);
  }
  __syncthreads();
  if (p.down_separable) {
    filtered_lrelu_downsample_rows(p, tile, wd, filtered, t, threads);
    __syncthreads();
    filtered_lrelu_downsample_cols(p, filtered, wd, y, nc, ty, tx, t);
  } else {
    filtered_lrelu_downsample_2d(p, tile, wd, y, nc, ty, tx, t);
  }
}

template <typename scalar_t>
cudaError_t launch_filtered_lrelu(int64_t planes, const scalar_t* x, const scalar_t* b, const float* wu,
                                  const float* wd, scalar_t* y, uint8_t* codes, const FilteredLreluParams& p,
                                  cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(planes), static_cast<unsigned>(tiles_along(p.y.h, p.tile_h)),
                  static_cast<unsigned>(tiles_along(p.y.w, p.tile_w)));
  const size_t shared = shared_floats(p) * sizeof(float);
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
