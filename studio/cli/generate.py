"""studio-generate: write PNG samples of a trained generator (G_ema of a studio checkpoint).

    studio-generate ckpt=PATH out=DIR num=N [truncation=1.0] [seed=0] [batch=32] [device=auto]
                    [translate=[X,Y]] [rotate=DEGREES]

Image i is generated from the latent drawn with seed `seed + i`, so a given (ckpt, seed, i) always gives
the same image, whatever `num` and `batch` are. translate (image widths; x right, y down) and rotate
(degrees, counter-clockwise) move the content of a StyleGAN3 generator's images through its input
transform (models.stylegan3.Generator.set_motion).
"""

import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from studio.data.image_io import save_png
from studio.features.resize import quantize_to_uint8
from studio.io.checkpoint import load_generator
from studio.sampling import sample_batches

USAGE = (
    "usage: studio-generate ckpt=PATH out=DIR num=N [truncation=1.0] [seed=0] [batch=32] [device=auto] "
    "[translate=[X,Y]] [rotate=DEGREES]"
)
DEFAULTS = {
    "ckpt": None,
    "out": None,
    "num": None,
    "truncation": 1.0,
    "seed": 0,
    "batch": 32,
    "device": "auto",
    "translate": None,
    "rotate": None,
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
    try:
        args["num"], args["seed"], args["batch"] = int(args["num"]), int(args["seed"]), int(args["batch"])
        args["truncation"] = float(args["truncation"])
        if args["rotate"] is not None:
            args["rotate"] = float(args["rotate"])
        if args["translate"] is not None:
            parts = args["translate"].strip("[]() ").split(",")
            if len(parts) != 2:
                raise ValueError(f"translate must be [X,Y] in image widths, got {args['translate']!r}")
            args["translate"] = (float(parts[0]), float(parts[1]))
    except ValueError as err:
        raise SystemExit(f"studio-generate: {err}\n{USAGE}") from None
    return args


def apply_motion(G: torch.nn.Module, translate: tuple[float, float] | None, rotate: float | None) -> None:
    """Set a StyleGAN3 generator's input transform; refuse generators without one."""
    if translate is None and rotate is None:
        return
    if not hasattr(G, "set_motion"):
        raise SystemExit(
            f"studio-generate: translate= and rotate= need a generator with an input transform "
            f"(StyleGAN3); this checkpoint's generator is {type(G).__module__}.{type(G).__name__}"
        )
    G.set_motion(translate or (0.0, 0.0), rotate or 0.0)


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
    argv = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help", "help") for arg in argv):
        print(__doc__.strip())
        return
    args = parse_args(argv)
    device = args["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        G = load_generator(args["ckpt"], torch.device(device))
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        # A missing, foreign or damaged checkpoint: one line, as for argument errors (exit status 2).
        print(f"studio-generate: error: {' '.join(str(err).split())}", file=sys.stderr)
        raise SystemExit(2) from None
    apply_motion(G, args["translate"], args["rotate"])
    generate(G, Path(args["out"]), args["num"], args["seed"], args["truncation"], args["batch"])


if __name__ == "__main__":
    main()
