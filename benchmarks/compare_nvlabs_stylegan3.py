"""Compare studio's StyleGAN3 generator and equivariance metrics with NVlabs' reference, numerically.

    python benchmarks/compare_nvlabs_stylegan3.py --nvlabs /path/to/stylegan3             # T and R, 32²
    python benchmarks/compare_nvlabs_stylegan3.py --nvlabs /path/to/stylegan3 --cfg t --eq-samples 32
    python benchmarks/compare_nvlabs_stylegan3.py --nvlabs /path/to/stylegan3 --resolution 256 --batch 1 \\
        --eq-samples 0 --no-grad                                                         # slow on CPU

NVlabs' code (github.com/NVlabs/stylegan3, checked against commit
8fb5177d77556d19bf3ccfa03621aa4cbdf29dc9) is under a non-commercial licence and is no part of studio:
supply your own checkout with --nvlabs. This script only imports it (training.networks_stylegan3,
metrics.equivariance, metrics.metric_utils) and compares outputs. On the CPU NVlabs' ops take their
pure-PyTorch reference paths; nothing is compiled.

Per config (T, R) it builds NVlabs' Generator and studio's models.stylegan3.Generator at the same
settings in float32 on the CPU: z = w = 512, mapping depth 2, and at 32² the CPU yardstick (channel base
4096, max 128; experiment=stylegan3_t_cpu32), otherwise NVlabs' train.py defaults (32768, 512); config
R doubles both, as NVlabs' train.py and CONFIGS["r"] do. NVlabs' weights get a seeded random
perturbation (biases, affine weights, magnitude EMAs, w_avg, so that a wrong mapping cannot pass by
accident) and are loaded into studio's module strictly (`studio_key`). It prints the largest absolute
and relative (to max |NVlabs|) differences of
  - the fixed quantities: per-layer channels, sizes, sampling rates, cutoffs, transition half-widths,
    resampling factors and padding (schedule.synthesis_schedule), the up/down filters of every layer;
  - the mapping output ws, with and without truncation;
  - the output of every synthesis layer (forward hooks) and the images, under a non-identity input
    transform (studio: G.set_motion; NVlabs: G.synthesis.input.transform set to the inverse motion);
  - the gradient of sum(img * r) (r fixed, random) with respect to every parameter.
Then EQ-T, EQ-T_frac and EQ-R of the same generator by NVlabs' compute_equivariance_metrics and studio's
`equivariance`, and, on common draws (studio's seeds, z and transforms), the same residuals under each
side's resampling operators, with and without NVlabs' pseudo-rotation, aggregated per sample (studio)
and pooled over pixels (NVlabs), so that the protocol differences can be told apart: for this generator
and for ideal, exactly equivariant sinusoid images (each protocol's floor). Expected (2026-12-01): every
layer and image equal to float32 round-off (relative 3e-6 at 32²), gradients of the order of the
leaky-ReLU floor printed beside them (R: 1.3e-3 against 5e-4); the EQ protocols differ
(docs/metrics.md). One thread by default; the 32² run of both configs takes about 3 minutes on one
core, the 256² one (--batch 1 --eq-samples 0 --no-grad) about 9.
"""

from __future__ import annotations

import argparse
import importlib
import math
import re
import sys
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import NamedTuple

import torch
from torch import nn

from models.stylegan3 import CONFIGS, Generator
from studio.metrics.functional.bandlimited_rotation import pseudo_rotate, rotate_bandlimited
from studio.metrics.functional.equivariance import (
    KINDS,
    draw_samples,
    equivariance,
    psnr_from_errors,
    transformed_synthesis,
)
from studio.metrics.functional.resampling import transform_images

CHECKED_COMMIT = "8fb5177d77556d19bf3ccfa03621aa4cbdf29dc9"
YARDSTICK = (4096, 128)  # channel base and max of the 32² CPU preset (config T)
NVLABS_TRAIN_DEFAULTS = (32768, 512)  # NVlabs' train.py --cbase, --cmax (config T)
# Content motion of the layer comparison: image widths (x right, y down) and degrees.
MOTION = {"translate": (0.1, -0.05), "rotate": 20.0}
TRUNCATION_PSI = 0.7
# Reach (pixels) of a difference in a layer's input border through its conv and 6-tap up/down filters.
LOCAL_BORDER = 6
GRAD_FLOOR_EPS = 1e-6
EQ_BATCH = 4  # NVlabs' metric_main batch for eqt50k_int, eqt50k_frac, eqr50k
# Synthetic images (sinusoid_case): disc radii of the component frequencies and the square band the
# images keep, as fractions of Nyquist.
SINUSOID_RADII = (0.5, 0.9, 0.9 * math.sqrt(2))
SQUARE_BAND = 0.9


class Row(NamedTuple):
    name: str
    ref_max: float  # max |NVlabs|
    abs_diff: float  # max |studio - NVlabs|

    @property
    def rel(self) -> float:
        return self.abs_diff / self.ref_max if self.ref_max else (0.0 if self.abs_diff == 0 else math.inf)

    def format(self) -> str:
        return f"  {self.name:<44s} {self.ref_max:>11.4g} {self.abs_diff:>11.3g} {self.rel:>11.3g}"


def compare(name: str, ours: torch.Tensor | float | None, ref: torch.Tensor | float | None) -> Row:
    """Row of max |ref| and max |ours - ref|; a filter present on one side only differs by inf."""
    if ours is None or ref is None:
        return Row(name, 0.0, 0.0 if ours is None and ref is None else math.inf)
    ours, ref = torch.as_tensor(ours, dtype=torch.float64), torch.as_tensor(ref, dtype=torch.float64)
    if ours.shape != ref.shape:
        return Row(f"{name} {list(ours.shape)} vs {list(ref.shape)}", ref.abs().max().item(), math.inf)
    return Row(name, ref.abs().max().item(), (ours - ref).abs().max().item())


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}\n  {'quantity':<44s} {'max|NVlabs|':>11s} {'max abs':>11s} {'relative':>11s}")
    for row in rows:
        print(row.format())


def import_nvlabs(path: str) -> tuple[ModuleType, ModuleType, ModuleType]:
    """NVlabs' networks_stylegan3, equivariance and metric_utils modules from the checkout at `path`."""
    sys.path.insert(0, path)
    names = ("training.networks_stylegan3", "metrics.equivariance", "metrics.metric_utils")
    networks, equivariance, metric_utils = (importlib.import_module(name) for name in names)
    return networks, equivariance, metric_utils


def build_pair(networks: ModuleType, cfg: str, args: argparse.Namespace) -> tuple[nn.Module, Generator]:
    """(NVlabs G, studio G) at the same settings; NVlabs' weights are seeded and perturbed, studio's
    are NVlabs' loaded strictly."""
    base, cmax = YARDSTICK if args.resolution == 32 else NVLABS_TRAIN_DEFAULTS
    scale = 2 if cfg == "r" else 1
    synthesis = {
        "channel_base": (args.channel_base or base) * scale,
        "channel_max": (args.channel_max or cmax) * scale,
        "conv_kernel": CONFIGS[cfg]["conv_kernel"],
        "use_radial_filters": CONFIGS[cfg]["use_radial_filters"],
    }
    common = {"z_dim": 512, "c_dim": 0, "w_dim": 512, "img_resolution": args.resolution, "img_channels": 3}
    mapping = {"num_layers": args.map_depth}
    torch.manual_seed(args.seed)
    G_nv = networks.Generator(**common, mapping_kwargs=mapping, **synthesis).eval()
    perturb(G_nv, args.seed + 1)
    G = Generator(**common, mapping_kwargs=mapping, synthesis_kwargs=synthesis).eval()
    num_layers = len(G.synthesis.layers)
    state = {
        studio_key(key, num_layers): value
        for key, value in G_nv.state_dict().items()
        if not key.endswith(("up_filter", "down_filter"))
    }
    G.load_state_dict(state, strict=True)
    return G_nv, G


@torch.no_grad()
def perturb(G_nv: nn.Module, seed: int) -> None:
    """Seeded non-trivial weights: biases and affine weights get N(0, 1) noise worth 0.2 (affine weights
    0.5 for the Fourier input's, zero at init) in effective units, magnitude EMAs exp(0.3 N(0, 1)) and
    w_avg N(0, 1), so that no bias, gain or buffer that the mapping handles wrongly stays invisible."""
    gen = torch.Generator().manual_seed(seed)
    modules = dict(G_nv.named_modules())
    for name, tensor in [*G_nv.named_parameters(), *G_nv.named_buffers()]:
        noise = torch.randn(tensor.shape, generator=gen)
        owner, _, leaf = name.rpartition(".")
        gain = getattr(modules[owner], f"{leaf}_gain", 1.0)  # FullyConnectedLayer's weight/bias gains
        if leaf == "magnitude_ema":
            tensor.copy_((0.3 * noise).exp())
        elif leaf == "w_avg":
            tensor.copy_(noise)
        elif leaf == "bias":
            tensor.add_(0.2 * noise / gain)
        elif leaf == "weight" and owner.endswith("affine"):
            scale = 0.5 if owner == "synthesis.input.affine" else 0.2
            tensor.add_(scale * noise / (gain * math.sqrt(tensor.shape[1])))


def studio_key(key: str, num_layers: int) -> str:
    """NVlabs' state-dict key -> studio's. Values need no change: both store the same raw tensors
    (equalised-lr FC weights N(0,1)/lr_multiplier with gain lr_multiplier/sqrt(fan_in) and bias gain
    lr_multiplier applied in forward, [out, in] layout, no transposes; conv weights [out, in, k, k] raw,
    normalised by demodulation; ToRGB's 1/sqrt(in_channels) multiplies the styles on both sides).
      mapping.fc{i}.*                 -> mapping.layers.{i}.*
      synthesis.input.weight          -> synthesis.input.linear.weight (both divide by sqrt(channels))
      synthesis.L{i}_{size}_{ch}.*    -> synthesis.layers.{i}.*, or synthesis.torgb.* for i = num_layers
      ....magnitude_ema               -> ....magnitude.magnitude_ema
    Everything else (mapping.w_avg, the input's affine, freqs, phases, transform) keeps its name. The
    up/down filters are not loaded (studio designs them from the schedule; compared separately)."""
    key = re.sub(r"^mapping\.fc(\d+)\.", r"mapping.layers.\1.", key)
    key = re.sub(r"^synthesis\.input\.weight$", "synthesis.input.linear.weight", key)
    match = re.match(r"^synthesis\.L(\d+)_\d+_\d+\.(.+)$", key)
    if match:
        index, rest = int(match[1]), match[2]
        layer = "torgb" if index == num_layers else f"layers.{index}"
        key = f"synthesis.{layer}.{'magnitude.magnitude_ema' if rest == 'magnitude_ema' else rest}"
    return key


def nvlabs_layers(G_nv: nn.Module) -> list[nn.Module]:
    return [getattr(G_nv.synthesis, name) for name in G_nv.synthesis.layer_names]


def fixed_rows(G_nv: nn.Module, G: Generator) -> list[Row]:
    """Schedule, resampling and filters of every layer, and the Fourier input's buffers."""
    bands, nv_input = G.synthesis.bands, G_nv.synthesis.input
    nv, ours = nvlabs_layers(G_nv), [*G.synthesis.layers, G.synthesis.torgb]
    per_layer = {
        "channels": ([b.channels for b in bands], [layer.out_channels for layer in nv]),
        "sizes": ([b.size for b in bands], [int(layer.out_size[0]) for layer in nv]),
        "sampling rates": ([b.sampling_rate for b in bands], [layer.out_sampling_rate for layer in nv]),
        "cutoffs": ([b.cutoff for b in bands], [layer.out_cutoff for layer in nv]),
        "transition half-widths": ([b.half_width for b in bands], [layer.out_half_width for layer in nv]),
        "critically sampled": (
            [b.critically_sampled for b in bands],
            [layer.is_critically_sampled for layer in nv],
        ),
        # ToRGB: NVlabs' filtered_lrelu with up = down = 1, no filter, no padding is studio's bias_act.
        "up factors": ([layer.up for layer in ours[:-1]], [layer.up_factor for layer in nv[:-1]]),
        "down factors": ([layer.down for layer in ours[:-1]], [layer.down_factor for layer in nv[:-1]]),
        "filtered_lrelu padding": (
            [list(layer.padding) for layer in ours[:-1]],
            [list(layer.padding) for layer in nv[:-1]],
        ),
    }
    rows = [compare(f"schedule: {name}", *pair) for name, pair in per_layer.items()]
    rows += [
        compare("input: channels", bands[0].channels, nv_input.channels),
        compare("input: size", bands[0].size, int(nv_input.size[0])),
        compare("input: sampling rate", bands[0].sampling_rate, nv_input.sampling_rate),
        compare("input: bandwidth (cutoff)", bands[0].cutoff, nv_input.bandwidth),
        compare("input: freqs (loaded)", G.synthesis.input.freqs, nv_input.freqs),
        compare("input: phases (loaded)", G.synthesis.input.phases, nv_input.phases),
    ]
    for i, (layer, ref) in enumerate(zip(ours[:-1], nv[:-1], strict=True)):
        rows.append(compare(f"L{i} up_filter", layer.up_filter, ref.up_filter))
        rows.append(
            compare(
                f"L{i} down_filter" + (" (radial)" if ref.down_radial else ""),
                layer.down_filter,
                ref.down_filter,
            )
        )
    return rows


def set_nvlabs_motion(G_nv: nn.Module, translate: tuple[float, float], rotate: float) -> None:
    """NVlabs' convention (its gen_images.py): the input transform is the inverse of the content motion
    [[cos a, sin a, t_x], [-sin a, cos a, t_y], [0, 0, 1]], a in degrees."""
    a = math.radians(rotate)
    motion = torch.tensor(
        [[math.cos(a), math.sin(a), translate[0]], [-math.sin(a), math.cos(a), translate[1]], [0, 0, 1]],
        dtype=torch.float64,
    )
    G_nv.synthesis.input.transform.copy_(torch.linalg.inv(motion))


def hooked_outputs(modules: dict[str, nn.Module], run: Callable[[], torch.Tensor]) -> dict[str, torch.Tensor]:
    """{name: output} of the named modules during run(), plus "image": run()'s result."""
    outputs: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out.detach()))
        for name, module in modules.items()
    ]
    try:
        outputs["image"] = run().detach()
    finally:
        for handle in handles:
            handle.remove()
    return outputs


@torch.no_grad()
def forward_rows(G_nv: nn.Module, G: Generator, batch: int, seed: int) -> list[Row]:
    """Mapping (psi 1 and TRUNCATION_PSI), then every synthesis layer and the image under MOTION, from
    NVlabs' ws; the end-to-end images with and without the motion."""
    z = torch.randn([batch, 512], generator=torch.Generator().manual_seed(seed))
    rows = []
    for psi in (1.0, TRUNCATION_PSI):
        rows.append(compare(f"mapping ws, psi={psi:g}", G.mapping(z, None, psi), G_nv.mapping(z, None, psi)))
    ws = G_nv.mapping(z, None)
    for moving in (False, True):
        G.set_motion(**MOTION) if moving else G.set_motion()
        set_nvlabs_motion(G_nv, **MOTION) if moving else G_nv.synthesis.input.transform.copy_(torch.eye(3))
        label = "motion" if moving else "identity"
        rows.append(
            compare(f"input transform ({label})", G.synthesis.input.transform, G_nv.synthesis.input.transform)
        )
        rows.append(compare(f"image G(z) ({label})", G(z, None), G_nv(z, None)))
        rows.append(
            compare(
                f"image G(z), psi={TRUNCATION_PSI:g} ({label})",
                G(z, None, TRUNCATION_PSI),
                G_nv(z, None, TRUNCATION_PSI),
            )
        )
    names = ["input", *(f"L{i}" for i in range(len(G.synthesis.layers))), "torgb"]
    ours = hooked_outputs(
        dict(zip(names, [G.synthesis.input, *G.synthesis.layers, G.synthesis.torgb], strict=True)),
        lambda: G.synthesis(ws),
    )
    ref = hooked_outputs(
        dict(zip(names, [G_nv.synthesis.input, *nvlabs_layers(G_nv)], strict=True)),
        lambda: G_nv.synthesis(ws),
    )
    rows += [
        compare(f"synthesis {name} output (motion)", ours[name], ref[name]) for name in [*names, "image"]
    ]
    # Each layer alone, fed NVlabs' input of that layer: where a difference arises.
    layers = [*G.synthesis.layers, G.synthesis.torgb]
    for i, (name, layer) in enumerate(zip(names[1:], layers, strict=True)):
        local = layer(ref[names[i]], ws[:, i + 1])
        b = LOCAL_BORDER
        rows.append(compare(f"{name} alone, NVlabs' input", local, ref[name]))
        rows.append(
            compare(f"{name} alone, without outer {b} px", local[..., b:-b, b:-b], ref[name][..., b:-b, b:-b])
        )
    return rows


def parameter_grads(net: nn.Module, z: torch.Tensor, r: torch.Tensor) -> dict[str, torch.Tensor]:
    """{name: d sum(net(z) * r) / d parameter}."""
    net.zero_grad(set_to_none=True)
    (net(z, None) * r).sum().backward()
    return {name: param.grad.detach().clone() for name, param in net.named_parameters()}


def gradient_rows(G_nv: nn.Module, G: Generator, batch: int, seed: int) -> list[Row]:
    """d sum(G(z) * r) / d parameter under MOTION, the worst parameter of each studio module; then the
    floor: NVlabs against itself at z + GRAD_FLOOR_EPS N(0, 1) (leaky ReLU kinks make the gradient jump
    where a pre-activation changes sign, so round-off-sized input changes move it by more than round-off)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([batch, 512], generator=gen)
    r = torch.randn([batch, 3, G.img_resolution, G.img_resolution], generator=gen)
    ref, ours = parameter_grads(G_nv, z, r), parameter_grads(G, z, r)
    nearby = parameter_grads(G_nv, z + GRAD_FLOOR_EPS * torch.randn(z.shape, generator=gen), r)
    num_layers = len(G.synthesis.layers)
    worst: dict[str, Row] = {}
    for key, value in ref.items():
        name = studio_key(key, num_layers)
        row = compare(f"grad {name}", ours[name], value)
        module = name.rpartition(".")[0].removesuffix(".affine").removesuffix(".linear")
        if module not in worst or row.rel > worst[module].rel:
            worst[module] = row
    floor = max((compare(key, nearby[key], value) for key, value in ref.items()), key=lambda row: row.rel)
    return [*worst.values(), floor._replace(name=f"floor (NVlabs, z + {GRAD_FLOOR_EPS:g} N): {floor.name}")]


class Terms(NamedTuple):
    """Per-sample sums of squared error and counts of valid values (pixels x channels)."""

    se: torch.Tensor
    count: torch.Tensor

    def psnr(self, pooled: bool) -> float:
        """NVlabs: pooled, 10 log10(4 / (sum SE / sum count)); studio: 10 log10(4 / mean of the MSEs)."""
        return psnr_from_errors(torch.stack([self.se, self.count], dim=1), "nvlabs" if pooled else "paper")


def masked_terms(diff: torch.Tensor, mask: torch.Tensor) -> Terms:
    mask = mask.expand_as(diff).double()
    return Terms((diff.double().square() * mask).sum(dim=(1, 2, 3)), mask.sum(dim=(1, 2, 3)))


def per_sample(fn: Callable[[int], tuple[torch.Tensor, torch.Tensor]], n: int) -> Terms:
    """Terms of n samples from fn(i) = (difference [1, C, H, W], mask [1, C or 1, H, W])."""
    terms = [masked_terms(*fn(i)) for i in range(n)]
    return Terms(torch.cat([t.se for t in terms]), torch.cat([t.count for t in terms]))


def protocol_terms(
    nv_eq: ModuleType, orig: torch.Tensor, moved: dict[str, torch.Tensor], transforms: dict[str, torch.Tensor]
) -> dict[str, dict[str, Terms]]:
    """{variant: {kind: Terms}}: the residual moved[kind] - t[orig] of every sample under each side's
    resampling operators. transforms: studio's output -> source maps [n, 3, 3] (draw_samples)."""
    n = orig.shape[0]
    one = [orig[i : i + 1] for i in range(n)]
    # Content translation in image units (NVlabs' t); studio's rotation map is NVlabs'
    # rotation_matrix(theta), which NVlabs' metric writes as rotation_matrix(-angle): angle = -theta.
    shift, frac = -transforms["eq_t"][:, :2, 2], -transforms["eq_t_frac"][:, :2, 2]
    rot = transforms["eq_r"]
    angles = (-torch.atan2(rot[:, 0, 1], rot[:, 0, 0])).tolist()

    def studio_ops(kind: str, radius: int) -> Terms:
        ref, valid = transform_images(orig, transforms[kind], radius)
        return masked_terms(moved[kind] - ref, valid)

    def studio_nvlabs_rotation() -> Terms:
        ref, valid = rotate_bandlimited(orig, rot)
        pseudo, pseudo_valid = pseudo_rotate(moved["eq_r"], rot)
        return masked_terms(pseudo - ref, valid & pseudo_valid)

    def nv_translation(op: Callable, t: torch.Tensor, kind: str) -> Terms:
        def fn(i: int) -> tuple[torch.Tensor, torch.Tensor]:
            ref, mask = op(one[i], t[i, 0].item(), t[i, 1].item())
            return moved[kind][i : i + 1] - ref, mask

        return per_sample(fn, n)

    def nv_rotation(nvlabs_ref: bool, pseudo: bool) -> Terms:
        def fn(i: int) -> tuple[torch.Tensor, torch.Tensor]:
            img = moved["eq_r"][i : i + 1]
            if nvlabs_ref:
                ref, mask = nv_eq.apply_fractional_rotation(one[i], angles[i])
            else:
                ref, mask = transform_images(one[i], rot[i : i + 1], 8)
            if pseudo:
                img, pseudo_mask = nv_eq.apply_fractional_pseudo_rotation(img, angles[i])
                mask = mask * pseudo_mask
            return img - ref, mask

        return per_sample(fn, n)

    nv_int = nv_translation(nv_eq.apply_integer_translation, shift, "eq_t")
    nv_frac = nv_translation(nv_eq.apply_fractional_translation, frac, "eq_t_frac")
    return {
        "studio ops (exact shift, Lanczos-8)": {
            "eq_t": studio_ops("eq_t", 0),
            "eq_t_frac": studio_ops("eq_t_frac", 8),
            "eq_r": studio_ops("eq_r", 8),
        },
        "studio ops, lanczos_radius=3": {
            "eq_t_frac": studio_ops("eq_t_frac", 3),
            "eq_r": studio_ops("eq_r", 3),
        },
        "studio protocol=nvlabs": {
            "eq_t": studio_ops("eq_t", 0),
            "eq_t_frac": studio_ops("eq_t_frac", 3),
            "eq_r": studio_nvlabs_rotation(),
        },
        "studio Lanczos-8 + NVlabs pseudo-rotation": {"eq_r": nv_rotation(False, True)},
        "NVlabs ops without pseudo-rotation": {
            "eq_t": nv_int,
            "eq_t_frac": nv_frac,
            "eq_r": nv_rotation(True, False),
        },
        "NVlabs ops (its protocol)": {"eq_t": nv_int, "eq_t_frac": nv_frac, "eq_r": nv_rotation(True, True)},
    }


def sinusoid_images(
    transforms: torch.Tensor, freqs: torch.Tensor, phases: torch.Tensor, amplitudes: torch.Tensor, size: int
) -> torch.Tensor:
    """[n, C, size, size]: sample i shows sum_k amplitudes[i, k, c] sin(2 pi (freqs[i, k] . M_i p) +
    phases[i, k]) at pixel centre p (image units), M_i = transforms[i] (output -> source), keeping only
    the components whose frequency on the output grid, M_i^T freqs[i, k], lies in the grid-aligned square
    max(|f_x|, |f_y|) < SQUARE_BAND * Nyquist: an ideal band-limited generator with a continuous
    underlying signal, as StyleGAN3's critically sampled output layers make."""
    coords = (torch.arange(size, dtype=torch.float64) + 0.5) / size - 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    p = torch.stack([xx, yy, torch.ones_like(xx)], dim=-1)  # [H, W, 3]
    q = torch.einsum("nij,hwj->nhwi", transforms, p)[..., :2]  # source positions [n, H, W, 2]
    waves = torch.sin(2 * math.pi * torch.einsum("nhwi,nki->nkhw", q, freqs) + phases[..., None, None])
    in_band = (freqs @ transforms[:, :2, :2]).abs().amax(dim=2) < SQUARE_BAND * size / 2  # [n, K]
    return torch.einsum("nkhw,nkc->nchw", waves, amplitudes * in_band[..., None]).float()


def sinusoid_case(
    nv_eq: ModuleType, transforms: dict[str, torch.Tensor], size: int, radius: float, seed: int
) -> dict[str, dict[str, Terms]]:
    """protocol_terms of an exactly equivariant 'generator' (sinusoid_images): 16 components per sample
    with frequencies uniform in the disc |f| <= radius * Nyquist. Up to SQUARE_BAND every rotation keeps
    them all (the floor of the resampling alone); beyond, some enter or leave the square under rotation,
    which NVlabs' pseudo-rotation is there to absorb."""
    n, k = transforms["eq_t"].shape[0], 16
    gen = torch.Generator().manual_seed(seed)
    r = radius * size / 2 * torch.rand(n, k, generator=gen, dtype=torch.float64).sqrt()
    angle = 2 * math.pi * torch.rand(n, k, generator=gen, dtype=torch.float64)
    freqs = torch.stack([r * angle.cos(), r * angle.sin()], dim=-1)
    phases = 2 * math.pi * torch.rand(n, k, generator=gen, dtype=torch.float64)
    amplitudes = 0.1 * torch.randn(n, k, 3, generator=gen, dtype=torch.float64)
    identity = torch.eye(3, dtype=torch.float64).expand(n, 3, 3)
    orig = sinusoid_images(identity, freqs, phases, amplitudes, size)
    moved = {kind: sinusoid_images(m, freqs, phases, amplitudes, size) for kind, m in transforms.items()}
    return protocol_terms(nv_eq, orig, moved, transforms)


def print_protocols(title: str, variants: dict[str, dict[str, Terms]]) -> None:
    print(f"  {title}")
    for name, terms in variants.items():
        cells = [
            f" {terms[kind].psnr(pooled):8.2f}" if kind in terms else f" {'-':>8s}"
            for kind in KINDS
            for pooled in (False, True)
        ]
        print(f"    {name:<46s}" + "".join(cells))


@torch.no_grad()
def print_equivariance(
    nv_eq: ModuleType, metric_utils: ModuleType, G_nv: nn.Module, G: Generator, n: int, seed: int
) -> None:
    """Both metrics on their own draws, then protocol_terms on common draws."""
    G.set_motion()
    G_nv.synthesis.input.transform.copy_(torch.eye(3))
    torch.manual_seed(seed)  # NVlabs draws z and the transforms from the global generator
    opts = metric_utils.MetricOptions(G=G_nv, G_kwargs={"force_fp32": True}, device=torch.device("cpu"))
    ref = nv_eq.compute_equivariance_metrics(
        opts, n, EQ_BATCH, compute_eqt_int=True, compute_eqt_frac=True, compute_eqr=True
    )
    ours = equivariance(G, num_samples=n, batch=EQ_BATCH, seed=seed)
    ours_nvlabs = equivariance(G, num_samples=n, batch=EQ_BATCH, seed=seed, protocol="nvlabs")
    print_eq_header(f"Equivariance of this generator (dB), {n} samples")
    print(
        f"  {'NVlabs compute_equivariance_metrics (own draws)':<48s}"
        + "".join(f" {'':8s} {v:8.2f}" for v in ref)
    )
    print(f"  {'studio equivariance (own draws)':<48s}" + "".join(f" {ours[k]:8.2f} {'':8s}" for k in KINDS))
    print(
        f"  {'studio equivariance, protocol=nvlabs (own draws)':<48s}"
        + "".join(f" {'':8s} {ours_nvlabs[k]:8.2f}" for k in KINDS)
    )
    z, transforms = draw_samples(G, range(seed, seed + n), 0.125, 180.0)
    ws = G.mapping(z, None)
    moved = {kind: transformed_synthesis(G, ws, m) for kind, m in transforms.items()}
    print_protocols(
        f"common draws (studio's seeds {seed}..{seed + n - 1}):",
        protocol_terms(nv_eq, G.synthesis(ws), moved, transforms),
    )


def print_sinusoid_floors(nv_eq: ModuleType, G: Generator, n: int, seed: int) -> None:
    """protocol_terms of ideal sinusoid images under the transforms of studio's seeds (any generator's
    draws at this resolution): the floor of each protocol's resampling."""
    print_eq_header(f"Ideal, exactly equivariant sinusoid images (dB), {G.img_resolution}², {n} samples")
    _, transforms = draw_samples(G, range(seed, seed + n), 0.125, 180.0)
    for radius in SINUSOID_RADII:
        variants = sinusoid_case(nv_eq, transforms, G.img_resolution, radius, seed)
        print_protocols(
            f"|f| <= {radius:.2f} x Nyquist, images keep the square {SQUARE_BAND:g} x Nyquist:", variants
        )


def print_eq_header(title: str) -> None:
    print(f"\n{title}; per-sample mean of MSEs (studio's aggregation) | pooled over pixels (NVlabs')")
    print(f"  {'':<48s}" + "".join(f" {kind:>17s}" for kind in KINDS))
    print(f"  {'':<48s}" + f" {'per-smpl':>8s} {'pooled':>8s}" * len(KINDS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvlabs", required=True, help="path of your NVlabs/stylegan3 checkout")
    parser.add_argument("--cfg", choices=["t", "r", "both"], default="both")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channel-base", type=int, help="config T's (R doubles it); default by resolution")
    parser.add_argument("--channel-max", type=int, help="config T's (R doubles it); default by resolution")
    parser.add_argument("--map-depth", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2, help="samples of the layer and gradient comparison")
    parser.add_argument("--eq-samples", type=int, default=16, help="multiple of 4; 0 skips the EQ part")
    parser.add_argument("--grad", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.eq_samples % EQ_BATCH:
        parser.error(f"--eq-samples must be a multiple of {EQ_BATCH} (NVlabs' batch)")
    torch.set_num_threads(args.threads)
    # NVlabs' construct_affine_bandlimit_filter calls torch.meshgrid without `indexing`.
    warnings.filterwarnings("ignore", message="torch.meshgrid")
    networks, nv_eq, metric_utils = import_nvlabs(args.nvlabs)
    print(f"NVlabs checkout: {args.nvlabs} (script checked against commit {CHECKED_COMMIT})")
    for cfg in ("t", "r") if args.cfg == "both" else (args.cfg,):
        G_nv, G = build_pair(networks, cfg, args)
        header = f"config {cfg.upper()}, {args.resolution}², fp32 CPU, batch {args.batch}"
        print_table(f"== {header}: fixed quantities", fixed_rows(G_nv, G))
        print_table(f"== {header}: forward", forward_rows(G_nv, G, args.batch, args.seed + 2))
        if args.grad:
            print_table(
                f"== {header}: gradients (worst parameter per module)",
                gradient_rows(G_nv, G, args.batch, args.seed + 3),
            )
        if args.eq_samples:
            print_equivariance(nv_eq, metric_utils, G_nv, G, args.eq_samples, args.seed)
    if args.eq_samples:
        print_sinusoid_floors(nv_eq, G, args.eq_samples, args.seed)


if __name__ == "__main__":
    main()
