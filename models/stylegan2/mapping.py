"""StyleGAN mapping network: latent z (and class label c) -> intermediate latents w."""

import torch
from torch import nn

from models.stylegan2.layers import FullyConnected, normalize_2nd_moment


class MappingNetwork(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim] (or w [N, w_dim] when num_ws is None).

    z is normalized to unit second moment; with c_dim > 0 the label is embedded to `embed_features`,
    normalized likewise and concatenated. `num_layers` lrelu FC layers (learning rate x lr_multiplier)
    follow. When w_avg_beta is not None, `w_avg` tracks the mean w (EMA, updated only with
    update_emas=True) and truncation pulls the first `truncation_cutoff` ws towards it:
    w' = w_avg + psi * (w - w_avg). The discriminator reuses this class with z_dim=0 to embed labels.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        super().__init__()
        if z_dim == 0 and c_dim == 0:
            raise ValueError("MappingNetwork needs z_dim > 0 or c_dim > 0 (it has no input otherwise)")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = w_dim if embed_features is None else embed_features
        layer_features = w_dim if layer_features is None else layer_features
        self.embed = FullyConnected(c_dim, embed_features) if c_dim > 0 else None
        in_features = z_dim + (embed_features if c_dim > 0 else 0)
        features = [in_features] + [layer_features] * (num_layers - 1) + [w_dim]
        self.layers = nn.Sequential(
            *[
                FullyConnected(
                    features[i], features[i + 1], activation=activation, lr_multiplier=lr_multiplier
                )
                for i in range(num_layers)
            ]
        )
        if w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            _check_input("z", z, self.z_dim)
            parts.append(normalize_2nd_moment(z.to(self.layers[0].weight.dtype)))
        if self.c_dim > 0:
            _check_input("c", c, self.c_dim)
            parts.append(normalize_2nd_moment(self.embed(c.to(self.embed.weight.dtype))))
        x = self.layers(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])

        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            if truncation_psi != 1:
                raise ValueError(
                    "truncation needs num_ws and w_avg tracking (num_ws and w_avg_beta not None)"
                )
            return x
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise ValueError(
                    "truncation_psi != 1 needs w_avg tracking; construct with w_avg_beta not None"
                )
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws = torch.cat([self.w_avg.lerp(ws[:, :cutoff], truncation_psi), ws[:, cutoff:]], dim=1)
        return ws

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


def _check_input(name: str, x: torch.Tensor | None, dim: int) -> None:
    if x is None or x.ndim != 2 or x.shape[1] != dim:
        got = None if x is None else list(x.shape)
        raise ValueError(f"{name} must be [N, {dim}], got {got}")
