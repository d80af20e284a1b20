"""Hydra multirun helpers: the Optuna direction of eval.monitor and a summary table of the trials."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from studio.metrics.compute import metric_outputs

log = logging.getLogger(__name__)
SUMMARY_FIELDS = ("trial", "overrides", "metric", "best", "best_kimg", "last_kimg", "run_dir")


def monitor_direction(monitor: str, mode: str, metrics: Any) -> str:
    """ "minimize" or "maximize" for an Optuna study of `monitor` (eval.mode, or with mode auto the
    metric's own direction); the `studio_direction` resolver of conf/hparams_search/optuna.yaml."""
    if mode == "auto":
        mode = metric_outputs(list(metrics)).get(monitor) or ""
    if mode not in ("min", "max"):
        raise ValueError(f"eval.monitor={monitor} needs eval.mode=min or max for a sweep")
    return "minimize" if mode == "min" else "maximize"


def trial_row(run_dir: Path) -> dict[str, Any]:
    """One trial of a sweep: its overrides and the last metrics.jsonl record's best value."""
    overrides = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")) or []
    records = (
        (run_dir / "metrics.jsonl").read_text().splitlines() if (run_dir / "metrics.jsonl").is_file() else []
    )
    last = json.loads(records[-1]) if records else {}
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
    with open(sweep_dir / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    (sweep_dir / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


class SweepSummary(Callback):
    """Hydra callback: after a multirun, write the trial table into the sweep folder."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = write_summary(sweep_dir)
            log.info("Sweep summary of %d trials: %s", len(rows), sweep_dir / "summary.csv")
