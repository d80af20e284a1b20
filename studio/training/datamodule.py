"""Endless, resumable stream of training batches from any (uint8 image, int64 label) dataset."""

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from studio.data.sampler import InfiniteSampler


class InfiniteDataModule(L.LightningDataModule):
    """Per-process DataLoader over one global, deterministic index stream (studio.data.InfiniteSampler).

    batch_size is the GLOBAL batch; each of the W processes loads batch_size / W images. start_nimg is
    the number of images already consumed (set on resume) so the stream continues exactly there.
    """

    def __init__(
        self, dataset: Dataset, batch_size: int, num_workers: int = 2, seed: int = 0, shuffle: bool = True
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.start_nimg = 0

    def train_dataloader(self) -> DataLoader:
        world = self.trainer.world_size if self.trainer is not None else 1
        rank = self.trainer.global_rank if self.trainer is not None else 0
        if self.batch_size % world:
            raise ValueError(
                f"train.batch={self.batch_size} is the global batch and must be divisible by the number of "
                f"processes ({world})."
            )
        sampler = InfiniteSampler(
            len(self.dataset),
            seed=self.seed,
            shuffle=self.shuffle,
            start=self.start_nimg,
            rank=rank,
            num_replicas=world,
        )
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size // world,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            prefetch_factor=2 if self.num_workers > 0 else None,
        )
