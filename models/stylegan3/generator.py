"""StyleGAN3 generator (Karras et al. 2021, "Alias-Free Generative Adversarial Networks"): mapping
network z, c -> ws followed by the alias-free synthesis network ws -> image."""

import math
from typing import Any

import torch

from models.registry import register_network
from models.stylegan2.generator import Generator as StyleGAN2Generator
from models.stylegan3.synthesis import SynthesisNetwork

# synthesis_kwargs of the paper's two configurations. R: 1x1 convs and radially symmetric down-sampling
# filters for rotation equivariance, with doubled channel counts to make up for the smaller kernels.
CONFIGS: dict[str, dict[str, Any]] = {
    "t": {"channel_base": 32768, "channel_max": 512, "conv_kernel": 3, "use_radial_filters": False},
    "r": {"channel_base": 65536, "channel_max": 1024, "conv_kernel": 1, "use_radial_filters": True},
}

# The paper's mapping network has 2 layers (StyleGAN2: 8); w_avg follows w more slowly than in StyleGAN2.
MAPPING_DEFAULTS: dict[str, Any] = {"num_layers": 2, "w_avg_beta": 0.998}


@register_network("stylegan3-generator", version=1)
class Generator(StyleGAN2Generator):
    """z [N, z_dim], c [N, c_dim] -> image [N, img_channels, img_resolution, img_resolution] (about [-1, 1]).

    mapping_kwargs go to models.stylegan2.MappingNetwork (over MAPPING_DEFAULTS); synthesis_kwargs to
    models.stylegan3.SynthesisNetwork (config T by default; CONFIGS["r"] for config R). The Fourier input's
    `synthesis.input.transform` buffer translates/rotates the output of a trained generator.
    """

    synthesis_class = SynthesisNetwork
    mapping_defaults = MAPPING_DEFAULTS

    def set_motion(self, translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0) -> None:
        """Move every image this generator draws: rotate its content by `rotate` degrees (counter-clockwise
        as displayed) about the centre, then translate it by `translate` = (x right, y down) in image
        widths. (0, 0), 0 restores the trained behaviour. Sets the Fourier input's `transform` to the
        inverse motion, since that buffer maps output coordinates to feature coordinates."""
        angle = math.radians(rotate)
        cos, sin = math.cos(angle), math.sin(angle)
        # Image y points down, so a counter-clockwise turn on screen is clockwise in (x, y) coordinates.
        motion = torch.tensor(
            [[cos, sin, translate[0]], [-sin, cos, translate[1]], [0.0, 0.0, 1.0]], dtype=torch.float64
        )
        transform = self.synthesis.input.transform
        transform.copy_(torch.linalg.inv(motion).to(transform))
