"""KID and Inception Score vs torch-fidelity and torchmetrics on identical features."""

import numpy as np
import pytest
import torch
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from studio.metrics.functional import inception_score, kid


class _Identity(torch.nn.Module):
    """Feature extractor that passes precomputed features through (torchmetrics' custom-extractor hook)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture
def kid_sets():
    rng = np.random.default_rng(0)
    return rng.standard_normal((300, 24)), rng.standard_normal((260, 24)) * 1.2 + 0.1


def test_kid_matches_torch_fidelity(kid_sets):
    real, fake = kid_sets
    # torch-fidelity's input1 is the generated set.
    ref = kid_features_to_metric(
        torch.from_numpy(fake),
        torch.from_numpy(real),
        kid_subsets=12,
        kid_subset_size=100,
        rng_seed=7,
        verbose=False,
    )
    ours = kid(real, fake, num_subsets=12, subset_size=100, seed=7)
    assert ours["kid_mean"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-10)
    assert ours["kid_std"] == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-10)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_matches_torchmetrics(kid_sets):
    real, fake = kid_sets
    metric = KernelInceptionDistance(feature=_Identity(), subsets=9, subset_size=80)
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    torch.manual_seed(11)
    mean, std = metric.compute()
    ours = kid(real, fake, num_subsets=9, subset_size=80, seed=11, sampler="torch")
    assert ours["kid_mean"] == pytest.approx(float(mean), rel=1e-10)
    assert ours["kid_std"] == pytest.approx(float(std), rel=1e-10)


def test_kid_hand_computed_and_subset_clamp():
    x = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    y = np.array([[0.0, 0.0], [2.0, 1.0], [-1.0, 1.0]])

    def k(a, b):
        return (a @ b / 2 + 1) ** 3

    kxx = sum(k(a, b) for i, a in enumerate(x) for j, b in enumerate(x) if i != j) / 6
    kyy = sum(k(a, b) for i, a in enumerate(y) for j, b in enumerate(y) if i != j) / 6
    kxy = sum(k(a, b) for a in x for b in y) / 9
    # subset_size above N uses all N samples: every subset is the full set, so std is 0.
    out = kid(x, y, num_subsets=4, subset_size=1000)
    assert out["kid_mean"] == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-12)
    assert out["kid_std"] == pytest.approx(0.0, abs=1e-12)


def test_kid_separates_distributions(kid_sets):
    real, _ = kid_sets
    other = np.random.default_rng(5).standard_normal(real.shape)
    same_distribution = kid(real, other, num_subsets=5, subset_size=200)["kid_mean"]
    assert abs(same_distribution) < 0.02
    assert kid(real, other + 1.0, num_subsets=5, subset_size=200)["kid_mean"] > 0.5


def test_kid_rejects_unknown_sampler(kid_sets):
    with pytest.raises(
        ValueError, match="sampler must be 'numpy' \\(torch-fidelity\\) or 'torch' \\(torchmetrics\\)"
    ):
        kid(*kid_sets, sampler="python")


@pytest.fixture
def logits():
    return torch.randn(200, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3


@pytest.mark.parametrize("splits", [10, 7])
def test_inception_score_matches_torch_fidelity(logits, splits):
    ref = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=2020)
    ours = inception_score(logits, splits=splits)
    assert ours["is_mean"] == pytest.approx(ref["inception_score_mean"], rel=1e-12)
    assert ours["is_std"] == pytest.approx(ref["inception_score_std"], rel=1e-10)


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save")
def test_inception_score_matches_torchmetrics(logits):
    metric = InceptionScore(feature=_Identity(), splits=10)
    metric.update(logits)
    torch.manual_seed(3)
    mean, std = metric.compute()
    torch.manual_seed(3)
    permuted = logits[torch.randperm(len(logits))]  # torchmetrics' shuffle, reproduced outside
    ours = inception_score(permuted, splits=10, protocol="unshuffled", ddof=1)
    assert ours["is_mean"] == pytest.approx(float(mean), rel=1e-12)
    assert ours["is_std"] == pytest.approx(float(std), rel=1e-10)


def test_inception_score_known_answers(logits):
    # Confident and uniformly spread over C classes: IS = C. All samples alike: IS = 1.
    one_hot = torch.eye(10).repeat(20, 1)
    assert inception_score(one_hot, splits=1, from_logits=False)["is_mean"] == pytest.approx(10.0)
    assert inception_score(torch.zeros(50, 10), splits=5)["is_mean"] == pytest.approx(1.0)
    probs = logits.softmax(dim=1)
    assert inception_score(probs, from_logits=False)["is_mean"] == pytest.approx(
        inception_score(logits)["is_mean"]
    )


def test_inception_score_split_errors(logits):
    with pytest.raises(
        ValueError, match=r"splits must be between 1 and the number of samples \(200\); got 0"
    ):
        inception_score(logits, splits=0)
    with pytest.raises(
        ValueError, match="probabilities must be non-negative; pass from_logits=True for logits"
    ):
        inception_score(logits, from_logits=False)
