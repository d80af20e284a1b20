"""InfiniteSampler: an endless, deterministic, resumable index stream for kimg-based training."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class InfiniteSampler(Sampler[int]):
    """Endless index stream: epoch e is a permutation of range(dataset_len) drawn from (seed, e)
    (or range order when shuffle=False), epochs concatenated into one global stream s[0], s[1], ...

    Resume works on the number of samples CONSUMED by the model, which the training loop owns (images
    shown, in the checkpoint): the DataLoader's prefetching runs the iterator ahead of the model, so the
    iterator's own position is not the resume point. A sampler built with `start=consumed` yields
    exactly the stream from there on.

    With num_replicas > 1, replica `rank` yields s[start + rank], s[start + rank + num_replicas], ...
    so the replicas together consume the global stream in order.
    """

    def __init__(
        self,
        dataset_len: int,
        seed: int = 0,
        shuffle: bool = True,
        start: int = 0,
        rank: int = 0,
        num_replicas: int = 1,
    ) -> None:
        if dataset_len < 1:
            raise ValueError(f"InfiniteSampler needs a non-empty dataset, got dataset_len={dataset_len}.")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"InfiniteSampler: rank {rank} is not in [0, num_replicas={num_replicas}).")
        if start < 0 or seed < 0:
            raise ValueError(f"InfiniteSampler: start and seed must be >= 0, got start={start}, seed={seed}.")
        self.dataset_len = int(dataset_len)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.rank = int(rank)
        self.num_replicas = int(num_replicas)
        self.consumed = int(start)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Indices of epoch `epoch`, int64 [dataset_len]."""
        if not self.shuffle:
            return np.arange(self.dataset_len, dtype=np.int64)
        return np.random.default_rng([self.seed, epoch]).permutation(self.dataset_len)

    def __iter__(self) -> Iterator[int]:
        position = self.consumed + self.rank
        epoch, offset = divmod(position, self.dataset_len)
        order = self.epoch_order(epoch)
        while True:
            yield int(order[offset])
            offset += self.num_replicas
            while offset >= self.dataset_len:
                offset -= self.dataset_len
                epoch += 1
                order = self.epoch_order(epoch)

    def __repr__(self) -> str:
        return (
            f"InfiniteSampler(dataset_len={self.dataset_len}, seed={self.seed}, shuffle={self.shuffle}, "
            f"consumed={self.consumed}, rank={self.rank}, num_replicas={self.num_replicas})"
        )
