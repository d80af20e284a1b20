"""FastGAN generator (Liu et al. 2021) as Projected GAN trains it, registered as "fastgan-generator"."""

from models.fastgan.generator import (
    CHANNEL_MULTIPLIERS,
    SLE_SOURCES,
    FastganMapping,
    FastganSynthesis,
    Generator,
    channels_at,
)
from models.fastgan.layers import InitLayer, NoiseInjection, SkipLayerExcitation, UpBlockBig, UpBlockSmall

__all__ = [
    "CHANNEL_MULTIPLIERS",
    "SLE_SOURCES",
    "FastganMapping",
    "FastganSynthesis",
    "Generator",
    "InitLayer",
    "NoiseInjection",
    "SkipLayerExcitation",
    "UpBlockBig",
    "UpBlockSmall",
    "channels_at",
]
