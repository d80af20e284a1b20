"""Memory per image of a training step: the bytes autograd saves for the backward, counted on the CPU.

    python benchmarks/saved_memory.py experiment=stylegan3_r_256 data=shapes data.resolution=256

Runs the forward of each phase the loss uses (G step, path length, D step, R1) of the config's networks
for `--images` images and adds up the distinct storages autograd keeps for the backward: the
activations that `train.batch_gpu` images per pass hold at once on a GPU. On CUDA the fused
filtered_lrelu keeps one byte per up-sampled sample instead of the reference's float tensors, so
StyleGAN3's filtered_lrelu is counted that way (`--reference-ops` counts the reference's). Float32
throughout: on CUDA the `num_fp16_res` layers save float16, less than counted. Not counted: weights,
gradients, optimizer state, and the backward's transient buffers. A count, not a measurement of a GPU:
`benchmarks/train_throughput.py` prints the peak GPU memory of real training.
"""

import argparse
import time
from collections.abc import Callable

import torch
from hydra import compose, initialize_config_dir

import models.stylegan3.layers as stylegan3_layers
from ops.filtered_lrelu import filtered_lrelu_ref
from ops.upfirdn2d import parse_padding
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
    fh, fw = (1, 1) if fu is None else (fu.shape[0], fu.shape[-1])
    size = (x.shape[2] * up + py0 + py1 - fh + 1, x.shape[3] * up + px0 + px1 - fw + 1)
    return _KeepCodes.apply(x, y, torch.empty(*x.shape[:2], *size, dtype=torch.uint8))


def saved_bytes(forward: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct storages autograd saves while `forward()` runs."""
    storages: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr(), storage.nbytes()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward()
    return sum(storages.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1, help="images per pass to count")
    parser.add_argument("--reference-ops", action="store_true", help="count filtered_lrelu's reference")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=stylegan3_t_256")
    args = parser.parse_args()
    if not args.reference_ops:
        stylegan3_layers.filtered_lrelu = filtered_lrelu_saving_codes
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*args.overrides, "trainer.accelerator=cpu"])
    module = build_module(cfg, pretrained=False)
    G, D, loss = module.G, module.D, module.loss
    torch.manual_seed(0)
    z = torch.randn(args.images, G.z_dim)
    c = None if G.c_dim == 0 else torch.zeros(args.images, G.c_dim)
    res = cfg.data.resolution
    real = torch.rand(args.images, G.img_channels, res, res) * 2 - 1
    phases = {"G step": (G, lambda: loss.generator_loss(G, D, z, c))}
    if loss.pl_weight > 0:
        phases["path-length step"] = (G, lambda: loss.path_length_loss(G, z, c))
    phases["D step"] = (D, lambda: loss.discriminator_loss(G, D, z, c, real, c))
    if loss.gamma > 0:
        phases["R1 step"] = (D, lambda: loss.r1_loss(D, real, c))
    ops_counted = "reference filtered_lrelu" if args.reference_ops else "filtered_lrelu as on CUDA"
    print(f"{cfg.model.generator._target_} at {res}², {args.images} image(s) per pass, {ops_counted}:")
    for name, (net, forward) in phases.items():
        G.requires_grad_(net is G)
        D.requires_grad_(net is D)
        start = time.perf_counter()
        mib = saved_bytes(forward) / 2**20 / args.images
        print(f"  {name}: {mib:,.0f} MiB saved per image ({time.perf_counter() - start:.0f} s)", flush=True)
    batch = cfg.train.batch
    print(f"train.batch_gpu={cfg.train.batch_gpu} (null: each device's share of train.batch={batch} at once)")


if __name__ == "__main__":
    main()
