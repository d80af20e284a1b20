"""The OmegaConf resolvers that the config tree in conf/ uses. `register_resolvers()` must run before a
config is composed; studio.cli.train calls it on import (tests and benchmarks import CONFIG_DIR from
there)."""

from omegaconf import OmegaConf

from studio.sweep import monitor_direction
from studio.training.optim import ema_beta

# The batch NVlabs states its StyleGAN3 schedules for (train.py scales them with --batch from it).
REFERENCE_BATCH = 32


def half_life_beta(half_life_kimg: float, batch: int) -> float:
    """Per-step decay of an EMA whose half-life is half_life_kimg thousand images at `batch` images per
    step: 0.5 ** (batch / (1000 half_life_kimg)) (StyleGAN3's input-magnitude EMAs: 20 kimg)."""
    return ema_beta(batch, half_life_kimg, None, 0)


def batch_scaled(value: float, batch: int) -> float:
    """value * batch / 32: a length in kimg stated for batch 32, kept at the same number of optimizer
    steps for another batch (StyleGAN3-R's blur fade-out: 200 kimg at batch 32)."""
    return value * batch / REFERENCE_BATCH


def register_resolvers() -> None:
    """Register studio_direction (conf/hparams_search/optuna.yaml), studio_half_life_beta and
    studio_batch_scaled (the StyleGAN3 model and loss configs); idempotent."""
    OmegaConf.register_new_resolver("studio_direction", monitor_direction, replace=True)
    OmegaConf.register_new_resolver("studio_half_life_beta", half_life_beta, replace=True)
    OmegaConf.register_new_resolver("studio_batch_scaled", batch_scaled, replace=True)
