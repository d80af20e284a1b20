"""FastGAN generator (Liu et al. 2021) as Projected GAN trains it, registered as "fastgan-generator"."""

from models.fastgan.generator import (
    CHANNEL_MULTIPLIERS,
    SLE_SOURCES,
    FastGANSynthesisNetwork,
    Generator,
    LatentMapping,
    channels_at,
)
from models.fastgan.layers import FullUpBlock, InitialBlock, LiteUpBlock, NoiseInput, SkipLayerExcitation

__all__ = [
    "CHANNEL_MULTIPLIERS",
    "SLE_SOURCES",
    "LatentMapping",
    "FastGANSynthesisNetwork",
    "Generator",
    "InitialBlock",
    "NoiseInput",
    "SkipLayerExcitation",
    "FullUpBlock",
    "LiteUpBlock",
    "channels_at",
]
