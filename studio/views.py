"""Evaluation curves and per-sample views: the figures, selections and grids that the dashboards
(studio.callbacks.dashboards) and studio-eval's plots show.

An evaluation hands its non-scalar results over as an `EvalViews`. Figures are drawn on
`matplotlib.figure.Figure` objects with their own Agg canvas, never through pyplot: no global figure
registry or backend is touched, so nothing leaks between calls or threads. Nothing here imports Lightning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

HIST_BINS = 64


@dataclass
class EvalViews:
    """What an evaluation adds to the dashboards beyond scalars. Every field is optional (None = absent)."""

    prd: tuple[np.ndarray, np.ndarray] | None = None  # PRD curve: precision [A], recall [A] in [0, 1]
    # {"psi": [1.0, 0.9, ...], "precision": [...], "recall": [...], ...}: any metric keys, as long as psi.
    psi_sweep: dict[str, list[float]] | None = None
    realism: np.ndarray | None = None  # per generated sample [M], float64, may hold +inf
    rarity: np.ndarray | None = None  # per generated sample [M], float64, NaN = outside every real ball
    # {"rarest": uint8 [k, 3, H, W], "least_realistic": ..., "most_typical": ...}
    samples: dict[str, torch.Tensor] | None = None


# --------------------------------------------------------------------------------------------- figures


def _new_figure(width: float, height: float, dpi: int = 100) -> Figure:
    """A Figure of width x height inches with its own Agg canvas (no pyplot)."""
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def prd_figure(precision: np.ndarray, recall: np.ndarray, title: str = "PRD") -> Figure:
    """PRD curve: recall [A] on x, precision [A] on y, both axes [0, 1], square, with a grid."""
    precision = np.asarray(precision, dtype=np.float64).ravel()
    recall = np.asarray(recall, dtype=np.float64).ravel()
    if precision.shape != recall.shape:
        raise ValueError(f"precision {precision.shape} and recall {recall.shape} differ in length")
    fig = _new_figure(5, 5)
    ax = fig.add_subplot()
    ax.plot(recall, precision, linewidth=1.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.grid(True, alpha=0.4)
    return fig


def check_sweep(sweep: Mapping[str, Sequence[float]]) -> tuple[list[float], dict[str, list[float]]]:
    """(ψ values, {metric: values}) of a ψ sweep, checking that every metric has one value per ψ."""
    if "psi" not in sweep:
        raise ValueError(f"a ψ sweep needs a 'psi' key, got {sorted(sweep)}")
    psi = [float(p) for p in sweep["psi"]]
    metrics = {name: [float(v) for v in values] for name, values in sweep.items() if name != "psi"}
    for name, values in metrics.items():
        if len(values) != len(psi):
            raise ValueError(f"ψ sweep: {name} has {len(values)} values for {len(psi)} ψ")
    return psi, metrics


def psi_sweep_figure(sweep: Mapping[str, Sequence[float]]) -> Figure:
    """One line with markers per metric of `sweep` over its "psi" values (x axis "truncation ψ"), in the
    order of the dict; the points are drawn in the order given."""
    psi, metrics = check_sweep(sweep)
    fig = _new_figure(6, 4)
    ax = fig.add_subplot()
    for name, values in metrics.items():
        ax.plot(psi, values, marker="o", label=name)
    ax.set_xlabel("truncation ψ")
    ax.set_ylabel("value")
    ax.set_title("ψ sweep")
    ax.grid(True, alpha=0.4)
    if metrics:
        ax.legend()
    return fig


def _nonfinite_counts(values: np.ndarray) -> tuple[int, int]:
    """(number of ±inf, number of NaN) in `values`."""
    return int(np.isinf(values).sum()), int(np.isnan(values).sum())


def histogram_note(values: np.ndarray) -> str:
    """The note of `histogram_figure`: how many values are shown and how many non-finite ones were left
    out, e.g. "97 shown, 3 non-finite left out (2 inf, 1 NaN)"."""
    values = np.asarray(values, dtype=np.float64).ravel()
    n_inf, n_nan = _nonfinite_counts(values)
    shown = values.size - n_inf - n_nan
    return f"{shown} shown, {n_inf + n_nan} non-finite left out ({n_inf} inf, {n_nan} NaN)"


def histogram_figure(values: np.ndarray, title: str, bins: int = HIST_BINS) -> Figure:
    """Histogram of the finite values of `values` [M] (any shape, flattened); a note in the upper right
    corner (the axes' only text) says how many non-finite values (±inf, NaN) were left out."""
    values = np.asarray(values, dtype=np.float64).ravel()
    fig = _new_figure(6, 4)
    ax = fig.add_subplot()
    ax.hist(values[np.isfinite(values)], bins=bins)
    ax.set_title(title)
    ax.set_ylabel("samples")
    ax.grid(True, alpha=0.4)
    ax.text(0.98, 0.97, histogram_note(values), transform=ax.transAxes, ha="right", va="top", fontsize=8)
    return fig


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render `fig` with Agg: uint8 RGB [H, W, 3] (H, W = its size in inches times its dpi)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def save_figure(fig: Figure, path: str | Path) -> None:
    """Write `fig` as a PNG at `path` (its folder must exist)."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.savefig(path, format="png")


# ----------------------------------------------------------------------------------- sample selection


def _stable_order(keys: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    """The first k of `index` sorted by `keys` ascending, ties kept in index order (int64)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return index[np.argsort(keys, kind="stable")[:k]].astype(np.int64)


def extreme_indices(values: np.ndarray, k: int, largest: bool) -> np.ndarray:
    """Indices (int64 [min(k, #finite)]) of the k largest (or smallest) finite values of `values` [M],
    extreme first; ties go to the lower index. ±inf and NaN are never picked."""
    values = np.asarray(values, dtype=np.float64).ravel()
    index = np.flatnonzero(np.isfinite(values))
    keys = -values[index] if largest else values[index]
    return _stable_order(keys, index, k)


def typical_indices(realism: np.ndarray, k: int) -> np.ndarray:
    """Indices (int64 [min(k, #finite)]) of the k samples whose realism [M] is closest to the median of
    the finite realism values, closest first; ties go to the lower index. ±inf and NaN are never picked."""
    realism = np.asarray(realism, dtype=np.float64).ravel()
    index = np.flatnonzero(np.isfinite(realism))
    if index.size == 0:
        return np.zeros(0, dtype=np.int64)
    finite = realism[index]
    return _stable_order(np.abs(finite - np.median(finite)), index, k)


def image_grid(images: torch.Tensor, columns: int) -> np.ndarray:
    """uint8 images [k, C, H, W] (C = 3, or 1 repeated to RGB) -> uint8 RGB grid [rows * H, columns * W, 3],
    row-major, rows = ceil(k / columns); zeros where the last row is not full."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [k, 1 or 3, H, W], got {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    k, _, h, w = images.shape
    rows = max(1, -(-k // columns))
    padded = torch.zeros([rows * columns, 3, h, w], dtype=torch.uint8)
    padded[:k] = images.detach().cpu().expand(-1, 3, -1, -1)
    grid = padded.view(rows, columns, 3, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, columns * w, 3)
    return grid.numpy()


# ------------------------------------------------------------------------------------------- helpers


def psi_label(psi: float) -> str:
    """ψ as written in scalar keys: rounded to 6 decimals, shortest form ("1.0", "0.7", not 0.70000001)."""
    return str(round(float(psi), 6))


def psi_scalars(sweep: Mapping[str, Sequence[float]], prefix: str = "eval") -> dict[str, float]:
    """{f"{prefix}/psi_sweep/{metric}@psi={psi}": value} for every point of a ψ sweep."""
    psi, metrics = check_sweep(sweep)
    return {
        f"{prefix}/psi_sweep/{name}@psi={psi_label(p)}": v
        for name, values in metrics.items()
        for p, v in zip(psi, values, strict=True)
    }


def finite_values(values: np.ndarray | None) -> np.ndarray | None:
    """The finite values of `values` (float64 [n]), or None if absent or none is finite."""
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    return finite if finite.size else None


def sample_grids(views: EvalViews, columns: int) -> dict[str, np.ndarray]:
    """{name: uint8 RGB grid [H, W, 3]} of the non-empty sample sets."""
    samples = views.samples or {}
    return {
        name: image_grid(images, min(columns, len(images))) for name, images in samples.items() if len(images)
    }


def save_views(views: EvalViews, folder: Path, prefix: str = "", columns: int = 8) -> list[Path]:
    """Write the views present as PNG files in `folder` (created if missing): prd_curve.png,
    psi_sweep.png, realism_hist.png, rarity_hist.png, samples_<name>.png, each name preceded by
    f"{prefix}_" when a prefix is given (a histogram whose values are all non-finite is still written: its
    note says so). Returns the paths written, in that order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def path(name: str) -> Path:
        written.append(folder / (f"{prefix}_{name}" if prefix else name))
        return written[-1]

    if views.prd is not None:
        save_figure(prd_figure(*views.prd), path("prd_curve.png"))
    if views.psi_sweep is not None:
        save_figure(psi_sweep_figure(views.psi_sweep), path("psi_sweep.png"))
    for name, values in (("realism", views.realism), ("rarity", views.rarity)):
        if values is not None and np.size(values):
            save_figure(histogram_figure(values, name), path(f"{name}_hist.png"))
    for name, grid in sample_grids(views, columns).items():
        Image.fromarray(grid).save(path(f"samples_{name}.png"))
    return written
