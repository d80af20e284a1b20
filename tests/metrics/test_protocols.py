"""`protocol=`: each reference convention against the reference package, or the reference formula
written out, on identical inputs."""

import numpy as np
import pytest
import torch
from torch_fidelity.metric_isc import isc_features_to_metric

from studio.metrics.compute import compute_metrics, effective_options
from studio.metrics.functional import (
    alpha_precision_beta_recall_authenticity,
    fid,
    inception_score,
    knn_metrics,
    nvlabs_precision_recall,
    precision_recall,
    realism_score,
)


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((900, 32)).astype(np.float32)
    fake = (rng.standard_normal((800, 32)) * 1.05 + 0.1).astype(np.float32)
    return real, fake


def _nvlabs_reference(
    real: np.ndarray, fake: np.ndarray, k: int, mode: str | None = None
) -> dict[str, float]:
    """NVlabs' pr50k3 arithmetic on one batch (fewer than 10000 samples): float16 features and cdist
    distances, radius = (k+1)-th row value taken in float32 and cast back, membership `<=` in float16.
    `mode`: torch.cdist's compute_mode (its default takes the matmul formula above 25 rows and columns)."""
    mode = mode or "use_mm_for_euclid_dist_if_necessary"

    def share_inside(manifold: torch.Tensor, probes: torch.Tensor) -> float:
        radii = (
            torch.cdist(manifold[None], manifold[None], compute_mode=mode)[0].float().kthvalue(k + 1, dim=1)
        )
        inside = torch.cdist(probes[None], manifold[None], compute_mode=mode)[0] <= radii.values.half()
        return float(inside.any(dim=1).float().mean())

    real16, fake16 = torch.from_numpy(real).half(), torch.from_numpy(fake).half()
    return {"precision": share_inside(real16, fake16), "recall": share_inside(fake16, real16)}


def test_nvlabs_precision_recall_is_the_float16_reference(sets):
    real, fake = sets
    nvlabs = precision_recall(real, fake, k=3, protocol="nvlabs")
    assert nvlabs == _nvlabs_reference(real, fake, 3)
    exact = precision_recall(real, fake, k=3)
    assert nvlabs != exact  # float16 rounding moves boundary samples ...
    assert nvlabs == pytest.approx(exact, abs=0.02)  # ... a few of them
    with pytest.raises(ValueError, match="protocol='nvlabs' compares with <= as NVlabs' code does"):
        precision_recall(real, fake, strict=True, protocol="nvlabs")


def test_nvlabs_realism_is_the_official_squared_ratio(sets):
    real, fake = sets
    fake = np.concatenate([real[:50], fake])  # copies: distance 0, ratio radius^2 / 1e-5
    r64, f64 = real.astype(np.float64), fake.astype(np.float64)
    rr = ((r64[:, None] - r64[None]) ** 2).sum(-1)
    radius_sq = np.sort(rr, axis=1)[:, 3]  # index 0 is the sample itself, as np.partition in the code
    radius_sq[radius_sq > np.percentile(radius_sq, 50)] = 0  # clamp_to_percentile=50: dropped balls give 0
    dist_sq = ((f64[:, None] - r64[None]) ** 2).sum(-1)
    expected = (radius_sq[None] / (dist_sq + 1e-5)).max(axis=1)
    got = realism_score(real, fake, k=3, protocol="nvlabs")
    np.testing.assert_allclose(got, expected, rtol=2e-5)
    paper = realism_score(real, fake, k=3)
    np.testing.assert_allclose(got[50:], paper[50:] ** 2, rtol=1e-4)  # the square of the paper's ratio
    assert np.isfinite(got).all() and np.isinf(paper[:50]).any()  # the official eps keeps copies finite


def test_knn_protocol_keeps_density_coverage_rarity(sets):
    real, fake = sets
    paper = knn_metrics(real, fake, ("density", "coverage", "rarity"))
    nvlabs = knn_metrics(real, fake, ("density", "coverage", "rarity"), protocol="nvlabs")
    assert paper["density"] == nvlabs["density"] and paper["coverage"] == nvlabs["coverage"]
    np.testing.assert_array_equal(paper["rarity"], nvlabs["rarity"])


def test_inception_score_protocols_are_torch_fidelity_with_and_without_shuffle():
    logits = torch.from_numpy(np.random.default_rng(1).standard_normal((500, 10)) * 3)
    for protocol, shuffle in (("torch-fidelity", True), ("unshuffled", False)):
        ref = isc_features_to_metric(logits, splits=10, shuffle=shuffle, rng_seed=2020)
        ours = inception_score(logits, splits=10, protocol=protocol)
        assert ours["is_mean"] == pytest.approx(ref["inception_score_mean"], rel=1e-12)
        assert ours["is_std"] == pytest.approx(ref["inception_score_std"], rel=1e-9)
    shuffled, unshuffled = (
        inception_score(logits, protocol=p)["is_mean"] for p in ("torch-fidelity", "unshuffled")
    )
    assert shuffled != unshuffled


def test_authors_authenticity_needs_at_most_as_many_fakes_as_reals(sets):
    real, fake = sets
    with pytest.raises(
        ValueError, match="protocol='authors' indexes the 800 real nearest-neighbour distances"
    ):
        alpha_precision_beta_recall_authenticity(fake, real, protocol="authors")
    paper = alpha_precision_beta_recall_authenticity(real, fake)["authenticity"]
    authors = alpha_precision_beta_recall_authenticity(real, fake, protocol="authors")["authenticity"]
    assert paper != authors


def test_protocols_reach_the_suite_and_bad_ones_fail_before_any_work(sets):
    real, fake = sets
    real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)
    options = {"fid": {"protocol": "nvlabs"}, "knn_metrics": {"protocol": "nvlabs"}}
    out = compute_metrics({"pool": real_t}, {"pool": fake_t}, ["fid", "pr"], options)
    assert out["fid"] == fid(real, fake, protocol="nvlabs") != fid(real, fake)
    assert out["precision"] == precision_recall(real, fake, protocol="nvlabs")["precision"]
    assert effective_options(["fid"], options)["fid"] == {"protocol": "nvlabs"}
    for fn, metric in (("fid", "fid"), ("knn_metrics", "pr"), ("inception_score", "is")):
        with pytest.raises(ValueError, match=rf"{fn}\(\) has no protocol 'clean-fid'; valid: \["):
            effective_options([metric], {fn: {"protocol": "clean-fid"}})


def test_nvlabs_batching_and_tiny_sets(sets):
    real, fake = sets
    # Columns cut into 4 zero-padded batches of 225, rows in batches of 200: the same arithmetic per entry.
    batched = nvlabs_precision_recall(
        torch.from_numpy(real), torch.from_numpy(fake), 3, row_batch=200, col_batch=300
    )
    assert batched == _nvlabs_reference(real, fake, 3)
    # PyTorch has no float16 kernel for cdist's direct formula (<= 25 rows) on the CPU: the matmul one.
    tiny = precision_recall(real[:20], fake[:20], k=3, protocol="nvlabs")
    assert tiny == _nvlabs_reference(real[:20], fake[:20], 3, "use_mm_for_euclid_dist")


def test_protocol_conflicts_fail_before_any_work():
    from studio.metrics.compute import check_sample_counts

    with pytest.raises(
        ValueError, match="protocol 'nvlabs' compares with <= .NVlabs' code.; drop strict=true"
    ):
        effective_options(["pr"], {"knn_metrics": {"protocol": "nvlabs", "strict": True}})
    authors = {"alpha_precision_beta_recall_authenticity": {"protocol": "authors"}}
    with pytest.raises(ValueError, match="metric 'abauth' needs at most as many fake samples as real ones"):
        check_sample_counts(["abauth"], authors, n_real=100, n_fake=101)
    check_sample_counts(["abauth"], authors, n_real=100, n_fake=100)
