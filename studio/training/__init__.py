"""StyleGAN2 training: LightningModule, loss, lazy-regularized optimizers, exact-resume checkpoints,
multi-process strategy. `studio.training.run.train(cfg)` runs a composed Hydra config."""

from studio.training.distributed import GANDDPStrategy
from studio.training.loss import StyleGAN2Loss, path_lengths, r1_penalty
from studio.training.module import StyleGAN2Module, TrainingDiverged

__all__ = [
    "GANDDPStrategy",
    "StyleGAN2Loss",
    "StyleGAN2Module",
    "TrainingDiverged",
    "path_lengths",
    "r1_penalty",
]
