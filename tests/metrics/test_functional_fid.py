"""FID and feature statistics vs torch-fidelity, torchmetrics and scipy's sqrtm on identical features."""

import numpy as np
import pytest
import scipy.linalg
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torchmetrics.image.fid import _compute_fid

from studio.metrics.functional import feature_stats, fid, fid_from_stats


def _features(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((d, d)) / np.sqrt(d)
    return (rng.standard_normal((n, d)) @ mixing * scale + shift).astype(np.float32)


def _scipy_fid(mu1, s1, mu2, s2) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_feature_stats_match_torch_fidelity_and_numpy():
    x = _features(300, 32, 0)
    mu, sigma = feature_stats(torch.from_numpy(x))
    ref = fid_features_to_statistics(torch.from_numpy(x).double())
    assert mu.dtype == np.float64 and sigma.shape == (32, 32)
    np.testing.assert_allclose(mu, ref["mu"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n, d", [(400, 64), (150, 200)])  # the second has singular covariances (N < D)
def test_fid_matches_references(n, d):
    real, fake = _features(n, d, 1), _features(n + 20, d, 2, scale=1.3, shift=0.2)
    stats1, stats2 = feature_stats(real), feature_stats(fake)
    ours = fid(real, fake)
    assert ours == pytest.approx(fid_from_stats(*stats1, *stats2), rel=1e-12)
    tf = fid_statistics_to_metric(
        dict(zip(("mu", "sigma"), stats1, strict=True)),
        dict(zip(("mu", "sigma"), stats2, strict=True)),
        False,
    )
    tm = float(_compute_fid(*(torch.from_numpy(a) for a in (*stats1, *stats2))))
    rel = 1e-6 if n > d else 1e-5  # sqrt of near-zero eigenvalues of singular products is ill-conditioned
    assert ours == pytest.approx(tf["frechet_inception_distance"], rel=rel)
    assert ours == pytest.approx(tm, rel=rel)
    assert ours == pytest.approx(_scipy_fid(*stats1, *stats2), rel=rel)


def test_fid_known_answers():
    x = _features(500, 16, 3)
    assert abs(fid(x, x)) < 1e-8
    # Same covariance, mean shifted by 2 along every axis: FID = |shift|^2 = 4 * D exactly.
    assert fid(x, x + 2.0) == pytest.approx(4 * 16, rel=1e-6)
    # Isotropic Gaussians: FID = |mu1 - mu2|^2 + D (s1 + s2 - 2 sqrt(s1 s2)).
    eye = np.eye(8)
    assert fid_from_stats(np.zeros(8), eye, np.ones(8), 4 * eye) == pytest.approx(8 + 8 * (1 + 4 - 4))


def test_fid_accepts_torch_and_numpy_alike():
    real, fake = _features(200, 8, 4), _features(200, 8, 5, shift=0.5)
    assert fid(torch.from_numpy(real), torch.from_numpy(fake)) == pytest.approx(fid(real, fake), rel=1e-12)


def test_fid_from_stats_shape_error():
    with pytest.raises(
        ValueError, match=r"statistics have inconsistent shapes: mu1 \(4,\), sigma1 \(4, 4\), mu2 \(3,\)"
    ):
        fid_from_stats(np.zeros(4), np.eye(4), np.zeros(3), np.eye(3))


def test_fid_from_stats_rejects_nan():
    sigma = np.eye(3)
    sigma[0, 0] = np.nan
    with pytest.raises(ValueError, match="sigma2 contains NaN or Inf values"):
        fid_from_stats(np.zeros(3), np.eye(3), np.zeros(3), sigma)


def test_feature_stats_needs_two_samples():
    with pytest.raises(ValueError, match="features has 1 sample; a covariance needs at least 2"):
        feature_stats(np.zeros((1, 4)))


def test_nvlabs_protocol_divides_the_covariance_by_n():
    real, fake = _features(50, 6, 3), _features(60, 6, 4, scale=1.2)

    def nvlabs_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # NVlabs' FeatureStats: float64 running sums, cov = sum(x x^T) / N - mean mean^T
        x = x.astype(np.float64)
        mean = x.sum(0) / len(x)
        return mean, x.T @ x / len(x) - np.outer(mean, mean)

    _, sigma = feature_stats(real, ddof=0)
    np.testing.assert_allclose(sigma, nvlabs_stats(real)[1], rtol=1e-10)
    expected = _scipy_fid(*nvlabs_stats(real), *nvlabs_stats(fake))
    assert fid(real, fake, protocol="nvlabs") == pytest.approx(expected, rel=1e-6)
    assert fid(real, fake, protocol="nvlabs") != pytest.approx(fid(real, fake), rel=1e-6)
    with pytest.raises(ValueError, match=r"ddof must be 0 \(divide by N\) or 1 \(divide by N - 1\), got 2"):
        feature_stats(real, ddof=2)
    with pytest.raises(
        ValueError, match=r"unknown FID protocol 'clean-fid'; choose from \['torch-fidelity', 'nvlabs'\]"
    ):
        fid(real, fake, protocol="clean-fid")
