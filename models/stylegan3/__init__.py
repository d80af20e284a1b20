"""StyleGAN3 (Karras et al. 2021) generator, configs T and R, as plain torch.nn.Modules."""

from models.stylegan3.generator import CONFIGS, Generator
from models.stylegan3.layers import MagnitudeEMA, SynthesisInput, SynthesisLayer, ToRGB
from models.stylegan3.schedule import Band, synthesis_schedule
from models.stylegan3.synthesis import SynthesisNetwork

__all__ = [
    "CONFIGS",
    "Band",
    "Generator",
    "MagnitudeEMA",
    "SynthesisInput",
    "SynthesisLayer",
    "SynthesisNetwork",
    "ToRGB",
    "synthesis_schedule",
]
