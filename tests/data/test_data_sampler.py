"""InfiniteSampler: deterministic epochs, exact resume from a consumed count, replicas, prefetching."""

from itertools import islice

import numpy as np
import pytest
import torch

from studio.data import InfiniteSampler


def _take(sampler: InfiniteSampler, n: int) -> list[int]:
    return list(islice(iter(sampler), n))


def test_each_epoch_is_a_seeded_permutation():
    stream = _take(InfiniteSampler(7, seed=3), 7 * 4)
    epochs = [stream[e * 7 : (e + 1) * 7] for e in range(4)]
    for e, epoch in enumerate(epochs):
        assert sorted(epoch) == list(range(7))
        assert epoch == np.random.default_rng([3, e]).permutation(7).tolist()
    assert len({tuple(e) for e in epochs}) > 1
    assert stream == _take(InfiniteSampler(7, seed=3), 28)
    assert stream != _take(InfiniteSampler(7, seed=4), 28)


def test_no_shuffle_repeats_range():
    assert _take(InfiniteSampler(3, shuffle=False), 8) == [0, 1, 2, 0, 1, 2, 0, 1]


@pytest.mark.parametrize("start", [0, 1, 6, 7, 8, 20, 21])
def test_start_yields_the_stream_tail(start):
    full = _take(InfiniteSampler(7, seed=1), 40)
    assert _take(InfiniteSampler(7, seed=1, start=start), 40 - start) == full[start:]


@pytest.mark.parametrize("num_replicas", [2, 3])
def test_replicas_interleave_to_the_global_stream(num_replicas):
    start = 5
    full = _take(InfiniteSampler(4, seed=0), 60)
    per_rank = [
        _take(InfiniteSampler(4, seed=0, start=start, rank=r, num_replicas=num_replicas), 15)
        for r in range(num_replicas)
    ]
    interleaved = [per_rank[k % num_replicas][k // num_replicas] for k in range(15 * num_replicas)]
    assert interleaved == full[start : start + 15 * num_replicas]


def test_resume_through_a_prefetching_dataloader():
    """The iterator runs ahead of the model; resuming from the CONSUMED count still continues exactly."""
    data = torch.utils.data.TensorDataset(torch.arange(9))
    batch = 4

    def loader(sampler):
        return torch.utils.data.DataLoader(
            data, batch_size=batch, sampler=sampler, num_workers=1, prefetch_factor=4
        )

    uninterrupted = [b[0].tolist() for b in islice(loader(InfiniteSampler(9, seed=7)), 8)]
    consumed = 0
    for _ in islice(loader(InfiniteSampler(9, seed=7)), 3):  # 3 steps while workers prefetch further
        consumed += batch
    resumed = [b[0].tolist() for b in islice(loader(InfiniteSampler(9, seed=7, start=consumed)), 5)]
    assert resumed == uninterrupted[3:]


def test_invalid_arguments():
    with pytest.raises(ValueError, match="needs a non-empty dataset, got dataset_len=0"):
        InfiniteSampler(0)
    with pytest.raises(ValueError, match=r"rank 2 is not in \[0, num_replicas=2\)"):
        InfiniteSampler(5, rank=2, num_replicas=2)
