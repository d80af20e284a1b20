"""Overrides that shrink the real config tree to a 16x16 StyleGAN2 with a few thousand parameters, which
trains in seconds on a CPU (one step = 4 images). `~experiment` composes the plain config tree, without
the first-run demo's settings. Importable from every test: pytest puts tests/ on sys.path."""

TINY_RUN = [
    "~experiment",
    "data.resolution=16",
    "data.num_workers=0",
    "model.z_dim=8",
    "model.w_dim=8",
    "model.channel_base=128",
    "model.channel_max=8",
    "model.discriminator.mbstd_group_size=2",
    "train.batch=4",
    "eval.grid=2",
    "trainer.accelerator=cpu",
]


def tiny_generator(c_dim: int = 0):
    """A seeded random 16x16 StyleGAN2 generator (z, w 8-d, 8 channels), in eval mode."""
    import torch

    from models.stylegan2 import Generator

    torch.manual_seed(0)
    return Generator(
        z_dim=8,
        c_dim=c_dim,
        w_dim=8,
        img_resolution=16,
        mapping_kwargs={"num_layers": 2},
        synthesis_kwargs={"channel_base": 128, "channel_max": 8},
    ).eval()
