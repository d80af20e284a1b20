"""Fixed-latent sample grids of G_ema, saved as PNG and sent to the loggers."""

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from studio.callbacks.schedule import kimg_tag, step_crossed
from studio.data.image_io import save_png
from studio.features.resize import quantize_to_uint8
from studio.sampling import sample_batches
from studio.views import image_grid


def log_image(trainer: L.Trainer, key: str, grid: np.ndarray, step: int) -> None:
    """Send an HWC uint8 image to the loggers that take images (TensorBoard, W&B)."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, global_step=step, dataformats="HWC")
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[grid], step=step)


class SampleGrid(L.Callback):
    """Every `every_kimg` (and at the start and end of training) writes out_dir/fakes_<kimg>.png: a
    grid x grid mosaic of G_ema images seed .. seed + grid^2 - 1, drawn as studio.sampling draws them
    (latent and class from seed + i, constant noise: the images studio-generate writes for that seed).
    Writes out_dir/reals.png once. Uses no global RNG, so it does not change the training stream."""

    def __init__(
        self, out_dir: str | Path, every_kimg: float, grid: int = 8, seed: int = 0, batch: int = 16
    ) -> None:
        self.out_dir = Path(out_dir)
        self.every_kimg = every_kimg
        self.grid = int(grid)
        self.seed = int(seed)
        self.batch = int(batch)

    def fakes(self, pl_module: L.LightningModule) -> torch.Tensor:
        """uint8 [grid * grid, C, R, R] from G_ema."""
        batches = sample_batches(pl_module.G_ema, self.grid**2, seed=self.seed, batch=self.batch)
        return torch.cat([quantize_to_uint8(images).cpu() for _, images in batches])

    def save(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        grid = image_grid(self.fakes(pl_module), self.grid)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_png(grid, self.out_dir / f"fakes_{kimg_tag(pl_module.cur_nimg)}.png")
        log_image(trainer, "samples/fakes", grid, pl_module.cur_nimg)

    def save_reals(self, trainer: L.Trainer) -> None:
        path = self.out_dir / "reals.png"
        if path.exists() or not trainer.is_global_zero:
            return
        dataset = trainer.datamodule.dataset
        n = min(self.grid * self.grid, len(dataset))
        grid = image_grid(torch.stack([dataset[i][0] for i in range(n)]), self.grid)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_png(grid, path)
        log_image(trainer, "samples/reals", grid, 0)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save_reals(trainer)
        self.save(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if step_crossed(pl_module, self.every_kimg) or pl_module.done or trainer.should_stop:
            self.save(trainer, pl_module)
