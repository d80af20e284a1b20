"""Send an evaluation's `EvalViews` (studio.views) to the TensorBoard and W&B loggers of a run.

Keys and tags (prefix "eval" by default; a logger's own `prefix` is put in front, as Lightning does for
its scalars):

TensorBoard
    {prefix}/prd_curve, {prefix}/psi_sweep                  figures, rendered to RGB images
    {prefix}/psi_sweep/{metric}@psi={psi}                   one scalar per point of the sweep
    {prefix}/realism, {prefix}/rarity                       histograms of the finite values
    {prefix}/samples/{name}                                 image grids
W&B (one `run.log` call per evaluation)
    {prefix}/prd_curve                                      wandb.plot.line, recall on x (its data:
                                                            {prefix}/prd_curve_table)
    {prefix}/psi_sweep                                      wandb.plot.line_series, one line per metric
                                                            over ψ (its data: {prefix}/psi_sweep_table)
    {prefix}/psi_sweep_values                               wandb.Table, columns ["psi", *metrics]
    {prefix}/psi_sweep/{metric}@psi={psi}                   the same scalars as TensorBoard
    {prefix}/realism, {prefix}/rarity                       wandb.Histogram of the finite values
    {prefix}/samples/{name}                                 wandb.Image of the grid
    trainer/global_step                                     the step (see `log_views`)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from studio.views import (
    HIST_BINS,
    EvalViews,
    check_sweep,
    figure_to_array,
    finite_values,
    prd_figure,
    psi_scalars,
    psi_sweep_figure,
    sample_grids,
)

# The step key of Lightning's WandbLogger.log_metrics (and its define_metric("*", step_metric=...)).
WANDB_STEP_KEY = "trainer/global_step"


def _logger_key(logger: Logger, key: str) -> str:
    """`key` with the logger's own prefix in front, as Lightning's loggers do in log_metrics."""
    prefix = getattr(logger, "_prefix", "")
    return f"{prefix}{getattr(logger, 'LOGGER_JOIN_CHAR', '-')}{key}" if prefix else key


def _log_tensorboard(
    logger: TensorBoardLogger, views: EvalViews, step: int, prefix: str, columns: int
) -> None:
    writer = logger.experiment  # torch.utils.tensorboard.SummaryWriter

    def key(name: str) -> str:
        return _logger_key(logger, f"{prefix}/{name}")

    # SummaryWriter.add_figure would render the figure and then call pyplot.close on it; the same RGB image,
    # rendered here by figure_to_array, goes through add_image instead (add_figure stores an image too), so
    # no pyplot function is ever called.
    if views.prd is not None:
        precision, recall = views.prd
        fig = prd_figure(precision, recall)
        writer.add_image(key("prd_curve"), figure_to_array(fig), global_step=step, dataformats="HWC")
    if views.psi_sweep is not None:
        fig = psi_sweep_figure(views.psi_sweep)
        writer.add_image(key("psi_sweep"), figure_to_array(fig), global_step=step, dataformats="HWC")
        for tag, value in psi_scalars(views.psi_sweep, prefix).items():
            writer.add_scalar(_logger_key(logger, tag), value, global_step=step)
    for name, values in (("realism", views.realism), ("rarity", views.rarity)):
        finite = finite_values(values)
        if finite is not None:
            writer.add_histogram(key(name), finite, global_step=step)
    for name, grid in sample_grids(views, columns).items():
        writer.add_image(key(f"samples/{name}"), grid, global_step=step, dataformats="HWC")


def wandb_payload(views: EvalViews, prefix: str = "eval", columns: int = 8) -> dict[str, Any]:
    """The W&B objects of `views`, keyed as in the module docstring (without the step key or a logger
    prefix). Imports wandb."""
    import wandb

    payload: dict[str, Any] = {}
    if views.prd is not None:
        precision, recall = (np.asarray(a, dtype=np.float64).ravel() for a in views.prd)
        table = wandb.Table(
            columns=["recall", "precision"],
            data=[[float(r), float(p)] for r, p in zip(recall, precision, strict=True)],
        )
        payload[f"{prefix}/prd_curve"] = wandb.plot.line(table, "recall", "precision", title="PRD")
    if views.psi_sweep is not None:
        psi, metrics = check_sweep(views.psi_sweep)
        payload[f"{prefix}/psi_sweep_values"] = wandb.Table(
            columns=["psi", *metrics],
            data=[[p, *(v[i] for v in metrics.values())] for i, p in enumerate(psi)],
        )
        if metrics:
            payload[f"{prefix}/psi_sweep"] = wandb.plot.line_series(
                xs=psi, ys=list(metrics.values()), keys=list(metrics), title="ψ sweep", xname="truncation ψ"
            )
        payload.update(psi_scalars(views.psi_sweep, prefix))
    for name, values in (("realism", views.realism), ("rarity", views.rarity)):
        finite = finite_values(values)
        if finite is not None:
            payload[f"{prefix}/{name}"] = wandb.Histogram(finite, num_bins=HIST_BINS)
    for name, grid in sample_grids(views, columns).items():
        payload[f"{prefix}/samples/{name}"] = wandb.Image(grid, caption=name)
    return payload


def _log_wandb(logger: WandbLogger, views: EvalViews, step: int, prefix: str, columns: int) -> None:
    payload = {_logger_key(logger, k): v for k, v in wandb_payload(views, prefix, columns).items()}
    if not payload:
        return
    # As WandbLogger.log_metrics: the step travels as the "trainer/global_step" value (every key is
    # plotted against it, define_metric), not as run.log(step=...), unless TensorBoard is synced.
    if not getattr(logger, "_wandb_init", {}).get("sync_tensorboard"):
        payload[WANDB_STEP_KEY] = step
    logger.experiment.log(payload)


@rank_zero_only
def log_views(
    loggers: Sequence[Logger], views: EvalViews, step: int, prefix: str = "eval", columns: int = 8
) -> None:
    """Send the same `views` to every TensorBoard and W&B logger of `loggers`, at `step` (the step of the
    evaluation's scalars, e.g. images shown); other loggers (CSV, ...) cannot hold figures and are skipped.
    Sample grids have min(columns, k) columns. Runs on global rank zero only.

    W&B step: Lightning's WandbLogger.log_metrics(metrics, step) does not pass `step` to run.log; it adds
    {"trainer/global_step": step} to the logged dict and declares trainer/global_step the x axis of every
    key (define_metric("*", step_metric="trainer/global_step")), so W&B's own `_step` just counts log calls.
    The views are logged the same way, in one run.log call with "trainer/global_step": step, so they sit on
    the same x axis as the scalars. Passing run.log(step=step) instead would be wrong: W&B's `_step` is
    already past small steps (one per earlier log call) and it drops data logged at a lower step, and a
    large step would push the `_step` of the scalars logged after it. With sync_tensorboard=True (where
    Lightning logs without a step key) no step key is added either.
    """
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            _log_tensorboard(logger, views, step, prefix, columns)
        elif isinstance(logger, WandbLogger):
            _log_wandb(logger, views, step, prefix, columns)
