"""StyleGAN3 generator (Karras et al. 2021, "Alias-Free Generative Adversarial Networks"): mapping
network z, c -> ws followed by the alias-free synthesis network ws -> image."""

import math
from typing import Any

import torch
from torch import nn

from models.registry import register_network
from models.stylegan2.mapping import MappingNetwork
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
class Generator(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> image [N, img_channels, img_resolution, img_resolution] (about [-1, 1]).

    mapping_kwargs go to models.stylegan2.MappingNetwork (over MAPPING_DEFAULTS); synthesis_kwargs to
    models.stylegan3.SynthesisNetwork (config T by default; CONFIGS["r"] for config R). The Fourier input's
    `synthesis.input.transform` buffer translates/rotates the output of a trained generator.
    """

    def __init__(
        self,
        z_dim: int = 512,
        c_dim: int = 0,
        w_dim: int = 512,
        img_resolution: int = 256,
        img_channels: int = 3,
        mapping_kwargs: dict[str, Any] | None = None,
        synthesis_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim,
            img_resolution=img_resolution,
            img_channels=img_channels,
            **dict(synthesis_kwargs or {}),
        )
        self.num_ws = self.synthesis.num_ws
        mapping_kwargs = {**MAPPING_DEFAULTS, **dict(mapping_kwargs or {})}
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, num_ws=self.num_ws, **mapping_kwargs)

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

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        **synthesis_kwargs: Any,
    ) -> torch.Tensor:
        """synthesis_kwargs: fused_modconv, and noise_mode (accepted and ignored; no noise inputs)."""
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)
