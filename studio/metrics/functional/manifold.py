"""The k-NN manifold family in one pass: precision, recall, realism, density, coverage, rarity.

Kynkäänniemi et al. 2019 (improved precision/recall, realism score), Naeem et al. 2020 (density,
coverage), Han et al. 2022 (rarity score). A real sample's "ball" has the radius to its k-th nearest
other real sample. `RealManifold` computes the real k-NN radii once (reusable across many fake sets,
e.g. every checkpoint of a run); `evaluate` then makes one blocked pass over the fake x real
distances (plus fake x fake radii when recall is requested) and derives every requested metric from
the same distance block. No N x N matrix is ever held.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ops.environment import fp32_precision
from studio.metrics.functional._inputs import (
    FeatureArray,
    as_feature_pair,
    as_features,
    centered,
    check_enough_samples,
    resolve_dtype,
)
from studio.metrics.functional.cross_pass import KNN_METRICS, KNN_PROTOCOLS, CrossPass
from studio.metrics.functional.exact import NeighbourList, rounding_bound
from studio.metrics.functional.knn import (
    Augmented,
    default_block_size,
    mutual_nearest,
    nearest_neighbours,
    pairwise_terms,
)
from studio.metrics.functional.nvlabs_pr import nvlabs_precision_recall


def spare_neighbours(dim: int) -> int:
    """Neighbours kept beyond k, so that the exact k-th neighbour is settled from the list in all but
    rare rows (the others are recomputed in full). The rounding band around the k-th distance widens
    with the depth: rows whose band reached past the list, standard normal features, 5k-10k points:
    64-d 1 % with 1 spare, 2048-d 27 % with 1, 4 % with 2 and 0.06 % with 4. A spare costs about 4 %
    of a k-NN pass."""
    return 1 if dim <= 128 else 4


def neighbour_list(x: Augmented, source: torch.Tensor, k: int, block_size: int) -> NeighbourList:
    """The k nearest other rows of a centered set x (N, D) (plus spares) as a `NeighbourList` over
    `source`, its uncentered features."""
    dim = x.left.shape[1] - 2
    values, index = nearest_neighbours(x, k + spare_neighbours(dim), block_size)

    def recompute_rows(rows: torch.Tensor) -> torch.Tensor:
        rows = rows.to(x.left.device)
        distances = pairwise_terms(x.left[rows], x.right)
        distances[torch.arange(rows.shape[0], device=rows.device), rows] = float("inf")
        return distances

    return NeighbourList(values, index, source, x.norms, rounding_bound(dim, x.left.dtype), recompute_rows)


def cross_neighbour_lists(
    a: Augmented, a_source: torch.Tensor, b: Augmented, b_source: torch.Tensor, block_size: int
) -> tuple[NeighbourList, NeighbourList]:
    """Nearest-neighbour lists between two centered sets a (N, D) and b (M, D) (one blocked pass):
    the rows of b nearest to each row of a, and the rows of a nearest to each row of b."""
    dim = a.left.shape[1] - 2
    (a_values, a_index), (b_values, b_index) = mutual_nearest(a, b, 1 + spare_neighbours(dim), block_size)
    eps = rounding_bound(dim, a.left.dtype)

    def a_rows(rows: torch.Tensor) -> torch.Tensor:
        return pairwise_terms(a.left[rows.to(a.left.device)], b.right)

    def b_rows(rows: torch.Tensor) -> torch.Tensor:
        return pairwise_terms(b.left[rows.to(b.left.device)], a.right)

    return (
        NeighbourList(
            a_values, a_index, a_source, a.norms, eps, a_rows, target=b_source, target_norms=b.norms
        ),
        NeighbourList(
            b_values, b_index, b_source, b.norms, eps, b_rows, target=a_source, target_norms=a.norms
        ),
    )


class RealManifold:
    """Real features (N, D) with their sorted k-NN distances (self excluded) for k = 1..k_max.

    Features are centered on the real mean before distances are taken: distances are unchanged,
    but the |a|^2 + |b|^2 - 2ab formula cancels far less. `dtype` is the distance precision
    (float32 default; float64 for bit-level parity studies). `allow_tf32` opts into TF32 matmuls on
    Ampere+ GPUs: several times faster, but distances carry ~1e-3 relative error, which moves
    ball memberships near the boundary.
    """

    def __init__(
        self,
        real: FeatureArray,
        k_max: int = 5,
        block_size: int | None = None,
        dtype: str | torch.dtype = "float32",
        allow_tf32: bool = False,
    ) -> None:
        real_t = as_features(real, "real")
        check_enough_samples(real_t.shape[0], k_max, "real")
        self.dtype = resolve_dtype(dtype)
        self.allow_tf32 = allow_tf32
        self.block_size = default_block_size(real_t.device) if block_size is None else block_size
        self.source = real_t
        self.center = real_t.mean(dim=0, dtype=torch.float64)
        self.features = centered(real_t, self.center, self.dtype)
        self.terms = Augmented(self.features)
        with fp32_precision(allow_tf32):
            self.neighbours = neighbour_list(self.terms, real_t, k_max, self.block_size)
        self.k_max = k_max

    def exact_radii_sq(self, k: int) -> torch.Tensor:
        """Exact squared distance of every real sample to its k-th nearest other real sample; (N,)
        float64 on the CPU (see `exact`); computed on first use per k."""
        if not 1 <= k <= self.k_max:
            raise ValueError(f"k={k} is outside the radii computed for this RealManifold (1..{self.k_max})")
        with fp32_precision(self.allow_tf32):  # rows recomputed in full use the matmul
            return self.neighbours.exact_kth(k, torch.arange(self.features.shape[0]))

    def radii_sq(self, k: int) -> torch.Tensor:
        """`exact_radii_sq(k)` rounded to the working dtype, on the features' device; (N,)."""
        return self.exact_radii_sq(k).to(self.features)

    def radii(self, k: int) -> np.ndarray:
        """Distance of every real sample to its k-th nearest other real sample; (N,) float64."""
        return self.exact_radii_sq(k).sqrt().numpy()

    def center_fake(self, fake: FeatureArray) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate fake features (M, D); returns them as given (on this manifold's device) and in
        this manifold's centered frame."""
        _, fake_t = as_feature_pair(self.features, fake)
        return fake_t, centered(fake_t, self.center, self.dtype)

    def evaluate(
        self,
        fake: FeatureArray,
        metrics: Sequence[str] = KNN_METRICS,
        k_pr: int = 3,
        k_dc: int = 5,
        k_rarity: int = 3,
        strict: bool = False,
        realism_percentile: float = 50.0,
        protocol: str = "paper",
    ) -> dict[str, float | int | np.ndarray]:
        """Compute the requested metrics of fake (M, D) against this real manifold.

        Returns floats "precision", "recall", "density", "coverage"; arrays (M,) "realism" and
        "rarity" (NaN where the fake lies in no real ball) plus the int "rarity_num_outside".
        Membership is `distance <= radius` (the papers' closed balls); `strict=True` uses `<` as
        prdc and the rarity reference code do. Ties are decided exactly (see `exact`).
        `protocol="nvlabs"`: precision and recall as NVlabs' StyleGAN code computes them (float16
        distances, `nvlabs_pr`), realism as the official improved precision/recall code does
        (max radius^2 / (d^2 + 1e-5): the square of the paper's ratio); density, coverage and rarity
        have one definition.
        """
        if not metrics:
            raise ValueError(f"no k-NN metrics requested; choose from {list(KNN_METRICS)}")
        unknown = sorted(set(metrics) - set(KNN_METRICS))
        if unknown:
            raise ValueError(f"unknown k-NN metrics {unknown}; choose from {list(KNN_METRICS)}")
        if protocol not in KNN_PROTOCOLS:
            raise ValueError(f"unknown k-NN protocol {protocol!r}; choose from {list(KNN_PROTOCOLS)}")
        if protocol == "nvlabs" and strict:
            raise ValueError(
                "protocol='nvlabs' compares with <= as NVlabs' code does; it cannot be strict=True"
            )
        wanted = set(metrics)
        ks = {"precision": k_pr, "recall": k_pr, "realism": k_pr, "density": k_dc, "coverage": k_dc}
        ks["rarity"] = k_rarity
        for k in {ks[name] for name in wanted}:
            check_enough_samples(self.features.shape[0], k, "real")
        fake_t, fake_c = self.center_fake(fake)
        if "recall" in wanted:
            check_enough_samples(fake_c.shape[0], k_pr, "fake")
        out: dict[str, float | int | np.ndarray] = {}
        if protocol == "nvlabs" and wanted & {"precision", "recall"}:
            pr = nvlabs_precision_recall(self.source, fake_t, k_pr)
            out.update({name: pr[name] for name in wanted & {"precision", "recall"}})
            wanted -= {"precision", "recall"}
        if not wanted:
            return out
        with fp32_precision(self.allow_tf32):
            fake_terms = Augmented(fake_c)
            fake_neighbours = (
                neighbour_list(fake_terms, fake_t, k_pr, self.block_size) if "recall" in wanted else None
            )
            cross = CrossPass(
                self, fake_terms, fake_t, fake_neighbours, wanted, ks, strict, realism_percentile, protocol
            )
            return out | cross.run()


def knn_metrics(
    real: FeatureArray | RealManifold,
    fake: FeatureArray,
    metrics: Sequence[str] = KNN_METRICS,
    k_pr: int = 3,
    k_dc: int = 5,
    k_rarity: int = 3,
    strict: bool = False,
    realism_percentile: float = 50.0,
    block_size: int | None = None,
    dtype: str | torch.dtype = "float32",
    allow_tf32: bool = False,
    protocol: str = "paper",
) -> dict[str, float | int | np.ndarray]:
    """The whole k-NN family of fake (M, D) against real (N, D) features, sharing one distance pass.

    `real` may be a prepared `RealManifold` (then block_size, dtype and allow_tf32 are its own).
    See `RealManifold.evaluate` for the returned keys.
    """
    manifold = real
    if not isinstance(real, RealManifold):
        uses_pr = set(metrics) & {"precision", "recall", "realism"}
        ks = [k_pr] * bool(uses_pr) + [k_dc] * bool(set(metrics) & {"density", "coverage"})
        ks += [k_rarity] * ("rarity" in metrics)
        manifold = RealManifold(real, max(ks, default=1), block_size, dtype, allow_tf32)
    return manifold.evaluate(fake, metrics, k_pr, k_dc, k_rarity, strict, realism_percentile, protocol)
