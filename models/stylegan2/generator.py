"""StyleGAN2 generator: mapping network z, c -> ws followed by the synthesis network ws -> image."""

from typing import Any

import torch
from torch import nn

from models.registry import register_network
from models.stylegan2.mapping import MappingNetwork
from models.stylegan2.synthesis import NoiseMode, SynthesisNetwork


@register_network("stylegan2-generator", version=1)
class Generator(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> image [N, img_channels, img_resolution, img_resolution] (about [-1, 1]).

    mapping_kwargs go to MappingNetwork (num_layers, lr_multiplier, w_avg_beta, embed_features,
    layer_features, activation); synthesis_kwargs to SynthesisNetwork (channel_base, channel_max,
    num_fp16_res, conv_clamp, fused_modconv, resample_filter). Style mixing: call `mapping` twice and
    splice the ws along dim 1 (there are `num_ws` of them) before `synthesis`. Subclasses with another
    synthesis network (StyleGAN3) set `synthesis_class` and `mapping_defaults`.
    """

    synthesis_class: type[nn.Module] = SynthesisNetwork
    mapping_defaults: dict[str, Any] = {}

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
        self.synthesis = self.synthesis_class(
            w_dim=w_dim,
            img_resolution=img_resolution,
            img_channels=img_channels,
            **dict(synthesis_kwargs or {}),
        )
        self.num_ws = self.synthesis.num_ws
        mapping_kwargs = {**self.mapping_defaults, **dict(mapping_kwargs or {})}
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        noise_mode: NoiseMode = "random",
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, update_emas=update_emas)
