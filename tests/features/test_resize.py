"""TF1 bilinear resize and uint8 quantisation vs torch-fidelity / NVlabs conventions."""

import pytest
import torch
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from studio.features import quantize_to_uint8, resize_bilinear_tf1


@pytest.mark.parametrize(
    "in_size, out_size", [((32, 32), (299, 299)), ((17, 40), (299, 299)), ((512, 300), (299, 64))]
)
def test_resize_matches_torch_fidelity(in_size, out_size):
    generator = torch.Generator().manual_seed(sum(in_size))
    images = torch.randint(0, 256, (2, 3, *in_size), generator=generator).float()
    ours = resize_bilinear_tf1(images, out_size)
    reference = interpolate_bilinear_2d_like_tensorflow1x(images, size=out_size, align_corners=False)
    assert ours.shape == (2, 3, *out_size)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_resize_is_not_pytorch_half_pixel_bilinear():
    # TF1 samples at i * in/out without the half-pixel offset: a guard against silently using F.interpolate.
    images = torch.arange(16.0).view(1, 1, 4, 4)
    ours = resize_bilinear_tf1(images, (8, 8))
    assert ours[0, 0, 0, :4].tolist() == [0.0, 0.5, 1.0, 1.5]
    assert ours[0, 0, 0, -1].item() == 3.0  # clamped at the border


def test_quantize_matches_nvlabs_rounding():
    # -1 + 3/255 and -1 + 5/255 land exactly on half-steps in float32
    x = torch.tensor([-1.5, -1.0, -0.999, -1 + 3 / 255, -1 + 5 / 255, 0.0, 0.5, 0.99, 1.0, 2.0])
    expected = (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)  # the NVlabs expression
    assert quantize_to_uint8(x).tolist() == expected.tolist()
    assert quantize_to_uint8(torch.tensor([0.0, 1.0]), value_range=(0.0, 1.0)).tolist() == [0, 255]


def test_resize_rejects_integer_input():
    with pytest.raises(ValueError, match="floating-point"):
        resize_bilinear_tf1(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), (8, 8))
