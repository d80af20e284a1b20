// Shared helpers for the studio CUDA ops. Everything here is __host__ __device__ so the same per-element
// code runs in the CUDA kernels and in the CPU harness (host_check.cpp) that tests it without a GPU.
#pragma once
#include <cstdint>
#include <math.h>

#if defined(__CUDACC__)
#define OPS_HD __host__ __device__ __forceinline__
#else
#define OPS_HD inline
#endif

namespace studio_ops {

// Remainder in [0, m) also for negative a (C++ % truncates toward zero).
OPS_HD int64_t positive_mod(int64_t a, int64_t m) { return ((a % m) + m) % m; }

}  // namespace studio_ops
