"""Seeded sampling from a generator, shared by studio-generate, studio-eval ckpt=, training metrics and
the sample grids.

Image i of a run with seed S comes from the latent drawn by a CPU torch.Generator seeded with S + i
(class-conditional generators get class (S + i) % c_dim), with constant noise, so a given (weights, S, i)
always gives the same image whatever the batch size, device or number of images — up to float
rounding: convolution libraries pick their algorithms per shape (oneDNN on the CPU, cuDNN on CUDA), a
batch of one takes the fused modulated conv, and float16 layers (model.num_fp16_res) run on CUDA only;
on the CPU the float images of batch 1 and 2 differ by about 5e-6, so an 8-bit pixel rarely moves by one
level. The same batch size on the same device gives the same pixels, bit for bit. On CUDA the
generator's float32 layers run in IEEE float32 (TF32 off, as in training and extraction).
"""

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from ops.environment import fp32_precision


def latents(G: nn.Module, seeds: Sequence[int]) -> torch.Tensor:
    """z [len(seeds), z_dim], row i drawn from torch.Generator seeded with seeds[i] (device-independent)."""
    return torch.stack([torch.randn(G.z_dim, generator=torch.Generator().manual_seed(s)) for s in seeds])


def class_labels(G: nn.Module, seeds: Sequence[int]) -> torch.Tensor | None:
    """One-hot c [len(seeds), c_dim] with class seed % c_dim, or None for an unconditional generator."""
    if G.c_dim == 0:
        return None
    return nn.functional.one_hot(torch.tensor(list(seeds)) % G.c_dim, G.c_dim).float()


@torch.no_grad()
def images_for_seeds(G: nn.Module, seeds: Sequence[int], truncation_psi: float = 1.0) -> torch.Tensor:
    """Float images [len(seeds), C, R, R] in about [-1, 1] of the given latent seeds, constant noise."""
    device = next(G.parameters()).device
    c = class_labels(G, seeds)
    z = latents(G, seeds).to(device)
    with fp32_precision():
        return G(z, None if c is None else c.to(device), truncation_psi=truncation_psi, noise_mode="const")


def sample_batches(
    G: nn.Module, num: int, seed: int = 0, batch: int = 32, truncation_psi: float = 1.0
) -> Iterator[tuple[range, torch.Tensor]]:
    """(seeds, float images [len(seeds), C, R, R] in about [-1, 1]) for images seed .. seed + num - 1."""
    for start in range(0, num, batch):
        seeds = range(seed + start, seed + min(start + batch, num))
        yield seeds, images_for_seeds(G, seeds, truncation_psi)


def sample_images(
    G: nn.Module, num: int, seed: int = 0, batch: int = 32, truncation_psi: float = 1.0
) -> Iterator[torch.Tensor]:
    """The images of `sample_batches` alone (a source for studio.features.extract_features)."""
    for _, images in sample_batches(G, num, seed=seed, batch=batch, truncation_psi=truncation_psi):
        yield images
