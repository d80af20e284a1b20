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

// Division by a divisor fixed at launch. GPUs have no integer divide instruction: a 64-bit `/` or `%` is
// a software routine of ~70 instructions, which would dominate the per-element index arithmetic of these
// memory-bound kernels. Instead q = (umulhi(n, magic) + n) >> shift with magic = 2^64 (2^shift - d) / d + 1
// and shift = ceil(log2 d) (Granlund & Montgomery 1994, the round-up method with a 65-bit multiplier
// 2^64 + magic = floor(2^(64+shift) / d) + 1): exact for every 0 <= n < 2^63 and 1 <= d <= 2^63.
struct FastDiv {
  uint64_t divisor, magic;
  int shift;
};

// Host only (kernel parameters are built on the host).
inline FastDiv make_fast_div(int64_t divisor) {
  const uint64_t d = divisor < 1 ? 1 : static_cast<uint64_t>(divisor);
  int shift = 0;
  while ((uint64_t(1) << shift) < d) ++shift;
  const unsigned __int128 magic = ((static_cast<unsigned __int128>(1) << 64) * ((uint64_t(1) << shift) - d)) / d + 1;
  return {d, static_cast<uint64_t>(magic), shift};
}

OPS_HD uint64_t umulhi64(uint64_t a, uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
}

// n / d and n % d for 0 <= n < 2^63.
OPS_HD int64_t fast_div(int64_t n, const FastDiv& f) {
  const uint64_t u = static_cast<uint64_t>(n);
  return static_cast<int64_t>((umulhi64(u, f.magic) + u) >> f.shift);
}
OPS_HD int64_t fast_mod(int64_t n, const FastDiv& f) { return n - fast_div(n, f) * static_cast<int64_t>(f.divisor); }

}  // namespace studio_ops
