"""studio-generate: write PNG samples of a trained generator (G_ema of a studio checkpoint).

    studio-generate ckpt=PATH out=DIR num=N [truncation=1.0] [seed=0] [batch=32] [device=auto]

Image i is generated from the latent drawn with seed `seed + i`, so a given (ckpt, seed, i) always gives
the same image, whatever `num` and `batch` are.
"""

import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from studio.data.image_io import save_png
from studio.features.resize import quantize_to_uint8
from studio.io.checkpoint import load_generator
from studio.sampling import sample_batches

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


@torch.no_grad()
def generate(G: torch.nn.Module, out: Path, num: int, seed: int, truncation: float, batch: int) -> None:
    """Write out/seed<seed + i>.png for i < num (studio.sampling: latent and class from seed + i)."""
    out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=num, unit="img") as bar:
        for seeds, img in sample_batches(G, num, seed=seed, batch=batch, truncation_psi=truncation):
            img = quantize_to_uint8(img).permute(0, 2, 3, 1).cpu().numpy()
            for s, array in zip(seeds, img, strict=True):
                save_png(array, out / f"seed{s:08d}.png")
            bar.update(len(seeds))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    device = args["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        G = load_generator(args["ckpt"], torch.device(device))
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        # A missing, foreign or damaged checkpoint: one line, as for argument errors (exit status 2).
        print(f"studio-generate: error: {' '.join(str(err).split())}", file=sys.stderr)
        raise SystemExit(2) from None
    generate(G, Path(args["out"]), args["num"], args["seed"], args["truncation"], args["batch"])


if __name__ == "__main__":
    main()
