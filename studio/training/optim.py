"""Optimizers adjusted for lazy regularization, and the generator's exponential moving average (EMA)."""

import functools
from collections.abc import Callable, Iterable

import torch
from torch import nn


def lazy_ratio(reg_interval: int) -> float:
    """Fraction of steps' worth of updates per step when a regularizer runs every `reg_interval` steps as
    an extra optimizer step: interval / (interval + 1)."""
    return reg_interval / (reg_interval + 1)


def make_lazy_optimizer(
    factory: Callable[..., torch.optim.Optimizer], params: Iterable[nn.Parameter], reg_interval: int | None
) -> torch.optim.Optimizer:
    """Build `factory(params)` (a functools.partial from the optimizer config) with lr * r and betas ** r,
    r = lazy_ratio(reg_interval), so that (interval + 1) optimizer steps do what `interval` steps with
    the configured (lr, betas) would (Karras et al. 2020, appendix B). reg_interval None: the
    regularizer is off, no extra steps, the configured values unchanged. Optimizers without betas only
    get the lr adjusted."""
    if not isinstance(factory, functools.partial):
        raise TypeError("optimizer configs must be partial (`_partial_: true`) so studio can pass parameters")
    kwargs = dict(factory.keywords)
    if "lr" not in kwargs:
        raise ValueError(f"optimizer config for {factory.func.__name__} must set lr")
    r = 1.0 if reg_interval is None else lazy_ratio(reg_interval)
    kwargs["lr"] = kwargs["lr"] * r
    if "betas" in kwargs:
        kwargs["betas"] = tuple(float(b) ** r for b in kwargs["betas"])
    return factory.func(params, *factory.args, **kwargs)


def ema_beta(batch: int, ema_kimg: float, ema_rampup: float | None, cur_nimg: int) -> float:
    """Per-step EMA decay: 0.5 ** (batch / ema_nimg), i.e. the EMA's half-life is ema_nimg images.

    ema_nimg = ema_kimg * 1000, capped at cur_nimg * ema_rampup early in training when ema_rampup is set.
    """
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema_(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema_param <- beta * ema_param + (1 - beta) * model_param; buffers are copied."""
    ema_params = list(ema.parameters())
    params = list(model.parameters())
    torch._foreach_lerp_(ema_params, params, 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)


def finite_gradients_(module: nn.Module, limit: float = 1e5) -> None:
    """Replace NaN gradients by 0 and infinite ones by +-limit, in place, as NVlabs' StyleGAN loops do
    after the all-reduce (call it between average_gradients_ and the optimizer step): one fp16 overflow
    in a backward pass must not poison Adam's moments for the rest of the run. A diverging run still
    stops, on its non-finite loss."""
    for p in module.parameters():
        if p.grad is not None:
            p.grad.nan_to_num_(nan=0.0, posinf=limit, neginf=-limit)
