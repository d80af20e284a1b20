"""Hydra multirun helpers: the Optuna direction of eval.monitor and a summary table of the trials."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from studio.io.atomic import write_text_atomic
from studio.metrics.compute import metric_outputs

log = logging.getLogger(__name__)
SUMMARY_FIELDS = ("trial", "overrides", "metric", "best", "best_kimg", "last_kimg", "run_dir")


def monitor_direction(monitor: str, mode: str, metrics: Any) -> str:
    """ "minimize" or "maximize" for an Optuna study of `monitor` (eval.mode, or with mode auto the
    metric's own direction); the `studio_direction` resolver of conf/hparams_search/optuna.yaml."""
    if not metrics:
        raise ValueError(
            f"eval.monitor={monitor} but eval.metrics is empty: a sweep optimises a metric of the "
            f"evaluation, e.g. eval.metrics=[{monitor}]"
        )
    if mode == "auto":
        mode = metric_outputs(list(metrics)).get(monitor) or ""
    if mode not in ("min", "max"):
        raise ValueError(f"eval.monitor={monitor} needs eval.mode=min or max for a sweep")
    return "minimize" if mode == "min" else "maximize"


def trial_row(run_dir: Path) -> dict[str, Any]:
    """One trial of a sweep: its overrides and the last metrics.jsonl record's best value."""
    overrides = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")) or []
    log_file = run_dir / "metrics.jsonl"
    lines = log_file.read_text().splitlines(keepends=True) if log_file.is_file() else []
    complete = [line for line in lines if line.endswith("\n")]  # a line cut short by a kill is not a record
    last = json.loads(complete[-1]) if complete else {}
    best = last.get("best") or {}
    return {
        "trial": run_dir.name,
        "overrides": " ".join(overrides),
        "metric": best.get("metric"),
        "best": best.get("value"),
        "best_kimg": best.get("kimg"),
        "last_kimg": last.get("kimg"),
        "run_dir": str(run_dir),
    }


def write_summary(sweep_dir: Path) -> list[dict[str, Any]]:
    """summary.csv and summary.json in `sweep_dir`: one row per trial folder, in trial order."""
    trials = sorted(
        (p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()),
        key=lambda p: (len(p.name), p.name),
    )
    rows = [trial_row(p) for p in trials]
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=SUMMARY_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    # Jobs of one sweep may finish at once (parallel launchers): whole files only.
    write_text_atomic(sweep_dir / "summary.csv", table.getvalue())
    write_text_atomic(sweep_dir / "summary.json", json.dumps(rows, indent=2) + "\n")
    return rows


class SweepSummary(Callback):
    """Hydra callback: the trial table in the sweep folder, rewritten after every job (so it is there
    even when a sweep stops early or jobs run on other machines) and after the multirun."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            write_summary(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = write_summary(sweep_dir)
            log.info("Sweep summary of %d trials: %s", len(rows), sweep_dir / "summary.csv")
