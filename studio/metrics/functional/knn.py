"""Blocked squared-distance kernels: k-NN radii and row/column reductions without an N x N matrix.

Memory is O(block_size^2) for one distance block plus O(N k) for the results. Everything stays on the
features' device; the only Python loop is over blocks, and no value is read back to the host inside it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ops.cpu_tuning import knn_block_elements, knn_onednn_min_depth


def default_block_size(device: torch.device) -> int:
    """Rows per distance block: 8192 on a GPU (256 MiB float32 square blocks), 0 on a CPU (= auto, see
    `block_shape`)."""
    return 8192 if device.type == "cuda" else 0


def block_shape(block_size: int, n_rows: int, n_cols: int) -> tuple[int, int]:
    """(rows, cols) per block: square `block_size` blocks, or, when block_size is 0 (auto), all columns
    and as many rows as fill the cache-sized block of ops.cpu_tuning."""
    if block_size > 0:
        return block_size, block_size
    return max(1, min(n_rows, knn_block_elements() // n_cols)), n_cols


# A symmetric pass over n points computes, for row block i, the columns from the block's first row
# on, so more row blocks waste less of the product (B blocks compute 1/2 + 1/(2B) of it). PyTorch's
# CPU top-k along a dimension of length L switches from partial sort to a much slower selection
# (2-3x on the development machine) when L < 64 k, so column top-k needs at least 64 k rows.
_SYMMETRIC_ROW_BLOCKS = 8
_TOPK_PARTIAL_SORT_RATIO = 64


def symmetric_row_block(n: int, k: int) -> int:
    """Rows per CPU block of a symmetric (x vs x) k-NN pass over n points; each block spans the
    columns from its first row to n."""
    rows = min(-(-n // _SYMMETRIC_ROW_BLOCKS), knn_block_elements() // n)
    return max(1, min(n, max(rows, _TOPK_PARTIAL_SORT_RATIO * k)))


def block_ranges(n: int, block_size: int) -> Iterator[slice]:
    for start in range(0, n, block_size):
        yield slice(start, min(start + block_size, n))


def augment_left(x: torch.Tensor, x_sq: torch.Tensor) -> torch.Tensor:
    """[x, 1, |x|^2] (N, D + 2): with `augment_right`, one matmul yields |x|^2 + bias - 2 x.y."""
    out = x.new_empty(x.shape[0], x.shape[1] + 2)
    out[:, :-2] = x
    out[:, -2] = 1
    out[:, -1] = x_sq
    return out


def augment_right(y: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """[-2y, bias, 1] (M, D + 2); bias = |y|^2 gives squared distances, |y|^2 - r^2 ball margins."""
    out = y.new_empty(y.shape[0], y.shape[1] + 2)
    torch.mul(y, -2, out=out[:, :-2])
    out[:, -2] = bias
    out[:, -1] = 1
    return out


class Workspace:
    """Reusable block buffers. On a CPU a fresh 128 MiB tensor per block costs more in page faults
    than the matmul that fills it; on a GPU this just spares the caching allocator."""

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
        """A contiguous (rows, cols) buffer with `like`'s dtype and device; contents undefined."""
        size = rows * cols
        buffer = self._buffers.get(name)
        if buffer is None or buffer.numel() < size:
            buffer = torch.empty(size, dtype=like.dtype, device=like.device)
            self._buffers[name] = buffer
        return buffer[:size].view(rows, cols)


def _use_onednn(left: torch.Tensor) -> bool:
    return (
        left.device.type == "cpu"
        and left.dtype == torch.float32
        and left.shape[1] >= knn_onednn_min_depth()
        and torch.backends.mkldnn.is_available()
    )


def pairwise_terms(left: torch.Tensor, right: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """left (n, D+2) @ right (m, D+2)^T: |a_i|^2 + bias_j - 2 a_i.b_j for every pair; (n, m).

    Folding the norms into the matmul writes each block once, with no broadcast passes. The
    |a|^2 + |b|^2 - 2ab form cancels, so callers center the data first, and squared distances may
    come out a hair below 0 (clamp results, not blocks). Deep float32 products on a CPU use oneDNN
    and return a new tensor instead of filling `out`.
    """
    if _use_onednn(left):
        return torch.ops.mkldnn._linear_pointwise(left, right, None, "none", [], "")
    return torch.mm(left, right.T, out=out)


# Exact k smallest of each long row in two steps: the minima of chunks of this many entries (one
# vectorised pass), then a top-k over the entries of the k chunks with the smallest minima (plus the
# tail that does not fill a chunk). Every entry below the k-th smallest value sits in a chunk whose
# minimum is below it too, so those chunks hold the k smallest values (ties included) and the result
# is exactly `topk`'s; on the CPU it took about half of `topk`'s time on 10000-long rows. (Along
# columns the gather is strided and slower than `topk`, so columns use `topk`.)
_CHUNK = 64


def row_smallest_k(d: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest values of every row of d (rows, cols), ascending, and their column indices;
    both (rows, min(k, cols))."""
    length = d.shape[1]
    k = min(k, length)
    if length < 4 * k * _CHUNK or d.device.type != "cpu":
        return d.topk(k, dim=1, largest=False)
    n_full = length // _CHUNK
    chunked = d[:, : n_full * _CHUNK].unflatten(1, (n_full, _CHUNK))
    best_chunks = chunked.amin(2).topk(k, dim=1, largest=False).indices
    offsets = torch.arange(_CHUNK, device=d.device)
    columns = (best_chunks.unsqueeze(2) * _CHUNK + offsets).flatten(1)
    if length > n_full * _CHUNK:
        tail = torch.arange(n_full * _CHUNK, length, device=d.device).expand(d.shape[0], -1)
        columns = torch.cat([columns, tail], dim=1)
    values, positions = d.gather(1, columns).topk(k, dim=1, largest=False)
    return values, columns.gather(1, positions)


def _merge_smallest(
    best: tuple[torch.Tensor, torch.Tensor], candidates: tuple[torch.Tensor, torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    values, positions = torch.cat([best[0], candidates[0]], dim=1).topk(k, dim=1, largest=False)
    return values, torch.cat([best[1], candidates[1]], dim=1).gather(1, positions)


def nearest_neighbours(
    x: torch.Tensor, k: int, block_size: int, left: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ascending squared distances from each row of x (N, D) to its k nearest other rows, and their
    row indices; both (N, k) (k is capped at N - 1).

    The sample itself is excluded (its diagonal entry is set to +inf); exact duplicates elsewhere
    count as neighbours at distance 0. Distances are symmetric, so only blocks on or right of the
    diagonal are computed (about half the matmul work): each block serves the k-NN of its rows and,
    through a column-wise top-k, of its columns. CPU blocks span every remaining column.
    `left` is `augment_left(x, |x|^2)` when the caller has built it already. Values are the fast
    matmul's (see `pairwise_terms`); `studio.metrics.functional.exact` re-decides near-ties.
    """
    n = x.shape[0]
    k = min(k, n - 1)
    x_sq = (x * x).sum(dim=1) if left is None else left[:, -1]
    left = augment_left(x, x_sq) if left is None else left
    right = augment_right(x, x_sq)
    row_block = block_size if block_size > 0 else symmetric_row_block(n, k)
    best_values = torch.full((n, k), float("inf"), dtype=x.dtype, device=x.device)
    best_index = torch.zeros((n, k), dtype=torch.long, device=x.device)
    workspace = Workspace()
    row_blocks = list(block_ranges(n, row_block))
    for bi, rows in enumerate(row_blocks):
        column_ranges = row_blocks[bi:] if block_size > 0 else [slice(rows.start, n)]
        for cols in column_ranges:
            out = workspace.get("d", rows.stop - rows.start, cols.stop - cols.start, x)
            d = pairwise_terms(left[rows], right[cols], out)
            first_other = 0
            if cols.start == rows.start:
                first_other = rows.stop - rows.start
                d[:, :first_other].fill_diagonal_(float("inf"))
            row_values, row_index = row_smallest_k(d, k)
            best = _merge_smallest(
                (best_values[rows], best_index[rows]), (row_values, row_index + cols.start), k
            )
            best_values[rows], best_index[rows] = best
            others = d[:, first_other:]
            if others.shape[1]:
                column_best = others.topk(min(k, others.shape[0]), dim=0, largest=False)
                targets = slice(cols.start + first_other, cols.stop)
                best = _merge_smallest(
                    (best_values[targets], best_index[targets]),
                    (column_best.values.T, column_best.indices.T + rows.start),
                    k,
                )
                best_values[targets], best_index[targets] = best
    return best_values.clamp_(min=0), best_index


def mutual_nearest(
    a: torch.Tensor, b: torch.Tensor, k: int, block_size: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The k nearest rows of b for every row of a (N, D), and the k nearest rows of a for every row of
    b (M, D), in one blocked pass: ((squared distances (N, k), indices), (squared distances (M, k),
    indices)), ascending (k capped at the other set's size). Fast matmul values, as `nearest_neighbours`.
    """
    left, right = augment_left(a, (a * a).sum(dim=1)), augment_right(b, (b * b).sum(dim=1))
    ka, kb = min(k, b.shape[0]), min(k, a.shape[0])
    a_best = (torch.full((a.shape[0], ka), float("inf"), dtype=a.dtype, device=a.device),)
    a_best += (torch.zeros((a.shape[0], ka), dtype=torch.long, device=a.device),)
    b_best = (torch.full((b.shape[0], kb), float("inf"), dtype=a.dtype, device=a.device),)
    b_best += (torch.zeros((b.shape[0], kb), dtype=torch.long, device=a.device),)
    row_block, col_block = block_shape(block_size, a.shape[0], b.shape[0])
    workspace = Workspace()
    for rows in block_ranges(a.shape[0], row_block):
        for cols in block_ranges(b.shape[0], col_block):
            out = workspace.get("d", rows.stop - rows.start, cols.stop - cols.start, a)
            d = pairwise_terms(left[rows], right[cols], out)
            values, index = row_smallest_k(d, ka)
            merged = _merge_smallest((a_best[0][rows], a_best[1][rows]), (values, index + cols.start), ka)
            a_best[0][rows], a_best[1][rows] = merged
            column = d.topk(min(kb, d.shape[0]), dim=0, largest=False)
            candidates = (column.values.T, column.indices.T + rows.start)
            merged = _merge_smallest((b_best[0][cols], b_best[1][cols]), candidates, kb)
            b_best[0][cols], b_best[1][cols] = merged
    return (a_best[0].clamp_(min=0), a_best[1]), (b_best[0].clamp_(min=0), b_best[1])
