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
    check_enough_samples,
    resolve_dtype,
)
from studio.metrics.functional.knn import (
    Workspace,
    augment_left,
    augment_right,
    block_ranges,
    block_shape,
    default_block_size,
    knn_squared_distances,
    pairwise_terms,
)

KNN_METRICS = ("precision", "recall", "density", "coverage", "realism", "rarity")


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
        self.center = real_t.mean(dim=0, dtype=torch.float64)
        self.features = (real_t.to(self.dtype) - self.center.to(self.dtype)).contiguous()
        self.sq_norms = (self.features * self.features).sum(dim=1)
        with fp32_precision(allow_tf32):
            left = augment_left(self.features, self.sq_norms)
            self.knn_sq = knn_squared_distances(self.features, k_max, self.block_size, left=left)

    @property
    def k_max(self) -> int:
        return self.knn_sq.shape[1]

    def radii_sq(self, k: int) -> torch.Tensor:
        """Squared distance of every real sample to its k-th nearest other real sample; (N,)."""
        if not 1 <= k <= self.k_max:
            raise ValueError(f"k={k} is outside the radii computed for this RealManifold (1..{self.k_max})")
        return self.knn_sq[:, k - 1]

    def radii(self, k: int) -> np.ndarray:
        """Distance of every real sample to its k-th nearest other real sample; (N,) float64."""
        return self.radii_sq(k).sqrt().double().cpu().numpy()

    def center_fake(self, fake: FeatureArray) -> torch.Tensor:
        """Validate fake features (M, D) and express them in this manifold's centered frame."""
        _, fake_t = as_feature_pair(self.features, fake)
        return (fake_t.to(self.dtype) - self.center.to(self.dtype)).contiguous()

    def evaluate(
        self,
        fake: FeatureArray,
        metrics: Sequence[str] = KNN_METRICS,
        k_pr: int = 3,
        k_dc: int = 5,
        k_rarity: int = 3,
        strict: bool = False,
        realism_percentile: float = 50.0,
    ) -> dict[str, float | int | np.ndarray]:
        """Compute the requested metrics of fake (M, D) against this real manifold.

        Returns floats "precision", "recall", "density", "coverage"; arrays (M,) "realism" and
        "rarity" (NaN where the fake lies in no real ball) plus the int "rarity_num_outside".
        Membership is `distance <= radius` (the papers' closed balls); `strict=True` uses `<` as
        prdc and the rarity reference code do.
        """
        if not metrics:
            raise ValueError(f"no k-NN metrics requested; choose from {list(KNN_METRICS)}")
        unknown = sorted(set(metrics) - set(KNN_METRICS))
        if unknown:
            raise ValueError(f"unknown k-NN metrics {unknown}; choose from {list(KNN_METRICS)}")
        wanted = set(metrics)
        fake_c = self.center_fake(fake)
        with fp32_precision(self.allow_tf32):
            return _CrossPass(self, fake_c, wanted, k_pr, k_dc, k_rarity, strict, realism_percentile).run()


class _CrossPass:
    """One blocked pass over fake x real distances, accumulating every requested metric.

    Each block holds the margins M_k = |f - r|^2 - radius_k(r)^2 (one matmul of augmented features,
    see `augment_right`), so "fake inside real ball" is M_k <= 0 and most metrics are one reduction.
    """

    def __init__(
        self,
        manifold: RealManifold,
        fake: torch.Tensor,
        wanted: set[str],
        k_pr: int,
        k_dc: int,
        k_rarity: int,
        strict: bool,
        realism_percentile: float,
    ) -> None:
        self.wanted = wanted
        self.strict = strict
        self.block_size = manifold.block_size
        self.k_pr, self.k_dc, self.k_rarity = k_pr, k_dc, k_rarity
        ks = {"precision": k_pr, "recall": k_pr, "realism": k_pr, "density": k_dc, "coverage": k_dc}
        ks["rarity"] = k_rarity
        needed_k = sorted({ks[name] for name in wanted})
        for k in needed_k:
            check_enough_samples(manifold.features.shape[0], k, "real")
        self.base_k = ks[min(wanted, key=KNN_METRICS.index)]
        # Sorting the reals by ball radius makes "smallest ball containing the fake" (rarity) the
        # first containing column, and the realism balls (radius <= percentile) a prefix. Only radii
        # of a requested metric's k are guaranteed to exist (density/coverage alone may use k < k_pr).
        sort_k = k_rarity if "rarity" in wanted else k_pr if "realism" in wanted else self.base_k
        order = manifold.radii_sq(sort_k).argsort()
        self.real = manifold.features[order]
        radius_sq = {k: manifold.radii_sq(k)[order] for k in needed_k}
        self.radius_sq = radius_sq
        self.real_terms = augment_right(self.real, manifold.sq_norms[order] - radius_sq[self.base_k])
        # M_k = M_base + shift_k
        self.shift = {k: radius_sq[self.base_k] - radius_sq[k] for k in needed_k}
        # With k_pr == k_dc a fake is inside some ball iff its density count is positive.
        self.precision_from_density = "density" in wanted and k_pr == k_dc
        self.workspace = Workspace()
        self.fake = fake
        self.fake_terms = augment_left(fake, (fake * fake).sum(dim=1))
        if "recall" in wanted:
            check_enough_samples(fake.shape[0], k_pr, "fake")
            fake_knn_sq = knn_squared_distances(fake, k_pr, self.block_size, left=self.fake_terms)
            self.fake_radius_sq = fake_knn_sq[:, k_pr - 1]
        self.realism_columns = 0
        if "realism" in wanted:
            radius = radius_sq[k_pr].sqrt()
            threshold = torch.quantile(radius.double(), realism_percentile / 100.0).to(radius.dtype)
            # Kynkäänniemi et al.: drop the balls with the largest radii (above the median) as outliers.
            self.realism_radius_sq = torch.where(radius <= threshold, radius_sq[k_pr], 0.0)
            kept = torch.nonzero(self.realism_radius_sq > 0)
            self.realism_columns = (
                int(kept.max()) + 1 if sort_k == k_pr and kept.numel() else self.real.shape[0]
            )

    def buffer(self, name: str, shape: tuple[int, int]) -> torch.Tensor:
        return self.workspace.get(name, shape[0], shape[1], self.fake)

    def _inside(self, margin: torch.Tensor) -> torch.Tensor:
        return margin < 0 if self.strict else margin <= 0

    def run(self) -> dict[str, float | int | np.ndarray]:
        n_fake, n_real = self.fake.shape[0], self.real.shape[0]
        device, dtype = self.fake.device, self.fake.dtype
        inf = float("inf")
        acc = {
            "precision": torch.full((n_fake,), inf, dtype=dtype, device=device),
            "density": torch.zeros(n_fake, dtype=torch.int32, device=device),
            "realism": torch.zeros(n_fake, dtype=dtype, device=device),
            "rarity": torch.full((n_fake,), inf, dtype=dtype, device=device),
            "coverage": torch.full((n_real,), inf, dtype=dtype, device=device),
            "recall": torch.full((n_real,), inf, dtype=dtype, device=device),
        }
        row_block, col_block = block_shape(self.block_size, n_fake, n_real)
        for rows in block_ranges(n_fake, row_block):
            for cols in block_ranges(n_real, col_block):
                shape = (rows.stop - rows.start, cols.stop - cols.start)
                margin = pairwise_terms(
                    self.fake_terms[rows], self.real_terms[cols], self.buffer("margin", shape)
                )
                self._accumulate(margin, rows, cols, acc)
        return self._finish(acc)

    def _accumulate(self, base: torch.Tensor, rows: slice, cols: slice, acc: dict[str, torch.Tensor]) -> None:
        """Fold one block of base margins (fake rows x real cols) into the accumulators.

        M_k = base + shift_k[col], so per-column terms are moved out of the reductions:
        min_f M_k = min_f base + shift_k, and "M_k <= 0" is "base <= -shift_k".
        """

        def keep_min(target: torch.Tensor, values: torch.Tensor) -> None:
            torch.minimum(target, values, out=target)

        if "precision" in self.wanted and not self.precision_from_density:  # base_k == k_pr here
            keep_min(acc["precision"][rows], base.amin(dim=1))
        if "coverage" in self.wanted:
            keep_min(acc["coverage"][cols], base.amin(dim=0) + self.shift[self.k_dc][cols])
        if "density" in self.wanted:
            # A 0/1 float mask sums exactly (< 2^24 per row) without a bool -> int cast copy.
            inside = self._inside_mask(base, self.k_dc, cols)
            acc["density"][rows] += inside.sum(dim=1).to(torch.int32)
        if "rarity" in self.wanted:
            # Reals are sorted by radius, so the first containing column has the smallest ball.
            found, first = self._inside_mask(base, self.k_rarity, cols).max(dim=1)
            radius_sq = self.radius_sq[self.k_rarity][cols]
            keep_min(acc["rarity"][rows], torch.where(found > 0, radius_sq[first], float("inf")))
        base_radius_sq = self.radius_sq[self.base_k][cols]
        if "realism" in self.wanted and cols.start < self.realism_columns:
            stop = min(cols.stop, self.realism_columns) - cols.start
            d = torch.add(
                base[:, :stop],
                base_radius_sq[:stop].unsqueeze(0),
                out=self.buffer("scratch", (base.shape[0], stop)),
            )
            # Coincident points give d <= 0 from round-off: clamp so the ratio is large, not negative.
            d.clamp_(min=torch.finfo(d.dtype).tiny)
            ratio = torch.div(self.realism_radius_sq[cols.start : cols.start + stop].unsqueeze(0), d, out=d)
            torch.maximum(acc["realism"][rows], ratio.amax(dim=1), out=acc["realism"][rows])
        if "recall" in self.wanted:
            # |f - r|^2 - radius_f^2 = base + radius_base(r)^2 - radius_f^2; the r term leaves the min.
            # Last use of the block, so the fake radii are subtracted in place.
            fake_margin = base.sub_(self.fake_radius_sq[rows].unsqueeze(1))
            keep_min(acc["recall"][cols], fake_margin.amin(dim=0) + base_radius_sq)

    def _inside_mask(self, base: torch.Tensor, k: int, cols: slice) -> torch.Tensor:
        """0/1 float mask of fakes inside the k-NN balls: M_k <= 0 written as base <= -shift_k."""
        threshold = -self.shift[k][cols].unsqueeze(0)
        compare = torch.lt if self.strict else torch.le
        return compare(base, threshold, out=self.buffer("mask", base.shape))

    def _finish(self, acc: dict[str, torch.Tensor]) -> dict[str, float | int | np.ndarray]:
        out: dict[str, float | int | np.ndarray] = {}
        if self.precision_from_density:
            acc["precision"] = torch.where(acc["density"] > 0, -1.0, 1.0)
        for name in ("precision", "recall", "coverage"):
            if name in self.wanted:
                out[name] = float(self._inside(acc[name]).double().mean())
        if "density" in self.wanted:
            out["density"] = float(acc["density"].double().mean() / self.k_dc)
        if "realism" in self.wanted:
            out["realism"] = acc["realism"].double().sqrt().cpu().numpy()
        if "rarity" in self.wanted:
            rarity = acc["rarity"].double().sqrt().cpu().numpy()
            outside = np.isinf(rarity)
            rarity[outside] = np.nan
            out["rarity"] = rarity
            out["rarity_num_outside"] = int(outside.sum())
        return out


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
    return manifold.evaluate(fake, metrics, k_pr, k_dc, k_rarity, strict, realism_percentile)
