"""Multirun: an Optuna sweep of eval.monitor, the trial summary, and Hydra's submitit launchers."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from tiny_run import TINY_RUN

from studio.cli.train import CONFIG_DIR
from studio.sweep import monitor_direction, write_summary

REPO = Path(__file__).resolve().parents[2]
TINY = [
    *TINY_RUN,
    "data.dataset.size=64",
    "train.kimg=0.016",
    "eval.every_kimg=0.008",
    "ckpt.every_kimg=100",
    "eval.metrics=[fid]",
    "eval.backbone=random_cnn",
    "eval.num_gen=16",
    "eval.num_real=16",
    "logger=none",
    "trainer.enable_progress_bar=false",
]


def studio_train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO), "STUDIO_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "studio.cli.train", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_direction_follows_the_monitored_metric() -> None:
    assert monitor_direction("fid", "auto", ["fid", "pr"]) == "minimize"
    assert monitor_direction("precision", "auto", ["fid", "pr"]) == "maximize"
    assert monitor_direction("kid_std", "max", ["kid"]) == "maximize"
    with pytest.raises(ValueError, match="eval.monitor=kid_std needs eval.mode=min or max for a sweep"):
        monitor_direction("kid_std", "auto", ["kid"])


@pytest.mark.slow
def test_a_two_trial_optuna_sweep_optimises_the_monitor_and_writes_a_summary(tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    run = studio_train(
        tmp_path,
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",  # the database storage works too
        *TINY,
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    import optuna

    study = optuna.load_study(study_name="studio", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(study.trials) == 2 and study.direction == optuna.study.StudyDirection.MINIMIZE
    trials = [json.loads((sweep_dir / t / "metrics.jsonl").read_text().splitlines()[-1]) for t in ("0", "1")]
    bests = [t["best"]["value"] for t in trials]
    optuna = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert optuna["best_value"] == min(bests)  # fid: the study minimises
    with open(sweep_dir / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == ["0", "1"]
    assert [float(r["best"]) for r in rows] == bests
    assert all(r["metric"] == "fid" and r["best_kimg"] == "0.016" for r in rows)
    assert all("loss.gamma=" in r["overrides"] and "optimizer.generator.lr=" in r["overrides"] for r in rows)
    assert json.loads((sweep_dir / "summary.json").read_text())[1]["best"] == bests[1]


@pytest.mark.slow
def test_the_submitit_local_launcher_runs_the_jobs(tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    run = studio_train(
        tmp_path, "-m", "hydra/launcher=submitit_local", *TINY, "seed=0,1", f"hydra.sweep.dir={sweep_dir}"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads((sweep_dir / "summary.json").read_text())
    assert [r["trial"] for r in rows] == ["0", "1"]
    assert [r["overrides"].split()[-1] for r in rows] == ["seed=0", "seed=1"]
    assert all(r["best"] is None and r["last_kimg"] == 0.016 for r in rows)  # no eval.monitor here
    for trial in ("0", "1"):
        assert (sweep_dir / trial / "checkpoints" / "last.ckpt").is_file()


def test_the_slurm_launcher_asks_for_one_task_per_gpu_on_the_trainer_s_nodes() -> None:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", "trainer.devices=8", "trainer.num_nodes=2"],
            return_hydra_config=True,
        )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"]) == (2, 8, 8)


def test_the_summary_lists_trials_in_order_with_their_best(tmp_path) -> None:
    for trial, best in (("0", 3.0), ("10", 1.0), ("2", None)):
        folder = tmp_path / trial
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "overrides.yaml").write_text(f"- seed={trial}\n")
        record = {"kimg": 0.5, "results": {}}
        if best is not None:
            record["best"] = {"metric": "fid", "mode": "min", "value": best, "kimg": 0.25}
        (folder / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    rows = write_summary(tmp_path)
    assert [(r["trial"], r["overrides"], r["best"], r["best_kimg"]) for r in rows] == [
        ("0", "seed=0", 3.0, 0.25),
        ("2", "seed=2", None, None),
        ("10", "seed=10", 1.0, 0.25),
    ]


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_other_jobs_of_a_multirun(tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    run = studio_train(tmp_path, "-m", *TINY, "seed=-1,0", f"hydra.sweep.dir={sweep_dir}")
    assert run.returncode == 1  # Hydra reports the failed job after the batch
    assert "seed=-1: must be an integer >= 0." in run.stdout + run.stderr
    assert (sweep_dir / "1" / "checkpoints" / "last.ckpt").is_file()  # the next job still ran
    rows = json.loads((sweep_dir / "summary.json").read_text())
    assert [(r["trial"], r["last_kimg"]) for r in rows] == [("0", None), ("1", 0.016)]


@pytest.mark.slow
def test_a_local_multirun_on_several_devices_is_refused(tmp_path) -> None:
    run = studio_train(tmp_path, "-m", *TINY, "trainer.devices=2", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert run.returncode == 1
    assert "A local multirun (-m) with trainer.devices > 1 is not supported" in run.stdout + run.stderr
