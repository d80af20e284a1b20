"""One clear error per kind of bad input, with the exact message, across the functional metrics."""

import re

import numpy as np
import pytest
import torch

import studio.metrics.functional as F

GOOD = np.random.default_rng(0).standard_normal((20, 4))


def _pairwise_calls():
    return [
        ("fid", lambda r, f: F.fid(r, f)),
        ("kid", lambda r, f: F.kid(r, f, num_subsets=2)),
        ("precision_recall", lambda r, f: F.precision_recall(r, f)),
        ("density_coverage", lambda r, f: F.density_coverage(r, f)),
        ("knn_metrics", lambda r, f: F.knn_metrics(r, f)),
        ("prd", lambda r, f: F.prd(r, f)),
        ("abauth", lambda r, f: F.alpha_precision_beta_recall_authenticity(r, f)),
    ]


@pytest.mark.parametrize("name, call", _pairwise_calls())
def test_wrong_ndim(name, call):
    with pytest.raises(
        ValueError, match=re.escape("real must be a 2-D array of shape (N, D); got shape (20,)")
    ):
        call(GOOD[:, 0], GOOD)


@pytest.mark.parametrize("name, call", _pairwise_calls())
def test_empty_set(name, call):
    msg = "fake is empty (shape (0, 4)); need at least one sample with at least one feature"
    with pytest.raises(ValueError, match=re.escape(msg)):
        call(GOOD, GOOD[:0])


@pytest.mark.parametrize("name, call", _pairwise_calls())
def test_mismatched_dimensions(name, call):
    msg = (
        "real and fake features have different dimensions (4 vs 3); "
        "extract both sets with the same backbone and layer"
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        call(GOOD, GOOD[:, :3])


@pytest.mark.parametrize("name, call", _pairwise_calls())
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features(name, call, bad):
    fake = GOOD.copy()
    fake[3, 1] = bad
    msg = (
        "fake contains 1 NaN or Inf values; check the feature extractor "
        "(fp16 overflow, broken images or a diverged generator)"
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        call(GOOD, torch.from_numpy(fake))


def test_too_few_samples_for_k():
    msg = (
        "real has 3 samples but the k=3 nearest-neighbour radius needs at least 4; "
        "use more samples or a smaller k"
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        F.precision_recall(GOOD[:3], GOOD, k=3)
    msg = (
        "fake has 5 samples but the k=5 nearest-neighbour radius needs at least 6; "
        "use more samples or a smaller k"
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        F.precision_recall(GOOD, GOOD[:5], k=5)
    with pytest.raises(ValueError, match=re.escape("k must be a positive integer; got k=0")):
        F.density_coverage(GOOD, GOOD, k=0)


def test_wrong_type_and_dtype():
    with pytest.raises(
        TypeError, match=re.escape("real must be a torch.Tensor or numpy.ndarray of shape (N, D); got list")
    ):
        F.fid(GOOD.tolist(), GOOD)
    with pytest.raises(
        ValueError,
        match=re.escape("dtype must be a floating dtype such as 'float32' or 'float64'; got 'int8'"),
    ):
        F.knn_metrics(GOOD, GOOD, dtype="int8")


def test_integer_features_are_accepted():
    ints = np.arange(80).reshape(20, 4) % 7
    assert F.precision_recall(ints, ints)["precision"] == 1.0
