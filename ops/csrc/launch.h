// Kernel launchers, compiled by nvcc in <op>.cu and called from the host-compiled <op>.cpp. Keeping
// torch's headers out of the .cu files keeps the device compilation (once per architecture) fast.
#pragma once
#include <cuda_runtime_api.h>

#include "bias_act.cuh"
#include "filtered_lrelu.cuh"
#include "upfirdn2d.cuh"

namespace studio_ops {

template <typename scalar_t>
cudaError_t launch_bias_act(int64_t numel, const scalar_t* x, const scalar_t* b, const scalar_t* g, scalar_t* y,
                            const BiasActParams& p, cudaStream_t stream);

template <typename scalar_t>
cudaError_t launch_upfirdn2d(int64_t numel, const scalar_t* x, const float* w, scalar_t* y, const UpFirDnParams& p,
                             cudaStream_t stream);

template <typename scalar_t>
cudaError_t launch_filtered_lrelu(int64_t planes, const scalar_t* x, const scalar_t* b, const float* wu,
                                  const float* wd, scalar_t* y, uint8_t* codes, const FilteredLreluParams& p,
                                  cudaStream_t stream);

}  // namespace studio_ops
