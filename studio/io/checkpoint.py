"""Training checkpoints: complete state as tensors and primitive containers, written atomically.

A checkpoint is a dict loadable with torch.load(weights_only=True):
  format        CHECKPOINT_FORMAT
  networks      {"generator": spec, "discriminator": spec}, spec = {"name", "version", "kwargs"}: the
                registered network (models.registry) and its constructor arguments, so a network is
                rebuilt from its stable name, not from a Python import path
  G, D, G_ema   state_dicts; loss: the loss module's state_dict (pl_mean)
  opt_G, opt_D  optimizer state_dicts
  progress      {"cur_nimg", "step", "batch", "world_size"}  (images shown, optimizer steps)
  rng           one entry per rank: {"torch", "cuda", "numpy", "python"} generator states
  stats         running sums and counts of the logged losses since the last evaluation tick
  config        the run's resolved YAML
  run           {"seed", "dataset_length", "dataset_fingerprint"}: checked on resume (a change is warned)
"""

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.registry import create_network, network_name
from studio.io.atomic import atomic_write

CHECKPOINT_FORMAT = "studio.checkpoint/2"
# Format 1 stored the generator as a Hydra config ({"_target_": import path, **kwargs}).
_FORMAT_1 = "studio.stylegan2/1"
_FORMAT_1_TARGETS = {"models.stylegan2.Generator": ("stylegan2-generator", 1)}


def network_spec(module: nn.Module, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """{"name", "version", "kwargs"} of a registered network built with constructor arguments `kwargs`."""
    name, version = network_name(module)
    return {"name": name, "version": version, "kwargs": dict(kwargs)}


def build_network(spec: Mapping[str, Any]) -> nn.Module:
    """The network a `network_spec` describes, freshly initialised."""
    return create_network(spec["name"], spec["version"], **spec["kwargs"])


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """torch.save `state` to `path` atomically: `path` always holds the old or the new complete state."""
    with atomic_write(path) as file:
        torch.save(state, file)


def _upgrade_format_1(state: dict[str, Any]) -> dict[str, Any]:
    config = dict(state.pop("generator"))
    target = config.pop("_target_", None)
    if target not in _FORMAT_1_TARGETS:
        raise ValueError(f"generator {target!r} of a format-1 checkpoint is not a studio network.")
    name, version = _FORMAT_1_TARGETS[target]
    state["networks"] = {"generator": {"name": name, "version": version, "kwargs": config}}
    state["format"] = CHECKPOINT_FORMAT
    return state


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a studio training checkpoint on CPU (weights_only, so no pickled code runs) and check its
    format; checkpoints of format 1 are converted."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint '{path}' does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as err:
        # torch's own text suggests weights_only=False, which would run pickled code: not repeated here.
        raise ValueError(
            f"Cannot read checkpoint '{path}' ({type(err).__name__}): the file is truncated, damaged or "
            "not a torch checkpoint; use a checkpoint written by studio-train (e.g. checkpoints/last.ckpt)."
        ) from err
    found = state.get("format") if isinstance(state, dict) else type(state).__name__
    if found == _FORMAT_1:
        return _upgrade_format_1(state)
    if found != CHECKPOINT_FORMAT:
        raise ValueError(
            f"'{path}' is not a studio training checkpoint "
            f"(format {found!r}, expected {CHECKPOINT_FORMAT!r})."
        )
    return state


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """run_dir/checkpoints/last.ckpt if it exists (the checkpoint `resume=auto` continues from)."""
    last = Path(run_dir) / "checkpoints" / "last.ckpt"
    return last if last.is_file() else None


def load_generator(path: str | os.PathLike, device: torch.device) -> nn.Module:
    """G_ema of a studio training checkpoint, in eval mode and without gradients, on `device`."""
    state = load_checkpoint(path)
    try:
        G = build_network(state["networks"]["generator"])
    except KeyError as err:
        raise ValueError(f"{path}: the checkpoint does not describe its generator ({err}).") from None
    G.load_state_dict(state["G_ema"])
    return G.eval().requires_grad_(False).to(device)
