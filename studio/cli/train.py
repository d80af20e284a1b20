"""studio-train: train a StyleGAN2 from the Hydra config tree in conf/ (see docs/training.md)."""

import importlib.resources
import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from studio.config_resolvers import register_resolvers
from studio.training.config_check import interpolated_keys
from studio.training.module import TrainingDiverged

log = logging.getLogger("studio.train")


def config_dir() -> str:
    """The Hydra config tree. It ships as the package studio.conf: the checkout's conf/ in an editable
    install, a copy inside site-packages otherwise (pyproject.toml maps one onto the other). A checkout
    used uninstalled (PYTHONPATH=., as benchmarks/gpu_checks.sh does) has no studio.conf: its conf/."""
    try:
        return str(importlib.resources.files("studio.conf"))
    except ModuleNotFoundError:
        return str(Path(__file__).resolve().parents[2] / "conf")


CONFIG_DIR = config_dir()
register_resolvers()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def run(cfg: DictConfig) -> float | None:
    """Train; returns the best value of eval.monitor (what a Hydra sweeper such as Optuna optimises),
    or None without a monitor."""
    from studio.training.run import train

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    # Keys the config refers to, read before run_dir is replaced by its resolved value.
    referenced = interpolated_keys(cfg) | interpolated_keys(hydra_cfg)
    with open_dict(cfg):
        # Hydra's output dir is the run dir; Lightning's DDP workers receive it as hydra.run.dir, so taking
        # it from there keeps every process on the same run_dir even when run_dir contains ${now:...}.
        cfg.run_dir = hydra_cfg.runtime.output_dir
    run_dir = Path(cfg.run_dir)
    try:
        local_launcher = str(hydra_cfg.launcher.get("_target_", "")).endswith("BasicLauncher")
        if multirun and local_launcher and str(cfg.trainer.devices) not in ("1", "[0]"):
            raise ValueError(
                "A local multirun (-m) with trainer.devices > 1 is not supported: Lightning's worker "
                "processes would re-run the whole sweep. Use a launcher (hydra/launcher=slurm), or one "
                "device per job."
            )
        module = train(cfg, referenced=referenced)
    except (TrainingDiverged, ValueError, FileNotFoundError) as err:
        # Errors a user can fix get their message alone; HYDRA_FULL_ERROR=1 shows the traceback.
        log.error("%s: %s", type(err).__name__, err)
        if not multirun:  # a sweep keeps the failed trial's folder (its overrides and log) for its summary
            remove_if_only_hydra_files(run_dir)
        if multirun or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise  # a sweep records this job as failed and goes on (SystemExit would end the sweep)
        sys.exit(1)
    if not module.done:
        log.info(
            "Stopped at kimg %.3f of %s. Continue with: studio-train <same overrides> run_dir=%s resume=auto",
            module.cur_kimg,
            cfg.train.kimg,
            cfg.run_dir,
        )
    if module.best is None:
        return None
    log.info(
        "Best %s = %s at kimg %s (checkpoints/best.ckpt).",
        module.best.metric,
        module.best.value,
        module.best.kimg,
    )
    return module.best.value


def remove_if_only_hydra_files(run_dir: Path) -> None:
    """Remove a run dir that holds nothing but what Hydra wrote before the run started (.hydra/ and the
    job log): a run that failed before writing anything leaves no folder behind. Folders with anything
    else (an earlier run's checkpoints, config.yaml, logs) are kept."""
    hydra_files = {".hydra", f"{HydraConfig.get().job.name}.log"}
    if not run_dir.is_dir() or any(entry.name not in hydra_files for entry in run_dir.iterdir()):
        return
    for handler in list(logging.root.handlers):
        if (
            isinstance(handler, logging.FileHandler)
            and Path(handler.baseFilename).parent == run_dir.resolve()
        ):
            logging.root.removeHandler(handler)
            handler.close()
    shutil.rmtree(run_dir)


def main() -> None:
    run()


if __name__ == "__main__":
    main()
