"""Networks as plain torch.nn.Modules (no Lightning, no Hydra): StyleGAN2 generator and discriminator."""

from models.registry import create_discriminator, create_generator, register

__all__ = ["create_discriminator", "create_generator", "register"]
