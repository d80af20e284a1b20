"""StyleGAN2 (Karras et al. 2020) generator and discriminator as plain torch.nn.Modules."""

from models.stylegan2.discriminator import Discriminator, DiscriminatorBlock, DiscriminatorEpilogue
from models.stylegan2.generator import Generator
from models.stylegan2.mapping import MappingNetwork
from models.stylegan2.modconv import modulated_conv2d
from models.stylegan2.synthesis import SynthesisBlock, SynthesisLayer, SynthesisNetwork, ToRGB

__all__ = [
    "Discriminator",
    "DiscriminatorBlock",
    "DiscriminatorEpilogue",
    "Generator",
    "MappingNetwork",
    "SynthesisBlock",
    "SynthesisLayer",
    "SynthesisNetwork",
    "ToRGB",
    "modulated_conv2d",
]
