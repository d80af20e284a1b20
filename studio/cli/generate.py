"""studio-generate: write PNG samples of a trained generator (G_ema of a studio checkpoint).

    studio-generate ckpt=PATH out=DIR num=N [truncation=1.0] [seed=0] [batch=32] [device=auto]

Image i is generated from the latent drawn with seed `seed + i`, so a given (ckpt, seed, i) always gives
the same image, whatever `num` and `batch` are.
"""

import sys
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from tqdm.auto import tqdm

from studio.training.checkpoint import load_checkpoint

USAGE = "usage: studio-generate ckpt=PATH out=DIR num=N [truncation=1.0] [seed=0] [batch=32] [device=auto]"
DEFAULTS = {
    "ckpt": None,
    "out": None,
    "num": None,
    "truncation": 1.0,
    "seed": 0,
    "batch": 32,
    "device": "auto",
}


def parse_args(argv: list[str]) -> dict:
    """key=value arguments -> settings (ckpt, out and num required)."""
    args = dict(DEFAULTS)
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in DEFAULTS:
            raise SystemExit(f"studio-generate: unknown argument {item!r}\n{USAGE}")
        args[key] = value
    missing = [k for k in ("ckpt", "out", "num") if args[k] is None]
    if missing:
        raise SystemExit(f"studio-generate: missing {', '.join(missing)}\n{USAGE}")
    args["num"], args["seed"], args["batch"] = int(args["num"]), int(args["seed"]), int(args["batch"])
    args["truncation"] = float(args["truncation"])
    return args


def load_generator(path: str, device: torch.device) -> torch.nn.Module:
    """G_ema from a studio training checkpoint (weights_only load), in eval mode on `device`."""
    state = load_checkpoint(path)
    config = state["generator"]
    if not str(config.get("_target_", "")).startswith("models."):
        raise ValueError(f"{path}: generator _target_ {config.get('_target_')!r} is not a studio model.")
    G = instantiate(OmegaConf.create(config))
    G.load_state_dict(state["G_ema"])
    return G.eval().requires_grad_(False).to(device)


def latents(G: torch.nn.Module, seeds: range) -> torch.Tensor:
    """z [len(seeds), z_dim], row i drawn from torch.Generator seeded with seeds[i] (device-independent)."""
    return torch.stack([torch.randn(G.z_dim, generator=torch.Generator().manual_seed(s)) for s in seeds])


@torch.no_grad()
def generate(G: torch.nn.Module, out: Path, num: int, seed: int, truncation: float, batch: int) -> None:
    """Write out/seed<seed + i>.png for i < num; class-conditional models get class (seed + i) % c_dim."""
    out.mkdir(parents=True, exist_ok=True)
    device = next(G.parameters()).device
    with tqdm(total=num, unit="img") as bar:
        for start in range(0, num, batch):
            seeds = range(seed + start, seed + min(start + batch, num))
            z = latents(G, seeds).to(device)
            c = None
            if G.c_dim > 0:
                c = (
                    torch.nn.functional.one_hot(torch.tensor(list(seeds)) % G.c_dim, G.c_dim)
                    .float()
                    .to(device)
                )
            img = G(z, c, truncation_psi=truncation, noise_mode="const")
            img = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            for s, array in zip(seeds, img, strict=True):
                Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(
                    out / f"seed{s:08d}.png"
                )
            bar.update(len(seeds))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    device = args["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    G = load_generator(args["ckpt"], torch.device(device))
    generate(G, Path(args["out"]), args["num"], args["seed"], args["truncation"], args["batch"])


if __name__ == "__main__":
    main()
