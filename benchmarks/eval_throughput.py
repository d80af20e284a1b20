"""A whole checkpoint evaluation, timed: generate, extract and compute every feature metric, one run.

    python benchmarks/eval_throughput.py                              # GPU: 50k StyleGAN2 256² (goal <= 40 s)
    python benchmarks/eval_throughput.py --num-gen 128 --resolution 32 --channel-base 1024 --channel-max 64
                                                                      # CPU smoke run of the same path

It writes a checkpoint holding a seeded random StyleGAN2 G (NVlabs' 256² single-GPU size: channel base
16384, channel max 512, mapping depth 2, fp16 in the top 4 resolutions on CUDA) and a .npz of seeded
Gaussian real features (the cached real side of a training run; k-NN work does not depend on what the
features are), then times `studio.metrics.evaluate` with `studio-eval`'s defaults (batch and workers
auto) and the FID Inception architecture (seeded weights: the real weights run the same arithmetic).
Printed beside it: the goal and Inception-v3 fp32 extraction alone, 20.4 s per 50k images on one H100
(docs/benchmarks.md), and the seconds of each stage (`protocol["timings_s"]`: the fake side's generation
and extraction, each metric group).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from studio.io.checkpoint import CHECKPOINT_FORMAT, build_network, save_checkpoint
from studio.metrics.evaluate import evaluate

FEATURE_METRICS = ["fid", "kid", "is", "pr", "dc", "rarity", "prd", "abauth"]
GOAL_SECONDS_50K = 40.0
INCEPTION_ALONE_SECONDS_50K = 20.4


def write_checkpoint(path: Path, args: argparse.Namespace) -> None:
    """A checkpoint of a seeded random StyleGAN2 generator, in the format training writes."""
    spec = {
        "name": "stylegan2-generator",
        "version": 1,
        "kwargs": {
            "z_dim": 512,
            "c_dim": 0,
            "w_dim": 512,
            "img_resolution": args.resolution,
            "img_channels": 3,
            "mapping_kwargs": {"num_layers": 2},
            "synthesis_kwargs": {
                "channel_base": args.channel_base,
                "channel_max": args.channel_max,
                "num_fp16_res": 4,
                "conv_clamp": 256,
            },
        },
    }
    torch.manual_seed(0)
    G = build_network(spec)
    save_checkpoint(
        {"format": CHECKPOINT_FORMAT, "networks": {"generator": spec}, "G_ema": G.state_dict()}, path
    )


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument(
        "--num-gen", type=int, default=50_000, help="generated images (and real feature rows)"
    )
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--channel-base", type=int, default=16384)
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ckpt, real = Path(folder) / "g.ckpt", Path(folder) / "real.npz"
        write_checkpoint(ckpt, args)
        rows = np.random.default_rng(0).standard_normal((args.num_gen, 2048), dtype=np.float32)
        np.savez(real, pool=rows)
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"load average {os.getloadavg()[0]:.2f}; {args.num_gen} images of {args.resolution}², "
            f"metrics {FEATURE_METRICS}"
        )
        start = time.perf_counter()
        _, protocol, _ = evaluate(
            real=real,
            ckpt=ckpt,
            metrics=FEATURE_METRICS,
            backbone="random_inception",
            num_gen=args.num_gen,
            device=args.device,
            progress=False,
        )
        elapsed = time.perf_counter() - start
    scale = 50_000 / args.num_gen
    print(
        f"whole evaluation on {protocol['device']}: {elapsed:.1f} s ({args.num_gen / elapsed:.0f} img/s; "
        f"{elapsed * scale:.1f} s per 50k); goal {GOAL_SECONDS_50K:.0f} s per 50k on one H100, where "
        f"Inception fp32 extraction alone takes {INCEPTION_ALONE_SECONDS_50K} s: ratio to the goal "
        f"{elapsed * scale / GOAL_SECONDS_50K:.2f}"
    )
    stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in protocol["timings_s"].items())
    print(f"stages: {stages}")


if __name__ == "__main__":
    main()
