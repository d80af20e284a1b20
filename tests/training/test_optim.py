"""Lazy-regularization optimizer adjustment and the G_ema schedule."""

import copy

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from studio.training.optim import ema_beta, lazy_ratio, make_lazy_optimizer, update_ema_


def test_lazy_adam_scales_lr_and_betas_by_interval_ratio() -> None:
    factory = instantiate(
        OmegaConf.create(
            {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.002, "betas": [0.0, 0.99]}
        )
    )
    opt = make_lazy_optimizer(factory, nn.Linear(2, 2).parameters(), reg_interval=16)
    group = opt.param_groups[0]
    assert lazy_ratio(16) == 16 / 17
    assert group["lr"] == pytest.approx(0.002 * 16 / 17, rel=1e-15)
    assert group["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)), rel=1e-15)
    assert group["eps"] == 1e-8


def test_lazy_optimizer_needs_a_partial_config() -> None:
    with pytest.raises(TypeError, match="_partial_: true"):
        make_lazy_optimizer(torch.optim.Adam, nn.Linear(2, 2).parameters(), 4)


def test_ema_beta_half_life_and_rampup() -> None:
    # Without rampup the EMA halves the weight of old parameters every ema_kimg thousand images.
    assert ema_beta(16, 5.0, None, 123) == pytest.approx(0.5 ** (16 / 5000), rel=1e-15)
    assert ema_beta(16, 5.0, None, 123) ** (5000 / 16) == pytest.approx(0.5, rel=1e-12)
    # Early in training the half-life is capped at cur_nimg * rampup images.
    assert ema_beta(16, 5.0, 0.05, 1000) == pytest.approx(0.5 ** (16 / 50), rel=1e-15)
    assert ema_beta(16, 5.0, 0.05, 10**6) == pytest.approx(0.5 ** (16 / 5000), rel=1e-15)
    assert ema_beta(16, 5.0, 0.05, 0) == 0.0  # the first step copies G


def test_update_ema_lerps_parameters_and_copies_buffers() -> None:
    model = nn.BatchNorm1d(3)
    ema = copy.deepcopy(model)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.running_mean.fill_(7.0)
    update_ema_(ema, model, beta=0.75)
    torch.testing.assert_close(ema.weight, torch.full((3,), 0.75 * 1.0 + 0.25 * 2.0))
    torch.testing.assert_close(ema.running_mean, torch.full((3,), 7.0))
