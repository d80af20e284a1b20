"""metrics.jsonl: one JSON object per evaluation tick, also sent to the loggers."""

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch import nn

from studio.callbacks.dashboards import log_views
from studio.callbacks.schedule import step_crossed
from studio.io.atomic import write_text_atomic
from studio.runtime import capture_rng_state, restore_rng_state

log = logging.getLogger(__name__)


class MetricsLog(L.Callback):
    """Every `every_kimg` (at the start of a fresh run when metrics are on, and at the end of training)
    appends to `path`
    {"kimg", "results": {mean losses since the last tick, pl_mean, metrics}, "seconds": wall time since
    this process started training, "sec_per_kimg": wall seconds per 1000 training images since the last
    tick, "eval_seconds": time spent on metrics}.

    evaluate(G_ema, device) -> {name: float} adds the metric suite (studio.callbacks.GeneratorMetrics);
    every process calls it (it splits the work and returns the numbers on the global-zero process) and
    its time is not counted in sec_per_kimg. An evaluation
    that raises is logged as one error line (and "eval_error" in the record) and training goes on,
    unless `strict`. With the module's eval.monitor tracker (`pl_module.best`), each record holds the
    best result so far as "best" {"metric", "mode", "value", "kimg"}. When `evaluate` leaves an
    `EvalViews` in its `views` attribute, the curves and per-sample views go to the TensorBoard and W&B
    loggers at the same step as the scalars."""

    def __init__(
        self,
        path: str | Path,
        every_kimg: float,
        evaluate: Callable[[nn.Module, torch.device], dict[str, float]] | None = None,
        strict: bool = False,
    ) -> None:
        self.path = Path(path)
        self.every_kimg = every_kimg
        self.evaluate = evaluate
        self.strict = strict
        self._start = self._tick_time = 0.0
        self._tick_nimg = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._tick_time = time.perf_counter()
        self._tick_nimg = pl_module.cur_nimg
        at_start = pl_module.cur_nimg == 0 and self.evaluate is not None
        if trainer.is_global_zero:  # a restart from scratch writes the kimg-0 line again
            self.drop_records_after(pl_module.cur_nimg - 1 if at_start else pl_module.cur_nimg)
        if at_start:
            self.write(trainer, pl_module)  # the untrained G: where every metric's curve starts

    def drop_records_after(self, nimg: int) -> None:
        """Remove the lines of ticks after `nimg` (images shown) from the file, atomically: a run killed
        after writing a tick's line but before its checkpoint resumes from the previous checkpoint (or
        from scratch) and writes that tick again, so exactly one line per tick remains. A line cut short
        by a kill is dropped too."""
        if not self.path.is_file():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        kept = [
            line for line in lines if line.endswith("\n") and round(json.loads(line)["kimg"] * 1000) <= nimg
        ]
        if len(kept) < len(lines):
            write_text_atomic(self.path, "".join(kept))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if step_crossed(pl_module, self.every_kimg) or pl_module.done or trainer.should_stop:
            self.write(trainer, pl_module)

    def run_evaluation(
        self, trainer: L.Trainer, pl_module: L.LightningModule, record: dict, now: float
    ) -> None:
        """Evaluate into `record` (collective: every rank takes its share of the images; rank 0 gets the
        numbers), update the monitor and send the views to the loggers on rank 0."""
        # Evaluation may draw random numbers (a DataLoader seeds itself from the global torch RNG on a
        # feature-cache miss): it must not change the training stream, so training is the same with
        # metrics on or off and whether or not the real features were cached.
        rng = capture_rng_state()
        try:
            record["results"].update(self.evaluate(pl_module.G_ema, pl_module.device))
        except Exception as err:
            if self.strict:
                raise
            record["eval_error"] = f"{type(err).__name__}: {err}"
            log.error(
                "Evaluation at kimg %.3f failed (%s); training goes on (eval.strict=true stops instead).",
                pl_module.cur_kimg,
                record["eval_error"],
            )
        finally:
            restore_rng_state(rng)
        record["eval_seconds"] = time.perf_counter() - now
        self._tick_time = time.perf_counter()
        # The untrained G (kimg 0) is no candidate for the best checkpoint: none is written at kimg 0.
        tracked = pl_module.best is not None and pl_module.cur_nimg > 0
        if tracked:
            pl_module.best.evaluated_at = pl_module.cur_nimg  # every process: the checkpoint step agrees
        if not trainer.is_global_zero:
            return
        if tracked:
            pl_module.best.update(record["results"], pl_module.cur_nimg)
            record["best"] = pl_module.best.summary()
        views = getattr(self.evaluate, "views", None)
        if views is not None:
            log_views(trainer.loggers, views, step=pl_module.cur_nimg)

    def write(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        now = time.perf_counter()
        shown = pl_module.cur_nimg - self._tick_nimg
        record = {
            "kimg": pl_module.cur_kimg,
            "results": pl_module.stats.pop_means(),
            "seconds": now - self._start,
            "sec_per_kimg": (now - self._tick_time) / shown * 1000 if shown else None,
        }
        self._tick_time, self._tick_nimg = now, pl_module.cur_nimg
        if self.evaluate is not None:
            self.run_evaluation(trainer, pl_module, record, now)
        if not trainer.is_global_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        scalars = dict(record["results"], **{"progress/kimg": record["kimg"]})
        if record["sec_per_kimg"] is not None:
            scalars["timing/sec_per_kimg"] = record["sec_per_kimg"]
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=pl_module.cur_nimg)
            logger.save()  # on disk at every tick: Lightning's CSV logger otherwise flushes every 100 steps
        log.info(
            "kimg %.3f  %s  %.1f s/kimg",
            record["kimg"],
            "  ".join(f"{k.removeprefix('loss/')} {v:.4g}" for k, v in record["results"].items()),
            record["sec_per_kimg"] or 0.0,
        )
