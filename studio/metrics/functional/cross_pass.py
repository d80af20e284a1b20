"""One blocked pass over fake x real distances, accumulating every requested k-NN metric.

Each block holds the margins M_k = |f - r|^2 - radius_k(r)^2 (one matmul of augmented features, see
`augment_right`), so "fake inside real ball" is M_k <= 0 and most metrics are one reduction. A fast
margin decides only when it is farther from 0 than the block's rounding bound T (`exact.rounding_bound`);
rows and columns with a margin inside [-T, T] are settled afterwards entry by entry, with exact
distances for the entries still in doubt (`_resolve_rows`, `_resolve_columns`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from ops.cpu_tuning import knn_block_elements
from studio.metrics.functional.exact import NeighbourList, pair_sq_distances, rounding_bound
from studio.metrics.functional.knn import (
    Augmented,
    Workspace,
    augment_right,
    block_ranges,
    block_shape,
)
from studio.metrics.functional.knn import pairwise_terms as fast_terms

if TYPE_CHECKING:  # manifold.py imports this module
    from studio.metrics.functional.manifold import RealManifold

KNN_METRICS = ("precision", "recall", "density", "coverage", "realism", "rarity")
KNN_PROTOCOLS = ("paper", "nvlabs")
# The official improved precision/recall code adds this to the squared distance in the realism score.
OFFICIAL_REALISM_EPS = 1e-5


class CrossPass:
    """Fake (M, D) against a `RealManifold`; `run()` returns `RealManifold.evaluate`'s dict."""

    def __init__(
        self,
        manifold: RealManifold,
        fake: Augmented,
        fake_source: torch.Tensor,
        fake_neighbours: NeighbourList | None,
        wanted: set[str],
        ks: dict[str, int],
        strict: bool,
        realism_percentile: float,
        protocol: str = "paper",
    ) -> None:
        self.wanted, self.strict, self.ks = wanted, strict, ks
        # "nvlabs" realism: max radius^2 / (d^2 + 1e-5), the official code's squared ratio.
        self.realism_offset = OFFICIAL_REALISM_EPS if protocol == "nvlabs" else 0.0
        self.block_size = manifold.block_size
        self.real_neighbours: NeighbourList = manifold.neighbours
        self.real_source = manifold.source
        self.needed_k = sorted({ks[name] for name in wanted})
        self.base_k = ks[min(wanted, key=KNN_METRICS.index)]
        # Sorting the reals by ball radius makes "smallest ball containing the fake" (rarity) the
        # first containing column, and the realism balls (radius <= percentile) a prefix.
        sort_k = ks["rarity"] if "rarity" in wanted else ks["realism"] if "realism" in wanted else self.base_k
        self.order = manifold.radii_sq(sort_k).argsort()
        self.real = manifold.features[self.order]
        real_sq = manifold.terms.sq_norms[self.order]
        self.real_norms = real_sq.clamp(min=0).sqrt()
        self.radius_sq = {k: manifold.radii_sq(k)[self.order] for k in self.needed_k}
        self.real_terms = augment_right(self.real, real_sq - self.radius_sq[self.base_k])
        self.real_distance_terms = manifold.terms.right[self.order]
        # M_k = M_base + shift_k
        self.shift = {k: self.radius_sq[self.base_k] - self.radius_sq[k] for k in self.needed_k}
        self.largest_radius_sq = self.radius_sq[max(self.needed_k)]
        self.precision_from_density = "density" in wanted and ks["precision"] == ks["density"]
        self.fake_terms, self.fake_norms, self.fake_source = fake.left, fake.norms, fake_source
        self.eps = rounding_bound(self.fake_terms.shape[1] - 2, self.fake_terms.dtype)
        # Radii are exact (rounded to the working dtype), so a margin's rounding bound is
        # eps ((|f| + |r|)^2 + radius^2) <= 2 eps |f|^2 + column_tolerance[k][r]: a row term and a
        # column term, so ball masks still compare against per-column thresholds.
        self.column_tolerance = {k: self.eps * (2 * real_sq + self.radius_sq[k]) for k in self.needed_k}
        self.workspace = Workspace()
        self.fake_neighbours = fake_neighbours
        self.fake_radius_sq = torch.zeros_like(self.fake_norms)
        if "recall" in wanted:
            every_fake = torch.arange(self.fake_terms.shape[0])
            self.fake_radius_sq = fake_neighbours.exact_kth(ks["recall"], every_fake).to(self.fake_terms)
        self.realism_columns = 0
        if "realism" in wanted:
            radius_sq = self.radius_sq[ks["realism"]]
            radius = radius_sq.sqrt()
            threshold = torch.quantile(radius.double(), realism_percentile / 100.0).to(radius.dtype)
            # Kynkäänniemi et al.: drop the balls with the largest radii (above the median) as outliers.
            self.realism_radius_sq = torch.where(radius <= threshold, radius_sq, 0.0)
            kept = torch.nonzero(self.realism_radius_sq > 0)
            self.realism_columns = (
                int(kept.max()) + 1 if sort_k == ks["realism"] and kept.numel() else self.real.shape[0]
            )
            positive = self.realism_radius_sq[self.realism_radius_sq > 0]
            self.realism_smallest = positive.min() if positive.numel() else radius_sq.new_tensor(float("inf"))

    def buffer(self, name: str, shape: tuple[int, int]) -> torch.Tensor:
        return self.workspace.get(name, shape[0], shape[1], self.fake_terms)

    def _inside_exact(self, distance_sq: torch.Tensor, radius_sq: torch.Tensor) -> torch.Tensor:
        return distance_sq < radius_sq if self.strict else distance_sq <= radius_sq

    def _block_bound(self, rows: slice, cols: slice) -> torch.Tensor:
        """T: bound on the rounding of every fast margin of the block (0-d, working dtype)."""
        fake_norm, real_norm = self.fake_norms[rows].max(), self.real_norms[cols].max()
        radius_sq = torch.maximum(self.largest_radius_sq[cols].max(), self.fake_radius_sq[rows].max())
        return self.eps * ((fake_norm + real_norm) ** 2 + radius_sq)

    def run(self) -> dict[str, float | int | np.ndarray]:
        n_fake, n_real = self.fake_terms.shape[0], self.real.shape[0]
        device, dtype = self.fake_terms.device, self.fake_terms.dtype
        inf = float("inf")
        # For "some ball contains it" metrics: min of (margin + T) < 0 is certainly inside, min of
        # (margin - T) > 0 certainly outside; in between the row or column is settled entry by entry.
        acc = {
            name: torch.full(
                (n_fake if name.startswith("precision") else n_real,), inf, dtype=dtype, device=device
            )
            for name in (
                "precision_lo",
                "precision_hi",
                "coverage_lo",
                "coverage_hi",
                "recall_lo",
                "recall_hi",
            )
        }
        acc["density"] = torch.zeros(n_fake, dtype=torch.int32, device=device)
        acc["realism"] = torch.zeros(n_fake, dtype=dtype, device=device)
        acc["rarity"] = torch.full((n_fake,), inf, dtype=dtype, device=device)
        acc["doubtful_rows"] = torch.zeros(n_fake, dtype=torch.bool, device=device)
        row_block, col_block = block_shape(self.block_size, n_fake, n_real)
        for rows in block_ranges(n_fake, row_block):
            for cols in block_ranges(n_real, col_block):
                shape = (rows.stop - rows.start, cols.stop - cols.start)
                margin = fast_terms(
                    self.fake_terms[rows], self.real_terms[cols], self.buffer("margin", shape)
                )
                self._accumulate(margin, rows, cols, self._block_bound(rows, cols), acc)
        return self._finish(acc)

    def _accumulate(
        self, base: torch.Tensor, rows: slice, cols: slice, bound: torch.Tensor, acc: dict[str, torch.Tensor]
    ) -> None:
        """Fold one block of base margins (fake rows x real cols) into the accumulators.

        M_k = base + shift_k[col], so per-column terms are moved out of the reductions:
        min_f M_k = min_f base + shift_k, and "M_k < -T" is "base < -shift_k - T".
        """

        def keep_min(name: str, index: slice, values: torch.Tensor) -> None:
            torch.minimum(acc[name][index], values, out=acc[name][index])

        def keep_bounds(name: str, index: slice, minimum: torch.Tensor) -> None:
            keep_min(f"{name}_lo", index, minimum + bound)
            keep_min(f"{name}_hi", index, minimum - bound)

        masks: dict[str, tuple[int, torch.Tensor]] = {}
        row_tolerance = 2 * self.eps * self.fake_norms[rows].max() ** 2

        def threshold(k: int, side: str) -> torch.Tensor:
            """(1, cols) bounds on base: M_k below minus its rounding bound ("lo": certainly inside) or
            at most plus it ("hi": maybe inside), with M_k = base + shift_k."""
            tolerance = row_tolerance + self.column_tolerance[k][cols]
            return (-self.shift[k][cols] + (-tolerance if side == "lo" else tolerance)).unsqueeze(0)

        def inside(k: int, side: str) -> torch.Tensor:
            """0/1 float mask of `threshold(k, side)`; one buffer per side, reused while k stays the
            same (density and rarity often share k)."""
            if side not in masks or masks[side][0] != k:
                compare = torch.lt if side == "lo" else torch.le
                buffer = self.buffer(f"mask_{side}", base.shape)
                masks[side] = (k, compare(base, threshold(k, side), out=buffer))
            return masks[side][1]

        doubtful = acc["doubtful_rows"][rows]  # a view: |= marks the accumulator
        if "precision" in self.wanted and not self.precision_from_density:  # base_k == k_pr here
            keep_bounds("precision", rows, base.amin(dim=1))
        if "coverage" in self.wanted:
            keep_bounds("coverage", cols, base.amin(dim=0) + self.shift[self.ks["coverage"]][cols])
        if "density" in self.wanted:
            # A 0/1 float mask sums exactly (< 2^24 per row) without a bool -> int cast copy.
            certain = inside(self.ks["density"], "lo").sum(dim=1).to(torch.int32)
            acc["density"][rows] += certain
            doubtful |= inside(self.ks["density"], "hi").sum(dim=1).to(torch.int32) != certain
        if "rarity" in self.wanted:
            # Reals are sorted by radius, so the first containing column has the smallest ball.
            k = self.ks["rarity"]
            # The first column that may contain the fake decides, if it certainly contains it.
            found, first = inside(k, "hi").max(dim=1)
            certain = base.gather(1, first.unsqueeze(1)).squeeze(1) < threshold(k, "lo")[0, first]
            doubtful |= (found > 0) & ~certain
            radius_sq = self.radius_sq[k][cols]
            keep_min("rarity", rows, torch.where((found > 0) & certain, radius_sq[first], float("inf")))
        base_radius_sq = self.radius_sq[self.base_k][cols]
        if "realism" in self.wanted and cols.start < self.realism_columns:
            stop = min(cols.stop, self.realism_columns) - cols.start
            d = torch.add(
                base[:, :stop],
                base_radius_sq[:stop].unsqueeze(0),
                out=self.buffer("scratch", (base.shape[0], stop)),
            )
            # Distances within 2T of 0 (coincident points among them) are settled exactly later;
            # here they count as 2T, which no exact distance there exceeds.
            floor = 2 * bound + self.realism_offset
            d.clamp_(min=2 * bound)
            if self.realism_offset:
                d.add_(self.realism_offset)
            ratio = torch.div(self.realism_radius_sq[cols.start : cols.start + stop].unsqueeze(0), d, out=d)
            row_max = ratio.amax(dim=1)
            torch.maximum(acc["realism"][rows], row_max, out=acc["realism"][rows])
            doubtful |= row_max >= self.realism_smallest / floor
        if "recall" in self.wanted:
            # |f - r|^2 - radius_f^2 = base + radius_base(r)^2 - radius_f^2; the r term leaves the min.
            # Last use of the block, so the fake radii are subtracted in place.
            fake_margin = base.sub_(self.fake_radius_sq[rows].unsqueeze(1))
            keep_bounds("recall", cols, fake_margin.amin(dim=0) + base_radius_sq)

    def _finish(self, acc: dict[str, torch.Tensor]) -> dict[str, float | int | np.ndarray]:
        per_row = {
            "precision": acc["precision_lo"] < 0,
            "density": acc["density"],
            "realism": acc["realism"],
            "rarity": acc["rarity"],
        }
        doubtful_rows = acc["doubtful_rows"]
        if self.precision_from_density:
            per_row["precision"] = acc["density"] > 0
        elif "precision" in self.wanted:
            doubtful_rows |= (acc["precision_lo"] >= 0) & (acc["precision_hi"] <= 0)
        self._resolve_rows(torch.nonzero(doubtful_rows).flatten(), per_row)
        per_column = {name: acc[f"{name}_lo"] < 0 for name in ("coverage", "recall")}
        doubtful_columns = torch.zeros_like(per_column["coverage"])
        for name in ("coverage", "recall"):
            if name in self.wanted:
                doubtful_columns |= (acc[f"{name}_lo"] >= 0) & (acc[f"{name}_hi"] <= 0)
        self._resolve_columns(torch.nonzero(doubtful_columns).flatten(), per_column)

        out: dict[str, float | int | np.ndarray] = {}
        for name, values in (("precision", per_row["precision"]),) + tuple(per_column.items()):
            if name in self.wanted:
                out[name] = float(values.double().mean())
        if "density" in self.wanted:
            out["density"] = float(per_row["density"].double().mean() / self.ks["density"])
        if "realism" in self.wanted:
            realism = per_row["realism"].double()
            out["realism"] = (realism if self.realism_offset else realism.sqrt()).cpu().numpy()
        if "rarity" in self.wanted:
            rarity = per_row["rarity"].double().sqrt().cpu().numpy()
            outside = np.isinf(rarity)
            rarity[outside] = np.nan
            out["rarity"] = rarity
            out["rarity_num_outside"] = int(outside.sum())
        return out

    def _chunk(self, n: int, other: int) -> int:
        return max(1, min(n, knn_block_elements() // max(other, 1)))

    def _settle(
        self,
        distance_sq: torch.Tensor,
        radius_sq: torch.Tensor,
        tolerance: torch.Tensor,
        exact_pairs: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    ) -> torch.Tensor:
        """Ball membership of a block of fast squared distances against fast radii (broadcastable),
        with `tolerance` bounding both fast values' rounding; entries within it are decided by
        `exact_pairs(band)` -> (exact distance, exact radius) for the band's (row, col) positions."""
        margin = distance_sq - radius_sq
        inside = margin < -tolerance
        band = torch.nonzero(margin.abs() <= tolerance)
        if band.numel():
            exact_distance, exact_radius = exact_pairs(band)
            decided = self._inside_exact(exact_distance, exact_radius).to(inside.device)
            inside[band[:, 0], band[:, 1]] = decided
        return inside

    def _exact_distances(self, fakes: torch.Tensor, sorted_reals: torch.Tensor) -> torch.Tensor:
        """Exact squared distances (P,) from fake rows `fakes` to the reals at sorted positions
        `sorted_reals` (float64, CPU; see `exact.pair_sq_distances`)."""
        return pair_sq_distances(self.fake_source, self.real_source, fakes, self.order[sorted_reals])

    def _resolve_rows(self, fake_rows: torch.Tensor, per_row: dict[str, torch.Tensor]) -> None:
        """Recompute the row metrics of `fake_rows` entry by entry (see `_settle`)."""
        step = self._chunk(fake_rows.shape[0], self.real.shape[0])
        for start in range(0, fake_rows.shape[0], step):
            rows = fake_rows[start : start + step]
            distance_sq = fast_terms(self.fake_terms[rows], self.real_distance_terms)
            scale = (self.fake_norms[rows].unsqueeze(1) + self.real_norms.unsqueeze(0)) ** 2
            inside = {}
            for k in {self.ks[name] for name in ("precision", "density", "rarity") if name in self.wanted}:
                tolerance = self.eps * (scale + self.radius_sq[k].unsqueeze(0))

                def exact_pairs(
                    band: torch.Tensor, k: int = k, rows: torch.Tensor = rows
                ) -> tuple[torch.Tensor, torch.Tensor]:
                    distance = self._exact_distances(rows[band[:, 0]], band[:, 1])
                    return distance, self.real_neighbours.exact_kth(k, self.order[band[:, 1]])

                inside[k] = self._settle(distance_sq, self.radius_sq[k].unsqueeze(0), tolerance, exact_pairs)
            if "precision" in self.wanted:
                per_row["precision"][rows] = inside[self.ks["precision"]].any(dim=1)
            if "density" in self.wanted:
                per_row["density"][rows] = inside[self.ks["density"]].sum(dim=1).to(torch.int32)
            if "rarity" in self.wanted:
                k = self.ks["rarity"]
                radius_sq = torch.where(inside[k], self.radius_sq[k].unsqueeze(0), float("inf"))
                per_row["rarity"][rows] = radius_sq.amin(dim=1)
            if "realism" in self.wanted:
                per_row["realism"][rows] = self._exact_realism(rows, distance_sq, scale)

    def _exact_realism(
        self, rows: torch.Tensor, distance_sq: torch.Tensor, scale: torch.Tensor
    ) -> torch.Tensor:
        """max_j kept radius_j^2 / d_j^2 per row, with exact distances where the fast ones are within
        their bound of 0 (+inf where a fake coincides with a kept real)."""
        distance_sq = distance_sq.clone()
        near = torch.nonzero(distance_sq <= 2 * self.eps * scale)
        if near.numel():
            exact = self._exact_distances(rows[near[:, 0]], near[:, 1])
            distance_sq[near[:, 0], near[:, 1]] = exact.to(distance_sq)
        ratio = self.realism_radius_sq.unsqueeze(0) / (distance_sq.clamp(min=0) + self.realism_offset)
        # 0/0 (a fake on a kept real of radius 0, or a dropped ball) is no match.
        return torch.nan_to_num(ratio, nan=0.0, posinf=float("inf")).amax(dim=1)

    def _resolve_columns(self, real_columns: torch.Tensor, per_column: dict[str, torch.Tensor]) -> None:
        """Recompute coverage and recall of the sorted real columns `real_columns` entry by entry."""
        step = self._chunk(real_columns.shape[0], self.fake_terms.shape[0])
        for start in range(0, real_columns.shape[0], step):
            cols = real_columns[start : start + step]
            distance_sq = fast_terms(self.fake_terms, self.real_distance_terms[cols])
            scale = (self.fake_norms.unsqueeze(1) + self.real_norms[cols].unsqueeze(0)) ** 2

            def exact_distance(band: torch.Tensor, cols: torch.Tensor = cols) -> torch.Tensor:
                return self._exact_distances(band[:, 0], cols[band[:, 1]])

            if "coverage" in self.wanted:
                k = self.ks["coverage"]
                radius_sq = self.radius_sq[k][cols]
                tolerance = self.eps * (scale + radius_sq.unsqueeze(0))

                def real_balls(
                    band: torch.Tensor, k: int = k, cols: torch.Tensor = cols
                ) -> tuple[torch.Tensor, torch.Tensor]:
                    return exact_distance(band), self.real_neighbours.exact_kth(
                        k, self.order[cols[band[:, 1]]]
                    )

                inside = self._settle(distance_sq, radius_sq.unsqueeze(0), tolerance, real_balls)
                per_column["coverage"][cols] = inside.any(dim=0)
            if "recall" in self.wanted:
                tolerance = self.eps * (scale + self.fake_radius_sq.unsqueeze(1))

                def fake_balls(band: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                    k = self.ks["recall"]
                    return exact_distance(band), self.fake_neighbours.exact_kth(k, band[:, 0])

                inside = self._settle(distance_sq, self.fake_radius_sq.unsqueeze(1), tolerance, fake_balls)
                per_column["recall"][cols] = inside.any(dim=0)
