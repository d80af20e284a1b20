"""Self-check of a compiled op against its reference on a tiny input: forward and first-order gradients.

Device-agnostic on purpose: it takes the two callables, a device and a dtype, so it can be tested on the
CPU with a deliberately wrong "kernel". The reference runs in float32 (TF32 off) on the candidate's very
inputs (rounded to its dtype), so the tolerance only has to absorb the candidate's own arithmetic: on
unrounded inputs, bfloat16's input rounding alone flips leaky-ReLU and clamp branches (measured: gradient
error 0.27 for filtered_lrelu on the CPU harness, at most 4.8e-3 on the rounded inputs).
"""

from collections.abc import Callable

import torch

from ops.environment import fp32_precision

# Largest accepted |candidate - reference| relative to max |reference|, per dtype of the candidate.
TOLERANCE = {torch.float32: 1e-3, torch.float16: 1e-2, torch.bfloat16: 5e-2}


def _cases(op: str, gen: torch.Generator) -> list[tuple[dict, tuple[str, ...]]]:
    """Keyword arguments of tiny calls of `op` (float32, CPU), each with the names of its differentiable
    inputs. filtered_lrelu gets one call per kernel path: separable up / 2-D down, the reverse, and
    StyleGAN3's 12-tap filters on a channels_last input of several output tiles (the tiles' borders);
    upfirdn2d a 4-tap filter (one 2-D pass) and a 12-tap one (two 1-D passes)."""
    x = torch.randn(2, 3, 7, 6, generator=gen)
    b = torch.randn(3, generator=gen)
    if op == "bias_act":
        return [(dict(x=x, b=b, act="lrelu", clamp=1.5), ("x", "b"))]
    f = torch.rand(4, generator=gen) + 0.1
    long_taps = [t / t.sum() for t in (torch.rand(12, generator=gen) + 0.1 for _ in range(2))]  # sum 1
    if op == "upfirdn2d":
        return [
            (dict(x=x, f=f, up=2, down=2, padding=(2, 1, 1, 2), gain=1.5), ("x",)),
            (dict(x=x, f=long_taps[0], up=2, padding=(6, 5, 5, 6)), ("x",)),
        ]
    fd = torch.rand(5, generator=gen) + 0.1
    common = dict(x=x, b=b, up=2, down=2, padding=(3, 2, 2, 3), clamp=1.0)
    tiles = torch.randn(1, 4, 40, 37, generator=gen).to(memory_format=torch.channels_last)
    tiles_b = torch.randn(4, generator=gen)
    return [
        (dict(fu=f, fd=torch.outer(fd, fd), **common), ("x", "b")),
        (dict(fu=torch.outer(f, f), fd=fd, **common), ("x", "b")),
        (
            dict(x=tiles, b=tiles_b, fu=long_taps[0], fd=long_taps[1], up=2, down=2, padding=10),
            ("x", "b"),
        ),
    ]


def _relative_error(candidate: torch.Tensor, reference: torch.Tensor) -> float:
    scale = reference.abs().max().clamp_min(1e-6)
    return ((candidate.float() - reference).abs().max() / scale).item()


def _place(kwargs: dict, names: tuple[str, ...], device: torch.device, dtype: torch.dtype) -> dict:
    """kwargs on `device`; the differentiable inputs `names` in `dtype` with grad (filters stay fp32)."""
    placed = {}
    for key, value in kwargs.items():
        if torch.is_tensor(value):
            value = value.to(device, dtype if key in names else value.dtype).requires_grad_(key in names)
        placed[key] = value
    return placed


def _grads(y: torch.Tensor, weight: torch.Tensor, kwargs: dict, names: tuple[str, ...]):
    """Gradients of sum(weight * y) with respect to the inputs `names`."""
    return torch.autograd.grad((y.float() * weight).sum(), [kwargs[n] for n in names])


def self_check(
    op: str, candidate: Callable, reference: Callable, device: torch.device | str, dtype: torch.dtype
) -> str | None:
    """None when candidate and reference agree on tiny `op` calls on device/dtype, else what differs."""
    device = torch.device(device)
    # The caller may be in no_grad / inference_mode / autocast; the check needs plain autograd tensors.
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast(device.type, enabled=False):
        gen = torch.Generator().manual_seed(0)  # private generator: the global RNG stream is left untouched
        problems = []
        for kwargs, names in _cases(op, gen):
            problem = _compare_call(candidate, reference, kwargs, names, device, dtype, gen)
            if problem:
                problems.append(problem)
    return "; ".join(problems) or None


def _compare_call(
    candidate: Callable,
    reference: Callable,
    kwargs: dict,
    names: tuple[str, ...],
    device: torch.device,
    dtype: torch.dtype,
    gen: torch.Generator,
) -> str | None:
    """None when one call agrees (output and gradients of `names`), else what differs."""
    tol = TOLERANCE[dtype]
    rounded = {key: value.to(dtype).float() if key in names else value for key, value in kwargs.items()}
    ref_args = _place(rounded, names, device, torch.float32)
    cand_args = _place(rounded, names, device, dtype)
    with fp32_precision():
        y_ref = reference(**ref_args)
        weight = torch.randn(y_ref.shape, generator=gen).to(device)
        g_ref = _grads(y_ref, weight, ref_args, names)
    try:
        y = candidate(**cand_args)
        grads = _grads(y, weight, cand_args, names)
    except Exception as err:  # a kernel that crashes is as unusable as one that is wrong
        return f"it raised {type(err).__name__}: {err}"
    if y.shape != y_ref.shape or y.dtype != dtype:
        return f"output {tuple(y.shape)} {y.dtype}, expected {tuple(y_ref.shape)} {dtype}"
    errors = {"output": _relative_error(y, y_ref)}
    for name, grad, grad_ref in zip(names, grads, g_ref, strict=True):
        errors[f"gradient of {name}"] = _relative_error(grad, grad_ref)
    problems = [f"{what} error {err:.2e}" for what, err in errors.items() if not err <= tol]
    return f"{', '.join(problems)} > tolerance {tol:g}" if problems else None
