"""StyleGAN3 G against numbers from NVlabs' reference network (github.com/NVlabs/stylegan3 at commit
8fb5177, CPU, float32), produced by benchmarks/compare_nvlabs_stylegan3.py's weight mapping: both
networks hold the weights `fill_weights` sets (NVlabs' names renamed, no value changed) and draw the
same z under the same motion. The stored values are rows of the image: row 0 crosses the border, where
the layers' full convolutions and margins matter; row 16 the middle. Config R's radial down filters
shape every pixel.
"""

import pytest
import torch

from models.stylegan3 import CONFIGS, Generator

MAPPING_LR_MULTIPLIER = 0.01
MOTION = {"translate": (0.1, -0.05), "rotate": 20.0}
# NVlabs' and studio's images agree to 1.4e-6 (T) and 1.0e-6 (R) at this scale (max |pixel| 0.8).
TOLERANCE = 2e-5


def fill_weights(G: Generator, seed: int) -> None:
    """Seeded, non-trivial values for every parameter and buffer (state-dict order): weights N(0, 1) as
    stored (mapping weights N(0, 1) / lr_multiplier, as initialised), biases and affine biases moved by
    0.2 N(0, 1), magnitude EMAs exp(0.3 N(0, 1)), w_avg N(0, 1), Fourier frequencies in the disc of
    radius 2 and phases U[-0.5, 0.5)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in G.state_dict().items():
            if name.endswith("transform"):
                continue
            noise = torch.randn(tensor.shape, generator=gen)
            if name.endswith("magnitude_ema"):
                tensor.copy_((0.3 * noise).exp())
            elif name.endswith("w_avg"):
                tensor.copy_(noise)
            elif name.endswith("freqs"):
                radius = 2 * torch.rand(tensor.shape[0], generator=gen).sqrt()
                tensor.copy_(noise / noise.norm(dim=1, keepdim=True) * radius[:, None])
            elif name.endswith("phases"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) - 0.5)
            elif name.endswith("bias"):
                tensor.add_(0.2 * noise)
            elif name.startswith("mapping.") and name.endswith("weight"):
                tensor.copy_(noise / MAPPING_LR_MULTIPLIER)
            else:
                tensor.copy_(noise)


# NVlabs' image rows, channel 0: {config: {row: [32 values]}} (truncation 0.7, MOTION, z seed 1).
# fmt: off
NVLABS_ROWS = {
    "t": {
        0: [-0.0193999, -0.0210553, -0.0235946, -0.0269829, -0.0313590, -0.0346183, -0.0384472, -0.0440715,
            -0.0501297, -0.0553315, -0.0584339, -0.0580155, -0.0551308, -0.0524210, -0.0471299, -0.0363027,
            -0.0204210, -0.0019242, 0.0151414, 0.0285763, 0.0377048, 0.0465672, 0.0558388, 0.0632818,
            0.0697745, 0.0757448, 0.0789056, 0.0798947, 0.0800154, 0.0791250, 0.0750334, 0.0670611],
        16: [-0.0718528, -0.0705412, -0.0654452, -0.0607429, -0.0531229, -0.0433361, -0.0323685, -0.0206705,
             -0.0090929, 0.0008314, 0.0075641, 0.0097764, 0.0072429, 0.0019581, -0.0053252, -0.0130934,
             -0.0189182, -0.0177687, -0.0163539, -0.0177529, -0.0208288, -0.0259362, -0.0325762, -0.0416699,
             -0.0528116, -0.0644557, -0.0753732, -0.0847053, -0.0902692, -0.0933237, -0.0954688, -0.0942045],
    },
    "r": {
        0: [0.3327303, 0.3439227, 0.3520910, 0.3576131, 0.3646519, 0.3725359, 0.3790927, 0.3848197,
            0.3893195, 0.3925730, 0.3937353, 0.3921318, 0.3907157, 0.3908945, 0.3912567, 0.3911281,
            0.3902208, 0.3896459, 0.3895191, 0.3893542, 0.3891906, 0.3889225, 0.3892764, 0.3902838,
            0.3919627, 0.3947563, 0.3990930, 0.4049642, 0.4103682, 0.4150848, 0.4195395, 0.4237082],
        16: [0.4373159, 0.4338146, 0.4294490, 0.4242308, 0.4195796, 0.4161110, 0.4142975, 0.4134813,
             0.4126698, 0.4104593, 0.4058119, 0.3997895, 0.3935120, 0.3892054, 0.3873380, 0.3867744,
             0.3872201, 0.3885186, 0.3893249, 0.3893513, 0.3892808, 0.3881670, 0.3853622, 0.3804544,
             0.3767177, 0.3748789, 0.3752933, 0.3789815, 0.3826958, 0.3822945, 0.3809759, 0.3800712],
    },
}
# fmt: on


@pytest.mark.parametrize("config", ["t", "r"])
def test_images_equal_nvlabs_reference(config: str) -> None:
    """The CPU yardstick's sizes (channel base 4096, max 128; R doubles both, as NVlabs' train.py)."""
    scale = 2 if config == "r" else 1
    synthesis = dict(CONFIGS[config], channel_base=4096 * scale, channel_max=128 * scale)
    G = Generator(
        z_dim=512,
        c_dim=0,
        w_dim=512,
        img_resolution=32,
        mapping_kwargs={"num_layers": 2},
        synthesis_kwargs=synthesis,
    ).eval()
    fill_weights(G, seed=0)
    G.set_motion(**MOTION)
    z = torch.randn([1, 512], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        img = G(z, None, truncation_psi=0.7)
    for row, expected in NVLABS_ROWS[config].items():
        torch.testing.assert_close(img[0, 0, row], torch.tensor(expected), rtol=0, atol=TOLERANCE)
