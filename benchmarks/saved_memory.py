"""Memory of a training pass: the bytes autograd saves for the backward, counted on the CPU.

    python benchmarks/saved_memory.py experiment=stylegan3_r_256 data=shapes data.resolution=256

Runs the forward of each phase the loss uses (G step, path length, D step, R1) of the config's networks
at two pass sizes (`--images`, default 2 and 4) and adds up the distinct storages autograd keeps for the
backward; the difference gives the memory per image, the rest is per pass (weights that autograd keeps,
such as D's scaled copies). Both sizes are at least 2 because one image takes another modulated-conv
path (fused, grouped) than training batches do. On CUDA the fused filtered_lrelu keeps one byte per
up-sampled sample instead of the reference's float tensors, so StyleGAN3's filtered_lrelu is counted that
way (`--reference-ops` counts the reference's); the other ops are counted as their CPU reference keeps
them, which may be more than their CUDA kernels. Float32 throughout: on CUDA the `num_fp16_res` layers
keep float16, less than counted. Not counted: the parameters, gradients and optimizer state, and the
backward's transient buffers. A count, not a measurement of a GPU: `benchmarks/train_throughput.py`
prints the peak GPU memory of real training.
"""

import argparse
import time
from collections.abc import Callable

import torch
from hydra import compose, initialize_config_dir

import models.stylegan3.layers as stylegan3_layers
from ops.filtered_lrelu import filtered_lrelu_ref
from ops.upfirdn2d import filter_size, parse_padding
from studio.cli.train import CONFIG_DIR
from studio.training.run import build_module


class _KeepCodes(torch.autograd.Function):
    """Returns y and saves `codes`, as the CUDA filtered_lrelu does (for counting; no backward)."""

    @staticmethod
    def forward(ctx, x, y, codes):
        ctx.save_for_backward(codes)
        return y


def filtered_lrelu_saving_codes(
    x, fu=None, fd=None, b=None, up=1, down=1, padding=0, **kwargs
) -> torch.Tensor:
    """ops.filtered_lrelu's output, with one byte saved per sample of the up-sampled intermediate."""
    with torch.no_grad():
        y = filtered_lrelu_ref(x, fu, fd, b, up, down, padding, **kwargs)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(fu)
    size = (x.shape[2] * up + py0 + py1 - fh + 1, x.shape[3] * up + px0 + px1 - fw + 1)
    return _KeepCodes.apply(x, y, torch.empty(*x.shape[:2], *size, dtype=torch.uint8))


def saved_bytes(forward: Callable[[int], torch.Tensor], images: int) -> int:
    """Bytes of the distinct storages autograd saves while `forward(images)` runs."""
    storages: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr(), storage.nbytes()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward(images)
    return sum(storages.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, nargs=2, default=(2, 4), help="the two pass sizes, >= 2")
    parser.add_argument("--reference-ops", action="store_true", help="count filtered_lrelu's reference")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=stylegan3_t_256")
    args = parser.parse_args()
    small, large = args.images
    if not 2 <= small < large:
        raise SystemExit(f"--images needs two sizes 2 <= a < b, got {small} {large}")
    if not args.reference_ops:
        stylegan3_layers.filtered_lrelu = filtered_lrelu_saving_codes
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*args.overrides, "trainer.accelerator=cpu"])
    module = build_module(cfg, pretrained=False)
    G, D, loss = module.G, module.D, module.loss
    # Path length runs on pass / pl_batch_shrink images: its pass sizes are scaled so that it too sees two.
    shrink = loss.pl_batch_shrink
    torch.manual_seed(0)
    res, most = cfg.data.resolution, large * shrink
    z = torch.randn(most, G.z_dim)
    c = None if G.c_dim == 0 else torch.zeros(most, G.c_dim)
    real = torch.rand(most, G.img_channels, res, res) * 2 - 1

    def part(x: torch.Tensor | None, k: int) -> torch.Tensor | None:
        return None if x is None else x[:k]

    phases = {"G step": (G, 1, lambda k: loss.generator_loss(G, D, z[:k], part(c, k)))}
    if loss.pl_weight > 0:
        phases["path-length step"] = (G, shrink, lambda k: loss.path_length_loss(G, z[:k], part(c, k)))
    phases["D step"] = (
        D,
        1,
        lambda k: loss.discriminator_loss(G, D, z[:k], part(c, k), real[:k], part(c, k)),
    )
    if loss.gamma > 0:
        phases["R1 step"] = (D, 1, lambda k: loss.r1_loss(D, real[:k], part(c, k)))
    pass_size = cfg.train.batch_gpu or cfg.train.batch
    ops_counted = "reference filtered_lrelu" if args.reference_ops else "filtered_lrelu as on CUDA"
    print(f"{cfg.model.generator._target_} at {res}², {ops_counted}, counted at {small} and {large} images:")
    for name, (net, scale, forward) in phases.items():
        G.requires_grad_(net is G)
        D.requires_grad_(net is D)
        start = time.perf_counter()
        low, high = (saved_bytes(forward, k * scale) for k in (small, large))
        per_image = (high - low) / ((large - small) * scale)  # per image of the pass
        per_pass = low - small * scale * per_image
        at_pass_size = (per_pass + pass_size * per_image) / 2**30
        print(
            f"  {name}: {per_image / 2**20:,.0f} MiB per image + {per_pass / 2**20:,.0f} MiB per pass = "
            f"{at_pass_size:,.1f} GiB at {pass_size} images ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    batch_gpu, batch = cfg.train.batch_gpu, cfg.train.batch
    print(f"{pass_size} images per pass: train.batch_gpu={batch_gpu}, else train.batch={batch} (one device)")


if __name__ == "__main__":
    main()
