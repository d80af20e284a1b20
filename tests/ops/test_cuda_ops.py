"""Compiled kernels vs the plain-PyTorch reference: outputs, first and second derivatives.

Two backends run the same cases through the same Python wrappers (ops/_cuda_*.py, autograd included):
- "cuda": the real kernels on the GPU (marked `cuda`, skipped without one);
- "host": the kernels' per-element / per-block code compiled for the CPU (ops/csrc/host_check.cpp,
  emulating the CUDA grid), so the index math is tested on machines without a GPU (marked `slow`: the
  harness takes about a minute to compile the first time).
The reference runs in float64 on the candidate's own (rounded) inputs, so the tolerance only has to absorb
the candidate's rounding; it is relative to the largest reference magnitude.
"""

import importlib
import math
import os
import shutil
import types
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch

import ops
from ops import _build, _dispatch
from ops._self_check import self_check
from ops.environment import fp32_precision

TOLERANCE = {torch.float32: 1e-4, torch.float16: 1e-2}


@pytest.fixture(
    params=[pytest.param("cuda", marks=pytest.mark.cuda), pytest.param("host", marks=pytest.mark.slow)]
)
def device(request, monkeypatch) -> str:
    """Device of the backend; for "host" the wrappers get the CPU harness instead of the CUDA extension."""
    if request.param == "host":
        harness = _host_harness()
        monkeypatch.setattr(_build, "build", lambda name, with_cuda=True: harness)
        return "cpu"
    return "cuda"


def _host_harness() -> _build.BuildResult:
    if shutil.which(os.environ.get("CXX", "c++")) is None or shutil.which("ninja") is None:
        pytest.skip("the CPU harness needs a host C++ compiler and ninja")
    return _build.build("host_check", with_cuda=False)


def _kernel(op: str):
    return getattr(importlib.import_module(f"ops._cuda_{op}"), op)


def _rel_err(candidate: torch.Tensor, reference: torch.Tensor) -> float:
    return ((candidate.double() - reference).abs().max() / reference.abs().max().clamp_min(1e-6)).item()


def _derivatives(fn, inputs: dict, kwargs: dict, out_weight: torch.Tensor, grad_weights: list[torch.Tensor]):
    """fn's output, gradients of sum(w * sin(y)) w.r.t. `inputs`, and of sum(v * those gradients).

    sin makes the incoming gradient depend on y, so the second pass differentiates the backward itself.
    """
    y = fn(**inputs, **kwargs)
    loss = (torch.sin(y.double()) * out_weight).sum()
    grads = torch.autograd.grad(loss, list(inputs.values()), create_graph=True)
    inner = sum((g.double() * v).sum() for g, v in zip(grads, grad_weights, strict=True))
    second = torch.autograd.grad(inner, list(inputs.values()), allow_unused=True)
    second = [torch.zeros_like(x) if s is None else s for x, s in zip(inputs.values(), second, strict=True)]
    return y, grads, second


def _compare(op: str, device: str, dtype: torch.dtype, inputs: dict, kwargs: dict, channels_last=False):
    """Kernel (in dtype, on device) vs reference (float64) on the same values: y, gradient, 2nd derivative."""
    gen = torch.Generator().manual_seed(1)
    cand = {k: v.to(device, dtype).requires_grad_() for k, v in inputs.items()}
    if channels_last:
        cand["x"] = cand["x"].detach().to(memory_format=torch.channels_last).requires_grad_()
    ref = {k: v.detach().double().requires_grad_() for k, v in cand.items()}
    y_ref = getattr(ops, f"{op}_ref")(**ref, **kwargs)
    out_weight = torch.randn(y_ref.shape, generator=gen, dtype=torch.float64).to(device)
    grad_weights = [torch.randn(v.shape, generator=gen, dtype=torch.float64).to(device) for v in ref.values()]
    y, grads, second = _derivatives(_kernel(op), cand, kwargs, out_weight, grad_weights)
    y_ref, grads_ref, second_ref = _derivatives(
        getattr(ops, f"{op}_ref"), ref, kwargs, out_weight, grad_weights
    )
    assert y.dtype == dtype and y.shape == y_ref.shape and y.device.type == device
    if channels_last and op != "bias_act":
        assert y.is_contiguous(memory_format=torch.channels_last)
    tol = TOLERANCE[dtype]
    assert _rel_err(y, y_ref) < tol
    for name, g, g_ref, s, s_ref in zip(cand, grads, grads_ref, second, second_ref, strict=True):
        assert g.dtype == dtype and g.shape == g_ref.shape, name
        assert _rel_err(g, g_ref) < tol, f"gradient of {name}"
        assert (s.double() - s_ref).abs().max().item() < tol * max(s_ref.abs().max().item(), 1.0), name


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _taps(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A positive filter (as from setup_filter, normalized to sum 1)."""
    f = torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) + 0.2
    return f / f.sum()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("act", sorted(ops.ACTIVATIONS))
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_bias_act(device, dtype, act, clamp):
    inputs = dict(x=_randn(3, 5, 4, 7, seed=0), b=_randn(5, seed=1))
    _compare("bias_act", device, dtype, inputs, dict(act=act, clamp=clamp))


@pytest.mark.parametrize(
    ("shape", "dim", "channels_last"),
    [
        ((7,), 0, False),
        ((7, 5), 1, False),
        ((2, 3, 5, 4), 3, False),
        ((2, 6, 3, 5), 1, True),
        ((2, 3, 5, 4), -2, True),
    ],
)
def test_bias_act_layouts(device, shape, dim, channels_last):
    inputs = dict(x=_randn(*shape, seed=2), b=_randn(shape[dim], seed=3))
    _compare(
        "bias_act",
        device,
        torch.float32,
        inputs,
        dict(dim=dim, act="lrelu", alpha=0.3, gain=1.5),
        channels_last,
    )


def _weighted_grads(outputs: list, inputs: list, weights: list) -> list[torch.Tensor]:
    """Gradients of sum(w * output) w.r.t. inputs (zeros where there is no dependence); keeps the graph."""
    total = sum((o.double() * w).sum() for o, w in zip(outputs, weights, strict=True))
    if not total.requires_grad:
        return [torch.zeros_like(x) for x in inputs]
    grads = torch.autograd.grad(total, inputs, create_graph=True, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=True)]


def _assert_same_with_nan(candidate: list, reference: list) -> None:
    """Equal up to float32 rounding, with NaN and +-inf in exactly the same places."""
    for name, c, r in zip(["output", "gradient", "second derivative"], candidate, reference, strict=True):
        for c_part, r_part in zip(c, r, strict=True):
            torch.testing.assert_close(c_part.detach().double(), r_part.detach(), rtol=1e-5, atol=1e-5,
                                       equal_nan=True, msg=lambda m, name=name: f"{name}: {m}")  # fmt: skip


def _derivatives_linear_loss(fn, inputs: dict, kwargs: dict, seed: int) -> list[list[torch.Tensor]]:
    """[y], first and second derivatives of fn through a linear loss (so NaN in y does not reach them)."""
    gen = torch.Generator().manual_seed(seed)
    y = fn(**inputs, **kwargs)
    w = torch.rand(y.shape, generator=gen, dtype=torch.float64).to(y.device) + 0.5
    grads = _weighted_grads([y], list(inputs.values()), [w])
    v = [torch.rand(x.shape, generator=gen, dtype=torch.float64).to(y.device) + 0.5 for x in inputs.values()]
    return [[y], grads, _weighted_grads(grads, list(inputs.values()), v)]


def _compare_non_finite(
    op: str, device: str, inputs: dict, kwargs: dict, unchecked: torch.Tensor | None = None
) -> None:
    """Kernel (float32) vs reference (float64) on inputs holding NaN / inf: outputs, 1st and 2nd derivatives.

    unchecked: elements of x whose derivatives are not compared (then only x's are): torch's own derivative
    at a NaN input depends on its code path (CPU elu: NaN in vectorized loops, 1 in the scalar tail).
    """
    cand = {k: v.to(device, torch.float32).requires_grad_() for k, v in inputs.items()}
    ref = {k: v.detach().double().requires_grad_() for k, v in cand.items()}
    results = []
    for fn, args in ((_kernel(op), cand), (getattr(ops, f"{op}_ref"), ref)):
        y, grads, second = _derivatives_linear_loss(fn, args, kwargs, seed=3)
        if unchecked is not None:
            mask = unchecked.to(device)
            grads, second = [grads[0].masked_fill(mask, 0)], [second[0].masked_fill(mask, 0)]
        results.append([y, grads, second])
    _assert_same_with_nan(*results)


@pytest.mark.parametrize("act", sorted(ops.ACTIVATIONS))
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_bias_act_propagates_nan_and_inf_like_the_reference(device, act, clamp):
    """NaN must survive the activation and the clamp (training's NaN checks rely on it); +-inf saturate."""
    special = [math.nan, math.inf, -math.inf, 2.0, 1.0, -1.0, 0.3, -0.3, 30.0, -30.0]
    x = torch.tensor([special, special[::-1]]).T.contiguous()  # [10, 2], bias along dim 1
    inputs = dict(x=x, b=torch.tensor([0.0, 0.25]))
    kwargs = dict(act=act, clamp=clamp)
    _compare_non_finite("bias_act", device, inputs, kwargs, unchecked=x.isnan())
    inf_inputs = dict(x=torch.where(x.isnan(), 0.5, x), b=inputs["b"])  # without NaN all derivatives compare
    _compare_non_finite("bias_act", device, inf_inputs, kwargs)


UPFIRDN_CASES = [  # up, down, filter shape, padding, flip_filter, input H x W
    (1, 1, (3, 3), 1, False, (8, 8)),
    (2, 1, (4,), (2, 1, 2, 1), False, (7, 5)),
    (1, 2, (4,), (1, 2, 1, 2), True, (9, 8)),
    (2, 2, (6,), (3, 2, 3, 2), False, (5, 6)),
    (4, 1, (8,), (4, 3, 4, 3), False, (3, 5)),
    (1, 4, (8, 5), (3, 4, 2, 1), False, (13, 11)),
    (4, 2, (7, 7), (3, -1, 2, 0), True, (5, 4)),
    (2, 4, (12,), (5, 4, 3, 6), False, (9, 7)),
    ((2, 1), (1, 2), (5, 3), (2, 2, 1, 3), False, (6, 7)),
    (2, 2, (4,), (-1, 2, -3, 1), False, (8, 7)),  # negative leading padding crops the start
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("up", "down", "taps", "padding", "flip", "size"), UPFIRDN_CASES)
def test_upfirdn2d(device, dtype, channels_last, up, down, taps, padding, flip, size):
    inputs = dict(x=_randn(2, 3, *size, seed=4))
    kwargs = dict(f=_taps(taps, 5).to(device), up=up, down=down, padding=padding, flip_filter=flip, gain=1.7)
    _compare("upfirdn2d", device, dtype, inputs, kwargs, channels_last)


def _record_kernel_calls(monkeypatch, op: str, record: Callable[[tuple, object], object]) -> list:
    """From now on each call of `op`'s kernel function (CUDA extension or CPU harness) appends
    record(arguments, result) to the list returned."""
    build = _build.build
    kernel = getattr(build(op).module, op)
    calls = []

    def recording_kernel(*args):
        result = kernel(*args)
        calls.append(record(args, result))
        return result

    recorder = types.SimpleNamespace(module=types.SimpleNamespace(**{op: recording_kernel}))
    monkeypatch.setattr(_build, "build", lambda name, with_cuda=True: recorder if name == op else build(name))
    return calls


def _record_upfirdn2d_weights(monkeypatch) -> list[tuple[int, int]]:
    """Shapes of the weights every upfirdn2d kernel call gets from now on."""
    return _record_kernel_calls(monkeypatch, "upfirdn2d", lambda args, result: tuple(args[1].shape))


@pytest.mark.parametrize(
    ("up", "down", "taps", "padding", "size"),
    [
        (2, 1, 12, (6, 5, 6, 5), (7, 5)),
        (1, 2, 8, (3, 4, 2, 1), (13, 11)),
        ((2, 1), (1, 2), 9, (2, 2, 1, 3), (6, 7)),
    ],
)
def test_long_separable_filters_take_two_1d_passes(device, monkeypatch, up, down, taps, padding, size):
    """From 8 taps on, forward and backward run [1, k] then [k, 1] passes: the outer product's result."""
    x = _randn(2, 3, *size, seed=22).to(device).requires_grad_()
    f = _taps((taps,), 23).to(device)
    kwargs = dict(up=up, down=down, padding=padding, gain=1.7)
    y_2d = _kernel("upfirdn2d")(x, torch.outer(f, f), **kwargs)
    (dx_2d,) = torch.autograd.grad(y_2d.square().sum(), x)
    shapes = _record_upfirdn2d_weights(monkeypatch)
    y = _kernel("upfirdn2d")(x, f, **kwargs)
    (dx,) = torch.autograd.grad(y.square().sum(), x)
    assert shapes == [(1, taps), (taps, 1), (taps, 1), (1, taps)]  # forward, then each pass's adjoint
    torch.testing.assert_close(y, y_2d, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dx, dx_2d, rtol=1e-5, atol=1e-4)
    shapes.clear()
    _kernel("upfirdn2d")(x, _taps((4,), 24).to(device), **kwargs)  # short filters: one 2-D pass
    assert shapes == [(4, 4)]


def test_filtered_lrelu_backward_takes_separable_passes(device, monkeypatch):
    x = _randn(2, 3, 9, 8, seed=25).to(device).requires_grad_()
    fu, fd = _taps((12,), 26).to(device), _taps((12,), 27).to(device)
    shapes = _record_upfirdn2d_weights(monkeypatch)
    y = _kernel("filtered_lrelu")(x=x, fu=fu, fd=fd, up=2, down=2, padding=10)
    torch.autograd.grad(y.sum(), x)
    assert shapes == [(1, 12), (12, 1)] * 2  # the adjoints of the down- and the up-sampling


FILTERED_LRELU_CASES = [  # up, down, fu shape, fd shape, padding, clamp, flip_filter, input H x W
    (1, 1, None, None, 0, None, False, (6, 7)),
    (2, 2, (6,), (6,), (3, 2, 4, 1), 0.5, False, (7, 6)),
    (2, 2, (12,), (12,), 10, None, True, (9, 8)),
    (4, 2, (8,), (5, 5), (5, 3, 5, 3), 0.3, False, (5, 7)),
    (1, 2, (3, 3), (4,), 2, None, False, (11, 9)),
    (2, 1, (4,), (3,), (1, 2, 3, 4), None, False, (6, 5)),
    (1, 4, None, (64,), 30, None, False, (9, 10)),  # large fd: the kernel shrinks its output tile to 8 x 8
    (2, 2, (6,), (6,), 14, 0.8, False, (36, 37)),  # several output tiles per plane
    (2, 2, (6,), (6, 6), (-1, 3, -2, 4), None, False, (9, 10)),  # negative leading padding
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("up", "down", "fu", "fd", "padding", "clamp", "flip", "size"), FILTERED_LRELU_CASES)
def test_filtered_lrelu(device, dtype, channels_last, up, down, fu, fd, padding, clamp, flip, size):
    inputs = dict(x=_randn(2, 3, *size, seed=6), b=_randn(3, seed=7))
    kwargs = dict(
        fu=None if fu is None else _taps(fu, 8).to(device),
        fd=None if fd is None else _taps(fd, 9).to(device),
        up=up,
        down=down,
        padding=padding,
        gain=math.sqrt(2),
        slope=0.2,
        clamp=clamp,
        flip_filter=flip,
    )
    _compare("filtered_lrelu", device, dtype, inputs, kwargs, channels_last)


FILTERED_LRELU_KWARGS = dict(up=2, down=2, padding=(3, 2, 4, 1), gain=math.sqrt(2), slope=0.2)


@pytest.mark.parametrize("clamp", [None, 0.5])
def test_filtered_lrelu_propagates_nan_like_the_reference(device, clamp):
    x = _randn(1, 2, 7, 6, seed=6)
    x[0, 0, 3, 2] = math.nan
    x[0, 1, 0, 0] = math.inf
    fu, fd = _taps((6,), 8).to(device), _taps((6,), 9).to(device)
    kwargs = dict(fu=fu, fd=fd, clamp=clamp, **FILTERED_LRELU_KWARGS)
    _compare_non_finite("filtered_lrelu", device, dict(x=x, b=_randn(2, seed=7)), kwargs)


def test_filtered_lrelu_gives_filters_no_gradient(device):
    x = _randn(1, 2, 6, 7, seed=11).to(device)
    fu, fd = (_taps((4,), seed).to(device).requires_grad_() for seed in (12, 13))
    kwargs = dict(fu=fu, fd=fd, **FILTERED_LRELU_KWARGS)
    assert not _kernel("filtered_lrelu")(x=x, **kwargs).requires_grad  # only the filters asked for one
    x.requires_grad_()
    (dx,) = torch.autograd.grad(_kernel("filtered_lrelu")(x=x, **kwargs).sum(), x)
    with fp32_precision():  # the reference's convolutions in IEEE float32 (cuDNN allows TF32 by default)
        (dx_ref,) = torch.autograd.grad(ops.filtered_lrelu_ref(x, **kwargs).sum(), x)
    torch.testing.assert_close(dx, dx_ref, rtol=1e-4, atol=1e-5)
    assert fu.grad is None and fd.grad is None


def test_filtered_lrelu_writes_codes_only_when_a_gradient_is_needed(device, monkeypatch):
    codes_written = _record_kernel_calls(monkeypatch, "filtered_lrelu", lambda args, result: result[1])
    x = _randn(2, 3, 6, 5, seed=14).to(device).requires_grad_()
    b = _randn(3, seed=15).to(device).requires_grad_()
    fu, fd = _taps((4,), 16).to(device), _taps((4,), 17).to(device)
    kwargs = dict(fu=fu, fd=fd, clamp=0.4, **FILTERED_LRELU_KWARGS)
    fn = _kernel("filtered_lrelu")
    with torch.no_grad():
        y_no_grad = fn(x=x, b=b, **kwargs)
    with torch.inference_mode():
        y_inference = fn(x=x, b=b, **kwargs)
    y_constant = fn(x=x.detach(), b=b.detach(), **kwargs)
    assert codes_written == [None, None, None]
    y = fn(x=x, b=b, **kwargs)
    assert codes_written[-1].dtype == torch.uint8 and codes_written[-1].shape == (2, 3, 14, 12)
    for other in (y_no_grad, y_inference, y_constant):
        assert torch.equal(other, y.detach())
    grads = torch.autograd.grad(y.sum(), [x, b])
    with fp32_precision():
        grads_ref = torch.autograd.grad(ops.filtered_lrelu_ref(x, b=b, **kwargs).sum(), [x, b])
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("up", "down", "taps", "size"), [(2, 2, 12, (9, 8)), (4, 2, 8, (5, 7)), (1, 4, 16, (40, 37))]
)
def test_separable_taps_give_the_outer_products_result(device, up, down, taps, size):
    """1-D weights take the kernel's separable stages; their outer product takes the 2-D ones."""
    extension = _build.build("filtered_lrelu").module
    x, b = _randn(2, 3, *size, seed=18).to(device), _randn(3, seed=19).to(device)
    wu, wd = _taps((taps,), 20).to(device), _taps((taps + 1,), 21).to(device)
    args = (up, up, down, down, 5, 4, 3, 6, float(up * up), math.sqrt(2), 0.2, 0.6, True)
    y_separable, codes_separable = extension.filtered_lrelu(x, b, wu, wd, *args)
    y_2d, codes_2d = extension.filtered_lrelu(x, b, torch.outer(wu, wu), torch.outer(wd, wd), *args)
    torch.testing.assert_close(y_separable, y_2d, rtol=1e-5, atol=1e-6)
    assert (codes_separable != codes_2d).float().mean() < 1e-3  # only samples within round-off of 0 or clamp
    mixed, _ = extension.filtered_lrelu(x, b, wu, torch.outer(wd, wd), *args)
    torch.testing.assert_close(mixed, y_2d, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["bias_act", "upfirdn2d", "filtered_lrelu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_kernels_pass_their_own_self_check(device, op, dtype):
    assert self_check(op, _kernel(op), _dispatch.reference(op), device, dtype) is None


@pytest.mark.slow
def test_fast_division_is_exact_over_the_whole_int64_range():
    """The kernels' multiply-shift division (ops/csrc/common.cuh) against Python's integers."""
    harness = _host_harness().module
    top = 2**63 - 1
    divisors = [1, 2, 3, 5, 7, 12, 16, 255, 641, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1, 2**32 + 1]
    divisors += [10**12 + 39, 2**62 + 1, top]
    rng = np.random.default_rng(0)
    for d in divisors:
        numerators = {0, 1, d - 1, d, d + 1, 2 * d - 1, 2**31 - 1, 2**32, top - 1, top}
        numerators |= {int(v) for v in rng.integers(0, top, 50, dtype=np.int64)}
        numerators |= {min(top, q * d + r) for q in (1, 3, 2**20) for r in (0, d - 1)}
        for n in sorted(v for v in numerators if 0 <= v <= top):
            assert harness.fast_divmod(n, d) == divmod(n, d), (n, d)


@pytest.mark.slow
def test_output_tile_shrinks_to_fit_shared_memory():
    harness = _host_harness().module
    assert harness.tile_shape(12, 12, 2, 2) == (16, 16)  # (15 * 2 + 12)^2 floats fit in 48 KiB
    assert harness.tile_shape(64, 64, 4, 4) == (8, 8)  # (15 * 4 + 64)^2 floats do not
    assert harness.tile_shape(12, 0, 2, 2) == (16, 16)  # separable: 42^2 + 42 * 16 row-filtered floats
    assert harness.tile_shape(64, 0, 4, 4) == (8, 8)


def test_bias_act_third_derivative_is_refused(device):
    x = _randn(2, 3, seed=10).to(device).requires_grad_()
    (g,) = torch.autograd.grad(_kernel("bias_act")(x=x, act="tanh").sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="first and second derivatives only; use impl='ref'"):
        torch.autograd.grad(gg.sum(), x)


@pytest.mark.cuda
@pytest.mark.parametrize("op", ["bias_act", "upfirdn2d", "filtered_lrelu"])
def test_auto_uses_the_kernel_after_a_passing_self_check(op, monkeypatch):
    monkeypatch.setattr(_dispatch, "_checked", {})
    _build.build(op)  # a first build may print compiler warnings; only the dispatcher's fallback counts
    x = torch.randn(1, 2, 8, 8, device="cuda")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn = _dispatch.cuda_impl(op, "auto", x)
    assert not [str(w.message) for w in caught if str(w.message).startswith(f"ops.{op}: ")]
    assert fn is _kernel(op)
    assert _dispatch._checked[(op, torch.float32)] is True


def test_auto_falls_back_to_the_reference_beyond_the_kernels_limits(device, fake_gpu, monkeypatch):
    """A 2-D down filter too large for the fused kernel's shared memory: impl='auto' warns once and gives
    the reference's result; impl='cuda' raises the kernel's error."""
    _dispatch._checked[("filtered_lrelu", torch.float32)] = True  # the host harness stands in for the GPU
    monkeypatch.setattr(_dispatch, "load_kernel", lambda op: _kernel(op))
    x = _randn(1, 2, 70, 70, seed=28).to(device)
    kwargs = dict(fu=_taps((4,), 29).to(device), fd=_taps((120, 120), 30).to(device), up=2, padding=60)
    with pytest.warns(RuntimeWarning) as caught:
        y = ops.filtered_lrelu(x, **kwargs)
        ops.filtered_lrelu(x, **kwargs)
    assert [str(w.message) for w in caught] == [
        "ops.filtered_lrelu: the downsampling filter is too large for the fused kernel: impl='auto' uses the "
        "reference for it"
    ]
    torch.testing.assert_close(y, ops.filtered_lrelu_ref(x, **kwargs))
    with pytest.raises(RuntimeError, match="too large for the fused kernel; use impl='ref'"):
        ops.filtered_lrelu(x, impl="cuda", **kwargs)
