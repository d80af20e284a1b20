"""Training checkpoints: complete state as tensors and primitive containers, written atomically.

A checkpoint is a dict loadable with torch.load(weights_only=True):
  format        CHECKPOINT_FORMAT
  G, D, G_ema   state_dicts; loss: the loss module's state_dict (pl_mean)
  opt_G, opt_D  optimizer state_dicts
  progress      {"cur_nimg", "step", "batch", "world_size"}  (images shown, optimizer steps)
  rng           one entry per rank: {"torch", "cuda", "numpy", "python"} generator states
  generator     the resolved `model.generator` config (for studio-generate); config: the run's YAML
  run           {"seed", "dataset_length", "dataset_fingerprint"}: checked on resume (a change is warned)
"""

import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_FORMAT = "studio.stylegan2/1"


def capture_rng_state() -> dict[str, Any]:
    """Global RNG states of torch (CPU and every CUDA device), numpy and python, as tensors/primitives."""
    # The legacy global numpy RNG is what user code and libraries draw from, so it is what must be saved.
    kind, keys, pos, has_gauss, cached_gauss = np.random.get_state()  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gauss": float(cached_gauss),
        },
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of capture_rng_state."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gauss"])
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_atomic(state: dict[str, Any], path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`, so `path`
    always holds either the old or the new complete checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # also Ctrl-C: never leave a partial temporary file behind
        tmp.unlink(missing_ok=True)
        raise


def link_atomic(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make `path` a hard link to (or, where links are unsupported, a copy of) `source`, atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a studio training checkpoint on CPU (weights_only) and check its format."""
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
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"'{path}' is not a studio training checkpoint "
            f"(format {found!r}, expected {CHECKPOINT_FORMAT!r})."
        )
    return state


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """run_dir/checkpoints/last.ckpt if it exists (the checkpoint `resume=auto` continues from)."""
    last = Path(run_dir) / "checkpoints" / "last.ckpt"
    return last if last.is_file() else None
