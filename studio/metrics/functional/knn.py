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


class Augmented:
    """A set x (N, D) as the two matmul operands of its squared distances, built once and shared by
    every pass over it: left = [x, 1, |x|^2] and right = [-2x, |x|^2, 1] (see `augment_left`)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.sq_norms = (x * x).sum(dim=1)
        self.left, self.right = augment_left(x, self.sq_norms), augment_right(x, self.sq_norms)
        self.norms = self.sq_norms.clamp(min=0).sqrt()


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


class _Nearest:
    """Running k smallest squared distances (n, k) per row, ascending, with the indices they came from."""

    def __init__(self, n: int, k: int, like: torch.Tensor) -> None:
        self.k = k
        self.values = torch.full((n, k), float("inf"), dtype=like.dtype, device=like.device)
        self.index = torch.zeros((n, k), dtype=torch.long, device=like.device)

    def fold(self, at: slice, values: torch.Tensor, index: torch.Tensor) -> None:
        """Merge candidate values (len(at), L) and their indices into the rows `at`."""
        merged, positions = torch.cat([self.values[at], values], dim=1).topk(self.k, dim=1, largest=False)
        self.index[at] = torch.cat([self.index[at], index], dim=1).gather(1, positions)
        self.values[at] = merged

    def fold_rows(self, d: torch.Tensor, rows: slice, first_column: int) -> None:
        """The rows `rows` of a distance block d whose first column is `first_column`."""
        values, index = row_smallest_k(d, self.k)
        self.fold(rows, values, index + first_column)

    def fold_columns(self, d: torch.Tensor, columns: slice, first_row: int) -> None:
        """The columns `columns` of a distance block d whose first row is `first_row`."""
        best = d.topk(min(self.k, d.shape[0]), dim=0, largest=False)
        self.fold(columns, best.values.T, best.indices.T + first_row)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.values.clamp_(min=0), self.index


def nearest_neighbours(x: Augmented, k: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ascending squared distances from each row of a set x (N, D) to its k nearest other rows, and their
    row indices; both (N, k) (k is capped at N - 1).

    The sample itself is excluded (its diagonal entry is set to +inf); exact duplicates elsewhere
    count as neighbours at distance 0. Distances are symmetric, so only blocks on or right of the
    diagonal are computed (about half the matmul work): each block serves the k-NN of its rows and,
    through a column-wise top-k, of its columns. CPU blocks span every remaining column.
    Values are the fast matmul's (see `pairwise_terms`); `studio.metrics.functional.exact` re-decides
    near-ties.
    """
    left, right = x.left, x.right
    n = left.shape[0]
    k = min(k, n - 1)
    row_block = block_size if block_size > 0 else symmetric_row_block(n, k)
    best = _Nearest(n, k, left)
    workspace = Workspace()
    row_blocks = list(block_ranges(n, row_block))
    for bi, rows in enumerate(row_blocks):
        column_ranges = row_blocks[bi:] if block_size > 0 else [slice(rows.start, n)]
        for cols in column_ranges:
            out = workspace.get("d", rows.stop - rows.start, cols.stop - cols.start, left)
            d = pairwise_terms(left[rows], right[cols], out)
            first_other = 0
            if cols.start == rows.start:
                first_other = rows.stop - rows.start
                d[:, :first_other].fill_diagonal_(float("inf"))
            best.fold_rows(d, rows, cols.start)
            others = d[:, first_other:]
            if others.shape[1]:
                best.fold_columns(others, slice(cols.start + first_other, cols.stop), rows.start)
    return best.result()


def mutual_nearest(
    a: Augmented, b: Augmented, k: int, block_size: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The k nearest rows of b for every row of a set a (N, D), and the k nearest rows of a for every row
    of b (M, D), in one blocked pass: ((squared distances (N, k), indices), (squared distances (M, k),
    indices)), ascending (k capped at the other set's size). Fast matmul values, as `nearest_neighbours`.
    """
    n, m = a.left.shape[0], b.left.shape[0]
    a_best, b_best = _Nearest(n, min(k, m), a.left), _Nearest(m, min(k, n), a.left)
    row_block, col_block = block_shape(block_size, n, m)
    workspace = Workspace()
    for rows in block_ranges(n, row_block):
        for cols in block_ranges(m, col_block):
            out = workspace.get("d", rows.stop - rows.start, cols.stop - cols.start, a.left)
            d = pairwise_terms(a.left[rows], b.right[cols], out)
            a_best.fold_rows(d, rows, cols.start)
            b_best.fold_columns(d, cols, rows.start)
    return a_best.result(), b_best.result()
