"""eval.monitor: the best value of one evaluation result over a run, part of the training state."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


class BestMonitor:
    """Tracks the best `metric` (a result name of eval.metrics, e.g. "fid") under `mode` ("min" or
    "max"). `update` is called at every evaluation; `improved_at` is the image count (cur_nimg) of the
    evaluation that set the current best, so the checkpoint callback knows when to write best.ckpt."""

    def __init__(self, metric: str, mode: str, protocol: Mapping[str, Any] | None = None) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"eval.mode must be min or max for eval.monitor={metric}, got {mode!r}.")
        self.metric = metric
        self.mode = mode
        self.protocol = dict(protocol or {})  # what the value depends on (backbone, counts, options, ...)
        self.value: float | None = None
        self.kimg: float | None = None
        self.improved_at: int | None = None
        self.evaluated_at: int | None = None  # set on every process by each evaluation (not saved)

    def update(self, results: Mapping[str, float], cur_nimg: int) -> bool:
        """Take the evaluation at `cur_nimg` into account; True when it is the new best. A missing or
        non-finite value (e.g. a failed evaluation) never is."""
        value = results.get(self.metric)
        if value is None or not math.isfinite(value):
            return False
        if self.value is not None and not (value < self.value if self.mode == "min" else value > self.value):
            return False
        self.value, self.kimg, self.improved_at = float(value), cur_nimg / 1000, cur_nimg
        return True

    def summary(self) -> dict[str, Any]:
        """{"metric", "mode", "value", "kimg"} of the best evaluation so far (value None before one)."""
        return {"metric": self.metric, "mode": self.mode, "value": self.value, "kimg": self.kimg}

    def state_dict(self) -> dict[str, Any]:
        return self.summary() | {"improved_at": self.improved_at, "protocol": self.protocol}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a checkpoint's best. One of another metric or mode, or measured under other
        evaluation settings (backbone, weights, image counts, options: a resume may change eval.*), is
        not comparable, so tracking starts afresh (with an info line)."""
        saved = (state["metric"], state["mode"], state.get("protocol", {}))
        if saved != (self.metric, self.mode, self.protocol):
            log.info(
                "eval.monitor %s (%s) is measured differently from the checkpoint's best (%s, %s): the best "
                "starts afresh.",
                self.metric,
                self.mode,
                state["metric"],
                state["mode"],
            )
            return
        self.value, self.kimg, self.improved_at = state["value"], state["kimg"], state["improved_at"]
