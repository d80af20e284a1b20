"""What a resumed run may change compared with the config its checkpoint was trained with.

- free: settings that do not touch the training state (length, evaluation, logging, checkpoints,
  threads and workers); changed silently.
- restored: settings whose values live in the checkpoint (architecture, optimizer state including its
  learning rates and betas, batch size); a new value would not be used, so the resume is refused rather
  than recording a value the run does not use.
- everything else (loss weights, EMA, seed, data, trainer): the new value is used from the resume on;
  one warning each, since the run is then no longer what an uninterrupted run would have produced.
"""

import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf

from studio.training.config_check import ConfigError

log = logging.getLogger(__name__)
MISSING = "(not set)"

FREE = (
    "run_dir",
    "resume",
    "train.kimg",
    "train.cpu_threads",
    "ckpt.",
    "eval.",
    "logger.",
    "data.num_workers",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "seed",  # reported with the dataset by warn_if_run_differs
    "model.backbone_weights",  # the checkpoint holds the backbone's weights (free within "model.")
)
# augment.p: ADA's p is training state (the loss's), and another augmentation has other state.
RESTORED = (
    "model.",
    "optimizer.",
    "train.batch",
    "data.resolution",
    "data.use_labels",
    "augment._target_",
    "augment.p",
)
# Configs of checkpoints written by earlier studio versions: keys since moved, and keys added since,
# with the value those runs had.
MOVED = {"model.mbstd_group_size": "model.discriminator.mbstd_group_size"}
ADDED = {"loss.objective": "logistic", "train.batch_gpu": None}


def _covers(prefixes: tuple[str, ...], key: str) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in prefixes)


def flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: leaf value} of nested dicts (lists are leaves)."""
    if not isinstance(values, dict):
        return {prefix.removesuffix("."): values}
    return {k: v for key, value in values.items() for k, v in flatten(value, f"{prefix}{key}.").items()}


def changed_keys(saved_yaml: str, cfg: DictConfig) -> dict[str, tuple[Any, Any]]:
    """{key: (checkpoint's value, this run's value)} for every key that differs; a key only one of the
    configs has counts as changed, with MISSING on the other side (e.g. an optimizer argument added with
    +optimizer.generator.weight_decay=0.01, which the restored optimizer state would not use)."""
    saved = flatten(OmegaConf.to_container(OmegaConf.create(saved_yaml)))
    for old, new in MOVED.items():
        if old in saved:
            saved.setdefault(new, saved.pop(old))
    for key, value in ADDED.items():
        saved.setdefault(key, value)
    current = flatten(OmegaConf.to_container(cfg, resolve=True))
    return {
        key: (saved.get(key, MISSING), current.get(key, MISSING))
        for key in sorted(saved.keys() | current.keys())
        if saved.get(key, MISSING) != current.get(key, MISSING)
    }


def check_resume(saved_yaml: str | None, cfg: DictConfig, cur_kimg: float) -> None:
    """ConfigError if a restored setting changed; one warning per changed setting that the run will use.
    `saved_yaml` is the checkpoint's config (None for checkpoints that do not store one)."""
    if saved_yaml is None:
        return
    changes = changed_keys(saved_yaml, cfg)
    refused = [key for key in changes if _covers(RESTORED, key) and not _covers(FREE, key)]
    if refused:
        raise ConfigError(
            "Cannot resume with these settings changed: the checkpoint restores them, so the new values "
            "would not be used. Set them back to the checkpoint's values (drop your overrides, or pass "
            "those values) to continue the run, or start a new run in another run_dir:\n  "
            + "\n  ".join(f"{key}={changes[key][1]} (checkpoint: {changes[key][0]})" for key in refused)
        )
    for key, (old, new) in changes.items():
        if not _covers(FREE, key):
            log.warning(
                "resume: %s changed from %s to %s; the new value is used from kimg %.3f on, so this run "
                "differs from an uninterrupted one.",
                key,
                old,
                new,
                cur_kimg,
            )
