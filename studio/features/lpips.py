"""LPIPS distance with the VGG16 trunk (Zhang et al. 2018, "The unreasonable effectiveness of deep
features as a perceptual metric", version 0.1), written from the paper's definition.

d(x, y) = sum_l mean_hw( w_l . (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|)^2 ), where f_l are the VGG16
ReLU outputs relu1_2, relu2_2, relu3_3, relu4_3, relu5_3, |.| is the L2 norm over channels (+1e-10) and
w_l >= 0 are the learned "lin" weights (1x1 convolutions without bias).

Weights come in two files: torchvision's ImageNet VGG16 (`vgg16-397923af.pth`, the spec the vgg16
backbone uses) and the lin weights that the `lpips` PyPI package ships as `lpips/weights/v0.1/vgg.pth`
(keys `lin{l}.model.1.weight`, shape [1, C_l, 1, 1]); cached copies of the latter are named
`lpips_vgg_v0.1.pth`.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torchvision
from torch import nn

from studio.features.external import VGG16_WEIGHTS
from studio.features.weights import WeightsSpec, file_sha256, resolve_weights

# Indices in torchvision's vgg16().features of the ReLUs LPIPS reads (relu1_2 ... relu5_3).
VGG_TAPS = (3, 8, 15, 22, 29)
VGG_CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NORM_EPS = 1e-10

LPIPS_VGG_LIN_WEIGHTS = WeightsSpec(
    filenames=("lpips_vgg_v0.1.pth",),
    package_files=(("lpips", "weights/v0.1/vgg.pth"),),  # not weights/v0.0/vgg.pth
    note=(
        "This is the LPIPS v0.1 'vgg' lin-layer file (lpips 0.1.4 ships it as lpips/weights/v0.1/vgg.pth; "
        "pass it with lin_weights=FILE). The VGG16 trunk is a separate file (vgg_weights=FILE)."
    ),
)
_LIN_KEY = re.compile(r"^(?:lin(\d+)\.model\.\d+|(?:lins\.)?(\d+))\.weight$")


def resolve_lin_weights(path: str | Path | None = None) -> Path:
    """Path of the LPIPS v0.1 vgg lin weights: explicit path -> `$STUDIO_CACHE/weights` -> the lpips
    package -> WeightsNotFoundError saying which file to put where."""
    return resolve_weights("lpips-vgg", LPIPS_VGG_LIN_WEIGHTS, path)


def lin_state_dict(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the lpips file's keys (`lin{l}.model.{k}.weight`) or ours (`[lins.]{l}.weight`) to `{l}.weight`."""
    out = {}
    for key, value in raw.items():
        match = _LIN_KEY.match(key)
        if match is None:
            raise KeyError(f"unexpected key {key!r} in LPIPS lin weights (expected lin<l>.model.<k>.weight)")
        out[f"{match.group(1) or match.group(2)}.weight"] = value
    return out


def _unit_channels(x: torch.Tensor) -> torch.Tensor:
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + NORM_EPS)


class LPIPSVGG(nn.Module):
    """LPIPS-VGG distance: images x, y float [N, 3, H, W] in [-1, 1] (H, W >= 16) -> distance [N].

    `trunk` is torchvision's `vgg16().features[:30]` (its state_dict keys minus the `features.` prefix);
    `lins` are five bias-free 1x1 convs [1, C_l, 1, 1]. The module is frozen and in eval mode.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        # Built on the meta device: allocating and initialising VGG16's unused 120M-parameter classifier
        # would take seconds.
        with torch.device("meta"):
            trunk = torchvision.models.vgg16(weights=None, init_weights=False).features
        self.trunk = trunk[: VGG_TAPS[-1] + 1].to_empty(device="cpu")
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in VGG_CHANNELS)
        self.reset_parameters(seed)
        self.weights_id = f"random-seed{seed}"
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """Seeded random weights: trunk convs as torchvision initialises VGG (Kaiming normal, fan_out,
        zero bias), then lin weights U[0, 1) (non-negative, as trained LPIPS weights are), all drawn from
        one torch.Generator seeded with `seed`."""
        gen = torch.Generator().manual_seed(seed)
        for layer in self.trunk:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                nn.init.zeros_(layer.bias)
        for lin in self.lins:
            nn.init.uniform_(lin.weight, 0.0, 1.0, generator=gen)

    def load_vgg16(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load torchvision VGG16 weights (a full `vgg16().state_dict()`; classifier keys are ignored)."""
        trunk = {k.removeprefix("features."): v for k, v in state_dict.items() if k.startswith("features.")}
        self.trunk.load_state_dict(trunk)

    def load_lins(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load lin weights keyed as in the lpips file or as `[lins.]<l>.weight` (all five required)."""
        self.lins.load_state_dict(lin_state_dict(state_dict))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Channel-normalised relu1_2 .. relu5_3 maps of x [N, 3, H, W] in [-1, 1]."""
        h = (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)
        feats = []
        for index, layer in enumerate(self.trunk):
            h = layer(h)
            if index in VGG_TAPS:
                feats.append(_unit_channels(h))
        return feats

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"LPIPS needs two [N, 3, H, W] image batches of equal shape; got {list(x.shape)} "
                f"and {list(y.shape)}"
            )
        feats = self.features(torch.cat([x, y]))
        n = x.shape[0]
        total = x.new_zeros(n)
        for f, lin in zip(feats, self.lins, strict=True):
            total = total + lin((f[:n] - f[n:]).square()).mean(dim=(1, 2, 3))
        return total


def lpips_vgg(
    vgg_weights: str | None = None, lin_weights: str | None = None, seed: int | None = None
) -> LPIPSVGG:
    """The LPIPS-VGG distance with loaded weights, frozen, in eval mode, on the CPU in float32.

    seed: seeded random weights instead (LPIPSVGG.reset_parameters); no file is read (offline tests).
    Otherwise the lin weights are resolved first (resolve_lin_weights), then the VGG16 trunk
    (vgg16-397923af.pth via resolve_weights); a missing file raises WeightsNotFoundError.
    """
    if seed is not None:
        return LPIPSVGG(seed)
    lin_path = resolve_lin_weights(lin_weights)
    vgg_path = resolve_weights("vgg16", VGG16_WEIGHTS, vgg_weights)
    model = LPIPSVGG()
    model.load_vgg16(torch.load(str(vgg_path), map_location="cpu", weights_only=True))
    model.load_lins(torch.load(str(lin_path), map_location="cpu", weights_only=True))
    model.weights_id = f"vgg16:{file_sha256(vgg_path)[:16]}+lin:{file_sha256(lin_path)[:16]}"
    return model
