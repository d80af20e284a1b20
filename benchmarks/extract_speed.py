"""Feature-extraction speed: studio's FID Inception beside torchvision's Inception-v3, one run.

    python benchmarks/extract_speed.py                    # a batch of 32^2 images (resized to 299^2), CPU
    python benchmarks/extract_speed.py --size 256 --batch 64
    python benchmarks/extract_speed.py --folder DIGITS    # also extract_features on an image folder
    python benchmarks/extract_speed.py --folder DIGITS --workers 0   # ... decoding in the main process
    python benchmarks/extract_speed.py --device cuda

The batch is studio's default for the device (16 on CPU, 256 on CUDA) unless --batch gives one.

Ours: `create_backbone("random_inception")` (the FID Inception architecture, seeded weights; the real
weights run the same arithmetic) on a uint8 batch, preprocessing (TF1 bilinear resize, normalisation)
included. Reference: torchvision's `inception_v3` (same architecture family, random weights) on the
same already-preprocessed batch, in NCHW and channels_last; the ratio is against the faster of the two.
Each time is the best of --repeats rounds (after one warm-up) that run the candidates interleaved.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from collections.abc import Callable

import torch
import torchvision

from studio.data import ImageFolderDataset
from studio.features import create_backbone, extract_features
from studio.features.extract import default_batch, default_workers


def best_times(candidates: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict:
    """Best time of each candidate over `repeats` rounds that run every candidate once, interleaved, so a
    machine that speeds up or slows down during the run does not favour one of them."""
    for fn in candidates.values():
        fn()
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--batch", type=int, help="images per forward (default: studio's for the device)")
    parser.add_argument("--size", type=int, default=32, help="input resolution (resized to 299)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--folder", help="also time extract_features on this image folder (decode included)")
    parser.add_argument(
        "--workers", default="auto", help="DataLoader workers for --folder (auto: as studio-eval)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    args.batch = args.batch or default_batch(device)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, batch {args.batch} "
        f"of {args.size}^2, load average {os.getloadavg()[0]:.2f}"
    )
    images = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8, device=device)
    ours = create_backbone("random_inception", device=device)
    reference = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    reference = reference.eval().to(device)
    with torch.no_grad():
        preprocessed = ours.preprocess(images)
        channels_last = preprocessed.contiguous(memory_format=torch.channels_last)
        reference_cl = copy.deepcopy(reference).to(memory_format=torch.channels_last)
        times = best_times(
            {
                "preprocessing": lambda: ours.preprocess(images),
                "ours": lambda: ours(images),
                "nchw": lambda: reference(preprocessed),
                "cl": lambda: reference_cl(channels_last),
            },
            args.repeats,
            device,
        )
    rate = {name: args.batch / t for name, t in times.items()}
    print(
        f"ours (preprocessing {times['preprocessing'] * 1e3:.0f} ms included): {rate['ours']:.1f} img/s; "
        f"torchvision inception_v3 on the preprocessed batch: NCHW {rate['nchw']:.1f} img/s, channels_last "
        f"{rate['cl']:.1f} img/s; ratio vs the faster {rate['ours'] / max(rate['nchw'], rate['cl']):.2f}x"
    )
    if args.folder:
        start = time.perf_counter()
        source = ImageFolderDataset(args.folder)
        workers = default_workers(device) if args.workers == "auto" else int(args.workers)
        batch = args.batch
        features = extract_features(source, ours, batch, device, workers, progress=False)
        elapsed = time.perf_counter() - start
        count = features["pool"].shape[0]
        print(
            f"extract_features on {args.folder} (batch {batch}, {workers} workers): "
            f"{count} images in {elapsed:.1f} s, {count / elapsed:.1f} img/s"
        )


if __name__ == "__main__":
    main()
