"""Networks as plain torch.nn.Modules (no Lightning, no Hydra), registered under stable names."""

import models.fastgan  # noqa: F401  (registers the FastGAN generator)
import models.projected  # noqa: F401  (registers the Projected GAN discriminator)
import models.stylegan2  # noqa: F401  (registers the StyleGAN2 networks)
import models.stylegan3  # noqa: F401  (registers the StyleGAN3 generator)
from models.registry import create_network, network_name, register_network

__all__ = ["create_network", "network_name", "register_network"]
