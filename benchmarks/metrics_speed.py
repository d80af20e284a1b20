"""Metric speed, ours vs references, on identical seeded random features.

    python benchmarks/metrics_speed.py            # CPU: k-NN family vs prdc and torch-fidelity, FID vs scipy
    python benchmarks/metrics_speed.py --quick    # smaller sizes, a smoke run
    python benchmarks/metrics_speed.py --gpu      # also the 50k x 50k 4096-d whole family on CUDA
    python benchmarks/metrics_speed.py --gpu-only # only that (no CPU references needed)

Ratios are measured within one run (the machine may be shared); each time is the best of --repeats
(default 3): a first call pays one-off costs (prdc's joblib thread pool, first-touch page faults) that
made prdc's single-call 64-d time twice its steady-state time.
On a CPU shared with other jobs, run with OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads otherwise
spin while waiting for a preempted sibling, which made our 2-thread timings 2-5x slower under load.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from studio.metrics.functional import RealManifold, feature_stats, fid_from_stats, knn_metrics


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, d)) + shift).astype(np.float32)


def compare_prdc(n: int, d: int, repeats: int) -> None:
    import prdc

    real, fake = features(n, d, 0), features(n, d, 1, shift=0.1)
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        t_ref, ref = best_time(lambda: prdc.compute_prdc(real, fake, nearest_k=5), repeats)
    metrics = ("precision", "recall", "density", "coverage")
    t_ours, ours = best_time(lambda: knn_metrics(real, fake, metrics, k_pr=5, k_dc=5, strict=True), repeats)
    diff = max(abs(float(ref[key]) - ours[key]) for key in metrics)
    print(
        f"P/R/D/C k=5 {n}x{n} {d}-d: prdc {t_ref:.2f} s, ours {t_ours:.3f} s, "
        f"ratio {t_ref / t_ours:.1f}x, max |diff| {diff:.2e}"
    )
    t_family, _ = best_time(lambda: knn_metrics(real, fake), repeats)
    print(f"  whole family (P/R k=3 + realism + D/C k=5 + rarity k=3) ours {t_family:.3f} s")


def compare_torch_fidelity(n: int, d: int, repeats: int) -> None:
    from torch_fidelity.metric_prc import prc_features_to_metric

    real, fake = torch.from_numpy(features(n, d, 0)), torch.from_numpy(features(n, d, 1, shift=0.1))
    kwargs = {"prc_neighborhood": 3, "prc_batch_size": 10000, "save_cpu_ram": False, "verbose": False}
    t_ref, ref = best_time(lambda: prc_features_to_metric(fake, real, **kwargs), repeats)
    t_ours, ours = best_time(lambda: knn_metrics(real, fake, ("precision", "recall")), repeats)
    diff = max(abs(ref[key] - ours[key]) for key in ("precision", "recall"))
    print(
        f"P/R k=3 {n}x{n} {d}-d: torch-fidelity {t_ref:.2f} s, ours {t_ours:.3f} s, "
        f"ratio {t_ref / t_ours:.1f}x, max |diff| {diff:.2e}"
    )


def compare_fid(n: int, d: int, repeats: int) -> None:
    import scipy.linalg

    mu1, s1 = feature_stats(features(n, d, 0))
    mu2, s2 = feature_stats(features(n, d, 1, shift=0.1) * 1.1)

    def scipy_fid() -> float:
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))

    t_ref, ref = best_time(scipy_fid, repeats)
    t_ours, ours = best_time(lambda: fid_from_stats(mu1, s1, mu2, s2), repeats)
    print(
        f"FID from stats {d}-d: scipy sqrtm {t_ref:.2f} s, ours {t_ours:.3f} s, "
        f"ratio {t_ref / t_ours:.1f}x, relative diff {abs(ref - ours) / abs(ref):.1e}"
    )


def gpu_family(n: int, d: int, repeats: int) -> None:
    gen = torch.Generator(device="cuda").manual_seed(0)
    real = torch.randn(n, d, device="cuda", generator=gen)
    fake = torch.randn(n, d, device="cuda", generator=gen) + 0.1
    knn_metrics(real[:2048], fake[:2048])  # warm-up: cuBLAS handles, allocator
    t_all, out = best_time(lambda: knn_metrics(real, fake), repeats)
    t_manifold, manifold = best_time(lambda: RealManifold(real, k_max=5), repeats)
    t_eval, _ = best_time(lambda: manifold.evaluate(fake), repeats)
    summary = {k: round(v, 4) for k, v in out.items() if isinstance(v, float)}
    print(
        f"GPU whole k-NN family {n}x{n} {d}-d ({torch.cuda.get_device_name()}): {t_all:.3f} s "
        f"(real radii {t_manifold:.3f} s, fake pass {t_eval:.3f} s) {summary}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gpu", action="store_true", help="also time the 50k x 50k 4096-d family on CUDA")
    parser.add_argument("--gpu-only", action="store_true", help="only the CUDA timing (skips the CPU cases)")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many calls per timing")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    scale = 4 if args.quick else 1
    if not args.gpu_only:
        compare_prdc(10000 // scale, 64, args.repeats)
        compare_prdc(5000 // scale, 2048, args.repeats)
        compare_torch_fidelity(10000 // scale, 64, args.repeats)
        compare_fid(4096 // scale, 2048 // scale, args.repeats)
    if args.gpu or args.gpu_only:
        if not torch.cuda.is_available():
            raise SystemExit("--gpu needs a CUDA device")
        gpu_family(50000 // scale, 4096, max(args.repeats, 3))


if __name__ == "__main__":
    main()
