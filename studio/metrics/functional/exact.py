"""Tie-exact k-NN decisions: fast matmul distances decide only where their rounding bound allows.

The blocked passes compute squared distances as |a|^2 + |b|^2 - 2 a.b by matmul in the working dtype.
Their rounding depends on the block layout and dtype, so a fake that copies a real sample (or any point
lying exactly on a ball's boundary) could fall on either side of the ball, and d(fake, real) is not
computed by the same arithmetic as the real radius it is compared with. Here every comparison whose fast
value lies within the rounding bound of its threshold is decided again by `pair_sq_distances`, a
float64 distance from the caller's uncentered features that depends only on the two rows, and against
radii computed the same way (`NeighbourList.exact_kth`). Identical inputs then give identical
distances, and ties fall as in exact arithmetic, whatever the blocks or dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

# float64 elements per pair-difference buffer: 2 MiB on a CPU stays in cache (4x faster than 32 MiB at
# D = 1024); 256 MiB on a GPU, where each chunk costs a kernel launch per tree level.
_PAIR_ELEMENTS = {"cpu": 1 << 18, "cuda": 1 << 25}
_FULL_ROW_ELEMENTS = 1 << 24  # fast distances per batch of rows recomputed in full (64 MiB float32)


def rounding_bound(dim: int, dtype: torch.dtype) -> float:
    """eps such that a fast squared distance of centered D-dimensional features a, b in `dtype` lies
    within eps (|a| + |b|)^2 of the exact one.

    min(4n, 16 sqrt(n)) unit roundoffs for a product of depth n = D + 2: the worst-case bound of a
    short sum with its inputs' rounding, and for long ones 16 times the sqrt(n) growth of rounding
    error in a sum (Higham & Mary 2019, probabilistic error analysis). Measured errors stay 40x below it
    (0.37 sqrt(n) u at D = 64 and 0.06 sqrt(n) u at D = 2048, float32 on CPU). TF32 matmuls
    (`allow_tf32`) err by more than this bound, so under TF32 near-ties may still fall either way.
    """
    n = dim + 2
    return torch.finfo(dtype).eps / 2 * min(4.0 * n, 16.0 * math.sqrt(n))


def pair_sq_distances(
    a: torch.Tensor, b: torch.Tensor, a_index: torch.Tensor, b_index: torch.Tensor
) -> torch.Tensor:
    """|a[a_index] - b[b_index]|^2 for P index pairs; (P,) float64 on the CPU, computed on a's device.

    Each coordinate's difference and square are taken in float64 (the difference of two float32
    values is exact there) and each row is summed in a fixed pairwise order (`_pairwise_row_sums_`),
    by elementwise adds alone, which IEEE arithmetic rounds the same on every device. So the value
    depends only on the two rows: symmetric, and bitwise the same in any batch, position, block
    layout or working dtype, on the CPU and on a GPU.
    """
    device = a.device
    width = 1 << max(0, (a.shape[1] - 1).bit_length())  # the row length padded to a power of two
    chunk = max(1, _PAIR_ELEMENTS.get(device.type, _PAIR_ELEMENTS["cuda"]) // width)
    a_index, b_index = a_index.to(device), b_index.to(device)
    out = torch.empty(a_index.shape[0], dtype=torch.float64, device=device)
    buffer = torch.zeros(min(chunk, a_index.shape[0]), width, dtype=torch.float64, device=device)
    for start in range(0, a_index.shape[0], chunk):
        stop = min(start + chunk, a_index.shape[0])
        diff = buffer[: stop - start, : a.shape[1]]
        diff.copy_(a[a_index[start:stop]]).sub_(b[b_index[start:stop]]).square_()
        out[start:stop] = _pairwise_row_sums_(buffer[: stop - start])
    return out.cpu()


def _pairwise_row_sums_(x: torch.Tensor) -> torch.Tensor:
    """Sum of each row of x (R, W), W a power of two, as a balanced binary tree: x[:, i] += x[:, i + W/2],
    then the same on the first half, down to column 0 (returned; x is overwritten). Columns from the
    first half on are only read, so zero padding there stays zero for the next chunk."""
    width = x.shape[1]
    while width > 1:
        width //= 2
        x[:, :width].add_(x[:, width : 2 * width])
    return x[:, 0]


class NeighbourList:
    """Fast sorted k-NN squared distances (N, K) from rows of `source` to rows of `target` with their
    indices, and exact values on demand. Without `target` the list is of a set's own other rows.

    `source`, `target` are the caller's uncentered features (the exact path's input), `norms` and
    `target_norms` their centered row norms, which scale the fast values' rounding bound `eps`, and
    `recompute_rows(rows)` the fast squared distances (R, N_target) from `rows` to every target row
    (self = +inf in a set's own list), for the rows whose list is too short to settle them.
    """

    def __init__(
        self,
        values: torch.Tensor,
        index: torch.Tensor,
        source: torch.Tensor,
        norms: torch.Tensor,
        eps: float,
        recompute_rows: Callable[[torch.Tensor], torch.Tensor],
        target: torch.Tensor | None = None,
        target_norms: torch.Tensor | None = None,
    ) -> None:
        self.values, self.index, self.source = values, index, source
        self.norms, self.eps, self.recompute_rows = norms.double(), eps, recompute_rows
        self.target = source if target is None else target
        self.target_norms = self.norms if target_norms is None else target_norms.double()
        self.max_norm = self.target_norms.max()
        self.n_candidates = self.target.shape[0] - (1 if target is None else 0)
        self._exact: dict[int, torch.Tensor] = {}

    def exact_kth(self, k: int, rows: torch.Tensor) -> torch.Tensor:
        """Exact squared distance from each of `rows` (R,) to its k-th nearest other row; (R,) float64.

        With T bounding the rounding of a row's listed values (eps (|x_i| + max listed |x_j|)^2), the
        exact k-th value lies within T of the fast one; entries more than 2T below the fast k-th value
        are certainly among the k nearest and entries more than 2T above it certainly are not, so only
        the entries in between go through `pair_sq_distances`. A row whose list may end inside that
        band (unlisted rows bounded with the largest norm of the set) is recomputed in full. Computed
        once per row and cached.
        """
        cache = self._exact.setdefault(k, torch.full((self.values.shape[0],), math.nan, dtype=torch.float64))
        rows = rows.cpu()
        missing = rows[torch.isnan(cache[rows])].unique()
        if missing.numel():
            cache[missing] = self._settle(k, missing)[0]
        return cache[rows]

    def exact_nearest(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact squared distance from each of `rows` (R,) to its nearest target row, and that row's
        index (the lowest among exactly equidistant ones, as numpy's argmin); (R,) float64 and long."""
        return self._settle(1, rows.cpu())

    def _settle(self, k: int, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device_rows = rows.to(self.values.device)
        values = self.values[device_rows].double().cpu()
        index = self.index[device_rows]
        own = self.norms[device_rows]
        listed_bound = (self.eps * (own + self.target_norms[index].amax(dim=1)) ** 2).cpu().unsqueeze(1)
        unlisted_bound = (self.eps * (own + self.max_norm) ** 2).cpu().unsqueeze(1)
        complete = (values[:, -1:] - unlisted_bound > values[:, k - 1 : k] + listed_bound).squeeze(1)
        complete |= values.shape[1] == self.n_candidates
        result = torch.empty(rows.shape[0], dtype=torch.float64), torch.empty(rows.shape[0], dtype=torch.long)
        short = torch.nonzero(~complete).flatten()
        step = max(1, _FULL_ROW_ELEMENTS // self.target.shape[0])
        for start in range(0, short.shape[0], step):
            at = short[start : start + step]
            full = self.recompute_rows(rows[at]).double().cpu()
            result[0][at], result[1][at] = self._kth_of(k, rows[at], full, None, 2 * unlisted_bound[at])
        done = torch.nonzero(complete).flatten()
        if done.numel():
            listed = index.cpu()[done]
            result[0][done], result[1][done] = self._kth_of(
                k, rows[done], values[done], listed, 2 * listed_bound[done]
            )
        return result

    def _kth_of(
        self, k: int, rows: torch.Tensor, values: torch.Tensor, index: torch.Tensor | None, band: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """k-th smallest exact value per row, and its column, from fast candidate values (R, L) (their
        columns `index`, or None when the values cover every column)."""
        kth = values.kthvalue(k, dim=1, keepdim=True).values
        below = (values < kth - band).sum(dim=1)
        near = torch.nonzero((values - kth).abs() <= band)
        columns = near[:, 1] if index is None else index[near[:, 0], near[:, 1]]
        exact = pair_sq_distances(self.source, self.target, rows[near[:, 0]], columns)
        # Sort by (row, exact value, column); each row's pick is its (k - below)-th entry.
        order = torch.sort(columns, stable=True).indices
        order = order[torch.sort(exact[order], stable=True).indices]
        order = order[torch.sort(near[order, 0], stable=True).indices]
        counts = torch.bincount(near[:, 0], minlength=rows.shape[0])
        pick = order[torch.cumsum(counts, 0) - counts + (k - 1 - below)]
        return exact[pick], columns[pick]
