"""metrics.jsonl: one JSON object per evaluation tick, also sent to the loggers."""

import json
import logging
import time
from pathlib import Path

import lightning as L

from studio.callbacks.schedule import crossed

log = logging.getLogger(__name__)


class MetricsLog(L.Callback):
    """Every `every_kimg` (and at the end of training) appends to `path`
    {"kimg", "results": {mean losses since the last tick, pl_mean}, "seconds": wall time since this
    process started training, "sec_per_kimg": wall seconds per 1000 images since the last tick}."""

    def __init__(self, path: str | Path, every_kimg: float) -> None:
        self.path = Path(path)
        self.every_kimg = every_kimg
        self._start = self._tick_time = 0.0
        self._tick_nimg = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._tick_time = time.perf_counter()
        self._tick_nimg = pl_module.cur_nimg

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        prev = pl_module.cur_nimg - pl_module.batch_size
        if crossed(prev, pl_module.cur_nimg, self.every_kimg) or pl_module.done or trainer.should_stop:
            self.write(trainer, pl_module)

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
        log.info(
            "kimg %.3f  %s  %.1f s/kimg",
            record["kimg"],
            "  ".join(f"{k.removeprefix('loss/')} {v:.4g}" for k, v in record["results"].items()),
            record["sec_per_kimg"] or 0.0,
        )
