"""Re-derive the CPU tuning constants of ops/cpu_tuning.py on this machine.

    python benchmarks/cpu_tuning.py [--repeats 3]

For each constant it times the code that uses it over a range of values and prints the fastest beside
the value in use. Run it on a quiet machine (compare the load average it prints); to adopt a value,
change ops/cpu_tuning.py and record the machine and the numbers there.
"""

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

import torch
from metrics_speed import best_time  # benchmarks/ is the script's folder

import ops
from ops import cpu_tuning
from studio.metrics.functional import knn_metrics


def report(name: str, in_use: object, timings: dict[object, float]) -> None:
    fastest = min(timings, key=timings.get)
    cells = ", ".join(f"{value}: {seconds * 1e3:.1f} ms" for value, seconds in timings.items())
    print(f"{name}: in use {in_use}, fastest {fastest}  ({cells})")


@contextmanager
def fraction_in_use(name: str, fraction: float, derived: Callable[[], int]) -> Iterator[None]:
    """Set the cache fraction `name` of ops.cpu_tuning and recompute the cached size derived from it."""
    with mock.patch.object(cpu_tuning, name, fraction):
        derived.cache_clear()
        yield
    derived.cache_clear()


def upfirdn2d_chunks(repeats: int) -> None:
    """The StyleGAN2 shape the constant was measured on: 16 x 128 x 67 x 67, [1,3,3,1] upsampling."""
    x, f = torch.randn(16, 128, 67, 67), ops.setup_filter([1, 3, 3, 1])
    timings = {}
    for fraction in (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 4):
        label = f"1/{round(1 / fraction)}" if fraction < 1 else str(fraction)
        with fraction_in_use("UPFIRDN2D_CHUNK_CACHE_FRACTION", fraction, cpu_tuning.upfirdn2d_chunk_elements):
            timings[label] = best_time(lambda: ops.upsample2d(x, f, impl="ref"), repeats)[0]
    report("UPFIRDN2D_CHUNK_CACHE_FRACTION", cpu_tuning.UPFIRDN2D_CHUNK_CACHE_FRACTION, timings)


def knn_blocks(repeats: int) -> None:
    """The whole k-NN family, 5000 x 5000 at 64-d, with CPU blocks of several fractions of the cache."""
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(5000, 64, generator=generator), torch.randn(5000, 64, generator=generator)
    timings = {}
    for fraction in (1 / 8, 1 / 4, 1 / 2, 1, 2, 4):
        with fraction_in_use("KNN_BLOCK_CACHE_FRACTION", fraction, cpu_tuning.knn_block_elements):
            timings[str(fraction)] = best_time(lambda: knn_metrics(real, fake), repeats)[0]
    report("KNN_BLOCK_CACHE_FRACTION", cpu_tuning.KNN_BLOCK_CACHE_FRACTION, timings)


def onednn_depth(repeats: int) -> None:
    """One 4096 x 4096 distance block per depth: oneDNN vs BLAS into a reused buffer; the constant is
    the smallest depth from which oneDNN is faster."""
    out = torch.empty(4096, 4096)
    first_faster = None
    for depth in (32, 64, 128, 256, 512, 1024, 2048):
        left, right = torch.randn(4096, depth + 2), torch.randn(4096, depth + 2)
        blas = best_time(lambda l=left, r=right: torch.mm(l, r.T, out=out), repeats)[0]
        if not torch.backends.mkldnn.is_available():
            print("oneDNN is not available in this torch build; KNN_ONEDNN_MIN_DEPTH has no effect")
            return
        onednn = best_time(
            lambda l=left, r=right: torch.ops.mkldnn._linear_pointwise(l, r, None, "none", [], ""), repeats
        )[0]
        print(f"  depth {depth}: BLAS {blas * 1e3:.1f} ms, oneDNN {onednn * 1e3:.1f} ms")
        if onednn < blas and first_faster is None:
            first_faster = depth
        elif onednn >= blas:
            first_faster = None
    print(
        f"KNN_ONEDNN_MIN_DEPTH ({cpu_tuning.cpu_vendor() or 'unknown vendor'}): in use "
        f"{cpu_tuning.knn_onednn_min_depth()}, oneDNN faster from depth {first_faster}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cache = cpu_tuning.largest_cpu_cache_bytes()
    print(
        f"largest CPU cache {cache >> 20} MiB, {torch.get_num_threads()} torch threads, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    upfirdn2d_chunks(args.repeats)
    knn_blocks(args.repeats)
    onednn_depth(args.repeats)


if __name__ == "__main__":
    main()
