"""Precision and recall for distributions, PRD (Sajjadi et al. 2018, "Assessing Generative Models via
Precision and Recall"), following google-research/prd's `compute_prd_from_embedding`.

The union of both sets is clustered with scikit-learn's MiniBatchKMeans(n_clusters, n_init=10); the
two cluster histograms give, for every slope lambda = tan(angle), precision(lambda) =
sum_i min(lambda * real_i, fake_i) and recall = precision / lambda. Curves are averaged over runs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from studio.metrics.functional._inputs import FeatureArray, as_feature_pair
from studio.runtime import available_cores

_ANGLE_EPSILON = 1e-10
_F_BETA_EPSILON = 1e-10


def _cluster_histograms(
    kmeans: type, union: np.ndarray, num_fake: int, num_clusters: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster histograms (C,) of the fake rows (the first `num_fake`) and the real rows of `union`
    from one fit of `kmeans` (scikit-learn's MiniBatchKMeans) on all of it."""
    labels = kmeans(n_clusters=num_clusters, n_init=10, random_state=seed).fit(union).labels_
    fake_hist = np.bincount(labels[:num_fake], minlength=num_clusters) / num_fake
    real_hist = np.bincount(labels[num_fake:], minlength=num_clusters) / (len(union) - num_fake)
    return fake_hist, real_hist


def prd_curve(
    fake_hist: np.ndarray, real_hist: np.ndarray, num_angles: int = 1001
) -> tuple[np.ndarray, np.ndarray]:
    """PRD curve of two histograms (C,) over `num_angles` slopes in (0, pi/2); (precision, recall)."""
    if not 3 <= num_angles <= 1e6:
        raise ValueError(f"num_angles must be between 3 and 1e6; got {num_angles}")
    slopes = np.tan(np.linspace(_ANGLE_EPSILON, np.pi / 2 - _ANGLE_EPSILON, num=num_angles))
    precision = np.minimum(real_hist[None, :] * slopes[:, None], fake_hist[None, :]).sum(axis=1)
    recall = precision / slopes
    # Round-off can push values a hair above 1; anything larger would be a bug.
    if max(precision.max(), recall.max()) > 1.001:
        raise RuntimeError("PRD precision/recall above 1.001: the histograms are not normalised")
    return np.clip(precision, 0, 1), np.clip(recall, 0, 1)


def prd(
    real: FeatureArray,
    fake: FeatureArray,
    num_clusters: int = 20,
    num_angles: int = 1001,
    num_runs: int = 10,
    seed: int = 0,
    enforce_balance: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """PRD curves of fake (M, D) against real (N, D); (precision (num_angles,), recall (num_angles,)).

    Run r seeds MiniBatchKMeans with `seed + r` (the reference leaves it unseeded). Like the
    reference, unequal set sizes are an error unless `enforce_balance=False`.
    """
    real_t, fake_t = as_feature_pair(real, fake)
    if enforce_balance and real_t.shape[0] != fake_t.shape[0]:
        raise ValueError(
            f"PRD expects equally many real and fake samples (got {real_t.shape[0]} and {fake_t.shape[0]}); "
            "subsample one set or pass enforce_balance=False"
        )
    if num_clusters > real_t.shape[0] + fake_t.shape[0]:
        raise ValueError(
            f"num_clusters={num_clusters} exceeds the {real_t.shape[0] + fake_t.shape[0]} samples"
        )
    # One float64 copy of both sets, fake first, shared by every fit (the reference stacks them too).
    num_fake = fake_t.shape[0]
    union = np.empty((num_fake + real_t.shape[0], real_t.shape[1]), dtype=np.float64)
    union[:num_fake] = fake_t.detach().cpu().numpy()
    union[num_fake:] = real_t.detach().cpu().numpy()

    # scikit-learn is a declared dependency, imported here because its import costs about a second. It
    # loads its own OpenMP and SciPy's BLAS libraries, which the thread limits below must find loaded.
    from sklearn.cluster import MiniBatchKMeans

    cores = available_cores()
    workers = min(num_runs, cores)
    threads_per_fit = max(1, cores // workers)

    def curve(run: int) -> tuple[np.ndarray, np.ndarray]:
        with threadpool_limits(limits=threads_per_fit, user_api="openmp"):  # this thread's OpenMP loops
            histograms = _cluster_histograms(MiniBatchKMeans, union, num_fake, num_clusters, seed + run)
            return prd_curve(*histograms, num_angles)

    # Each fit steps through small mini-batches and leaves cores idle, so the runs go side by side in
    # threads (scikit-learn's kernels release the GIL), each with its own seed and its share of the
    # cores: the curves are those of running them one by one (1.2-1.5x faster on 2 cores, 5k + 5k 2048-d).
    # BLAS stays single-threaded meanwhile: every fit sets BLAS to 1 thread around its OpenMP loops and
    # then restores what it found, so with a multi-threaded BLAS one fit's restore reached another's
    # loop, and OpenBLAS warned that it may hang (seen on 2 cores). The outer limit restores them after.
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        curves = list(pool.map(curve, range(num_runs)))
    return np.mean([c[0] for c in curves], axis=0), np.mean([c[1] for c in curves], axis=0)


def prd_f_beta(precision: np.ndarray, recall: np.ndarray, beta: float = 8.0) -> tuple[float, float]:
    """(max F_beta, max F_1/beta) over a PRD curve: F_8 summarises recall, F_1/8 precision."""
    precision, recall = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    if not (
        (precision >= 0).all() and (precision <= 1).all() and (recall >= 0).all() and (recall <= 1).all()
    ):
        raise ValueError("precision and recall values must lie in [0, 1]")
    if beta <= 0:
        raise ValueError(f"beta must be positive; got {beta}")

    def f_beta(b: float) -> float:
        return float(np.max((1 + b**2) * precision * recall / (b**2 * precision + recall + _F_BETA_EPSILON)))

    return f_beta(beta), f_beta(1 / beta)
