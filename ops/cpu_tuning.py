"""Every tuning constant that depends on the CPU, in one place; `python benchmarks/cpu_tuning.py`
re-measures each on the machine at hand and prints the value it would pick beside the one in use.

Block and chunk sizes scale with the largest CPU cache, read at run time from Linux sysfs, so they follow
the machine. The fractions and the depth threshold below were measured on a 2-core AMD EPYC with 32 MiB
L3 (the development machine of 2026-11); the benchmark shows whether another CPU prefers other values.
"""

import functools
from pathlib import Path

FALLBACK_CACHE_BYTES = 32 << 20  # where sysfs says nothing (not Linux, or a container hiding it)
# A process can count on a share of a large shared L3, not all of it: on a 2-core VM of a Xeon whose
# sysfs reports a 300 MiB L3, upfirdn2d chunks sized from all of it were 2x slower (227 vs 115 ms)
# than chunks sized from 32 MiB, which is also the whole L3 of the EPYC machine the fractions come from.
CACHE_BYTES_MAX = 32 << 20

# upfirdn2d's reference path on CPU: depthwise convolutions slow down several-fold once a tensor outgrows
# the caches (EPYC: 16x128x67x67 filtered 2.5x faster in batch chunks of 2), so batches run in chunks
# whose largest intermediate fills this fraction of the cache.
UPFIRDN2D_CHUNK_CACHE_FRACTION = 1 / 8

# k-NN metrics: a CPU distance block fills this fraction of the cache, so the reductions after each
# matmul read it from cache (EPYC: 16 MiB instead of 128 MiB blocks took the k-NN family from 0.49 s to
# 0.37 s at 10k x 10k, 64-d, and from 0.77 s to 0.68 s at 5k x 5k, 2048-d).
KNN_BLOCK_CACHE_FRACTION = 1 / 2
KNN_BLOCK_ELEMENTS_RANGE = (1 << 20, 1 << 25)

# k-NN metrics: on CPUs other than Intel's, float32 products of at least this depth go through oneDNN.
# On the EPYC its AVX-512 GEMM ran about twice as fast as MKL, which takes its AVX2 path on AMD CPUs
# (~210 vs ~108 GFLOP/s per core at depth 2048); shallow products are bound by writing the block, where
# BLAS into a reused buffer wins. On an Intel Xeon MKL was faster at every depth (44.5 vs 68.3 ms at 256,
# 273 vs 315 ms at 2048 for a 4096 x 4096 block), so Intel CPUs always use BLAS.
KNN_ONEDNN_MIN_DEPTH = 256


def largest_cpu_cache_bytes(sysfs: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int:
    """Size of cpu0's largest cache from Linux sysfs ("32768K"), at most CACHE_BYTES_MAX;
    FALLBACK_CACHE_BYTES where sysfs says nothing."""
    sizes = []
    for entry in sysfs.glob("index*/size"):
        try:
            text = entry.read_text().strip()
        except OSError:
            continue
        if text[:-1].isdigit() and text[-1] in "KM":
            sizes.append(int(text[:-1]) << (10 if text[-1] == "K" else 20))
    return min(max(sizes, default=FALLBACK_CACHE_BYTES), CACHE_BYTES_MAX)


@functools.cache
def cpu_vendor(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The `vendor_id` of Linux /proc/cpuinfo ("GenuineIntel", "AuthenticAMD", ...); "" elsewhere."""
    try:
        with open(cpuinfo) as lines:
            for line in lines:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def knn_onednn_min_depth() -> float:
    """Smallest feature depth whose CPU k-NN products go through oneDNN (infinite on Intel CPUs)."""
    return float("inf") if cpu_vendor() == "GenuineIntel" else KNN_ONEDNN_MIN_DEPTH


@functools.cache
def upfirdn2d_chunk_elements() -> int:
    """float32 elements of the largest intermediate of one CPU upfirdn2d batch chunk."""
    return int(largest_cpu_cache_bytes() * UPFIRDN2D_CHUNK_CACHE_FRACTION) // 4


@functools.cache
def knn_block_elements() -> int:
    """float32 elements per CPU k-NN distance block, within KNN_BLOCK_ELEMENTS_RANGE."""
    low, high = KNN_BLOCK_ELEMENTS_RANGE
    return min(max(int(largest_cpu_cache_bytes() * KNN_BLOCK_CACHE_FRACTION) // 4, low), high)
