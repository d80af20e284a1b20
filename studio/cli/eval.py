"""`studio-eval`: metrics between a real and a fake image set (folder, zip or .npz of features).

Arguments are Hydra-style key=value overrides, e.g.
    studio-eval real=data/ffhq.zip fake=samples/ metrics=[fid,kid,pr] backbone=inception out=results.json
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from studio.features import WeightsNotFoundError, list_backbones
from studio.metrics.compute import METRIC_GROUPS
from studio.metrics.evaluate import evaluate

DEFAULTS = {
    "real": None,
    "fake": None,
    "ckpt": None,
    "metrics": None,
    "backbone": "inception",
    "weights": None,
    "seed": 0,
    "num_real": None,
    "num_gen": None,
    "batch": 64,
    "device": "auto",
    "workers": 0,
    "cache": True,
    "progress": True,
    "out": "results.json",
    "options": {},
}

USAGE = f"""usage: studio-eval real=PATH fake=PATH [key=value ...]

Compare a real and a generated image set. PATH is an image folder (searched recursively), a .zip of
PNG/JPEG images, or a .npz of precomputed features with arrays `pool` [N, D] (embedding) and
optionally `logits` [N, C] (classifier logits, for Inception Score).

keys (Hydra override syntax):
  real=PATH            reference set; its features are cached in $STUDIO_CACHE/features
  fake=PATH            generated set
  ckpt=PATH            generating from a training checkpoint is not supported yet: run
                       studio-generate and pass the folder as fake=PATH
  metrics=[a,b,...]    among: {", ".join(METRIC_GROUPS)}
                       (default: fid,kid,pr,dc, plus is when the fake features have logits)
  backbone=NAME        among: {", ".join(list_backbones())} (default inception)
  weights=FILE         backbone weights file (default: $STUDIO_CACHE/weights, then installed packages)
  seed=S               initialisation seed of random_* backbones (default 0)
  num_real=N num_gen=N use only the first N real / fake images or feature rows (default: all)
  batch=64 device=auto workers=0 cache=true progress=true
  options.FN.KEY=V     keyword of a functional metric, e.g. options.kid.subset_size=100,
                       options.precision_recall.k=5 (the JSON lists every value used)
  out=FILE             JSON with results and protocol (default results.json; out=null to skip)
"""


def parse_args(argv: list[str]) -> DictConfig:
    """key=value overrides on top of DEFAULTS; unknown keys are an error (options.* is free-form)."""
    bad = [arg for arg in argv if "=" not in arg]
    if bad:
        raise ValueError(f"arguments must be key=value, got {bad}; run studio-eval --help")
    config = OmegaConf.create(DEFAULTS)
    OmegaConf.set_struct(config, True)
    OmegaConf.set_struct(config.options, False)
    try:
        config.merge_with_dotlist([arg.removeprefix("+") for arg in argv])
    except OmegaConfBaseException as error:
        raise ValueError(
            f"{error.msg if hasattr(error, 'msg') else error}; valid keys: {', '.join(DEFAULTS)}"
        ) from error
    if config.ckpt is not None:
        raise ValueError(
            "ckpt=PATH is not supported yet: generate images with studio-generate and pass fake=DIR"
        )
    if isinstance(config.metrics, str):
        config.metrics = [name.strip() for name in config.metrics.split(",")]
    return config


def format_table(results: dict[str, float]) -> str:
    width = max(len(name) for name in results)
    return "\n".join(f"{name:<{width}}  {value:.6g}" for name, value in results.items())


def run(config: DictConfig) -> dict:
    metrics = None if config.metrics is None else list(config.metrics)
    results, protocol = evaluate(
        real=config.real,
        fake=config.fake,
        metrics=metrics,
        backbone=config.backbone,
        weights=config.weights,
        seed=config.seed,
        num_real=config.num_real,
        num_gen=config.num_gen,
        batch=config.batch,
        device=config.device,
        workers=config.workers,
        options=OmegaConf.to_container(config.options),
        cache=config.cache,
        progress=config.progress,
    )
    report = {"results": results, "protocol": protocol}
    print(format_table(results))
    if config.out is not None:
        out = Path(config.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help", "help") for arg in argv):
        print(USAGE)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(parse_args(argv))
    except (ValueError, FileNotFoundError, WeightsNotFoundError) as error:
        print(f"studio-eval: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
