"""Exact ties: fakes that copy real samples, repeated points and lattice features decide every boundary
comparison as the references do (prdc, scipy brute force), in float32 and float64, whatever the blocks."""

import contextlib
import io
import math

import numpy as np
import prdc
import pytest
import torch
from scipy.spatial.distance import cdist

from studio.metrics.functional import alpha_precision_beta_recall_authenticity, knn_metrics
from studio.metrics.functional.exact import pair_sq_distances

FAMILY = ("precision", "recall", "density", "coverage")


def _prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        return {key: float(value) for key, value in prdc.compute_prdc(real, fake, k).items()}


def _brute(real: np.ndarray, fake: np.ndarray, k: int, strict: bool, percentile: float = 50.0) -> dict:
    """Every k-NN metric from scipy's per-pair squared distances (float64): identical pairs of rows
    give identical values, so ties are exact."""
    real64, fake64 = real.astype(np.float64), fake.astype(np.float64)
    rr, ff, fr = (
        cdist(a, b, "sqeuclidean") for a, b in ((real64, real64), (fake64, fake64), (fake64, real64))
    )
    np.fill_diagonal(rr, np.inf)
    np.fill_diagonal(ff, np.inf)
    real_radius, fake_radius = np.sort(rr, axis=1)[:, k - 1], np.sort(ff, axis=1)[:, k - 1]
    inside = fr < real_radius[None] if strict else fr <= real_radius[None]
    covered_by_fake = fr < fake_radius[:, None] if strict else fr <= fake_radius[:, None]
    kept = np.sqrt(real_radius) <= np.percentile(np.sqrt(real_radius), percentile)
    with np.errstate(divide="ignore"):
        realism = np.sqrt((real_radius[kept][None] / fr[:, kept]).max(axis=1))
    smallest = np.where(inside, real_radius[None], np.inf).min(axis=1)
    return {
        "precision": inside.any(axis=1).mean(),
        "recall": covered_by_fake.any(axis=0).mean(),
        "density": inside.sum(axis=1).mean() / k,
        "coverage": inside.any(axis=0).mean(),
        "realism": realism,
        "rarity": np.where(np.isinf(smallest), np.nan, np.sqrt(smallest)),
    }


def _memorised(n: int = 1000, d: int = 16, copies: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, d)).astype(np.float32)
    fake = np.concatenate([real[:copies], rng.standard_normal((n - copies, d)).astype(np.float32)])
    return real, fake


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("block_size", [None, 64, 300])
def test_copied_fakes_match_prdc(dtype, block_size):
    real, _ = _memorised()
    out = knn_metrics(
        real, real.copy(), FAMILY, k_pr=5, k_dc=5, strict=True, dtype=dtype, block_size=block_size
    )
    assert out == _prdc(real, real.copy(), 5) == dict.fromkeys(FAMILY, 1.0)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _on(device: str, *arrays: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(x).to(device) for x in arrays]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_half_memorised_fakes_match_prdc_and_brute_force(dtype, device):
    real, fake = _memorised()
    for strict in (True, False):
        out = knn_metrics(*_on(device, real, fake), k_pr=3, k_dc=3, k_rarity=3, strict=strict, dtype=dtype)
        expected = _brute(real, fake, 3, strict)
        for name in FAMILY:
            assert out[name] == expected[name], (name, strict)
        assert np.array_equal(np.isnan(out["rarity"]), np.isnan(expected["rarity"]))
        np.testing.assert_allclose(out["rarity"], expected["rarity"], rtol=1e-6)
        # Copies of kept reals have an infinite realism; the rest match the formula.
        assert np.array_equal(np.isinf(out["realism"]), np.isinf(expected["realism"]))
        assert np.isinf(out["realism"]).sum() > 200
        np.testing.assert_allclose(out["realism"], expected["realism"], rtol=1e-5)
    ref = _prdc(real, fake, 5)
    out = knn_metrics(*_on(device, real, fake), FAMILY, k_pr=5, k_dc=5, strict=True, dtype=dtype)
    assert out == ref


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_repeated_real_points_match_brute_force(dtype, device):
    rng = np.random.default_rng(3)
    real = rng.standard_normal((400, 8)).astype(np.float32)
    real[200:260] = real[100:160]  # duplicates: neighbours at distance 0
    real[300:303] = real[5]  # a point repeated 4 times: its 3-NN radius is 0
    fake = np.concatenate([real[90:170], real[:3], rng.standard_normal((300, 8)).astype(np.float32)])
    for strict in (True, False):
        out = knn_metrics(
            *_on(device, real, fake), k_pr=3, k_dc=5, k_rarity=3, strict=strict, dtype=dtype, block_size=64
        )
        for name, k in (("precision", 3), ("recall", 3), ("density", 5), ("coverage", 5)):
            assert out[name] == _brute(real, fake, k, strict)[name], (name, strict)
        expected = _brute(real, fake, 3, strict)
        assert np.array_equal(np.isnan(out["rarity"]), np.isnan(expected["rarity"]))
        np.testing.assert_allclose(out["rarity"], expected["rarity"], rtol=1e-6, atol=0)
    ours = knn_metrics(*_on(device, real, fake), FAMILY, k_pr=5, k_dc=5, strict=True, dtype=dtype)
    assert _prdc(real, fake, 5) == ours


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lattice_features_with_many_ties_match_brute_force(dtype):
    rng = np.random.default_rng(4)
    real = rng.integers(0, 4, (500, 6)).astype(np.float32) + 1000.0  # far from 0: centering must not matter
    fake = rng.integers(0, 4, (400, 6)).astype(np.float32) + 1000.0
    for strict in (True, False):
        out = knn_metrics(real, fake, FAMILY, k_pr=3, k_dc=5, strict=strict, dtype=dtype)
        for name, k in (("precision", 3), ("recall", 3), ("density", 5), ("coverage", 5)):
            assert out[name] == _brute(real, fake, k, strict)[name], (name, strict)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_authenticity_of_copies_matches_brute_force(dtype):
    real, fake = _memorised(600, 12, copies=300, seed=5)
    real[500:520] = real[:20]  # copied fakes whose real has a duplicate: distance 0 is not > 0
    fr = cdist(fake.astype(np.float64), real.astype(np.float64), "sqeuclidean")
    rr = cdist(real.astype(np.float64), real.astype(np.float64), "sqeuclidean")
    np.fill_diagonal(rr, np.inf)
    real_nn, nearest_real = rr.min(axis=1), fr.argmin(axis=1)
    paper = np.mean(fr.min(axis=1) > real_nn[nearest_real])
    nearest_fake = fr.argmin(axis=0)
    authors = np.mean(real_nn[nearest_fake] < fr.min(axis=0))
    for block_size in (None, 100):
        got = alpha_precision_beta_recall_authenticity(real, fake, dtype=dtype, block_size=block_size)
        assert got["authenticity"] == paper < 0.5  # no copy is authentic
        got = alpha_precision_beta_recall_authenticity(real, fake, dtype=dtype, protocol="authors")
        assert got["authenticity"] == authors


def test_exact_distances_depend_only_on_the_two_rows():
    rng = np.random.default_rng(6)
    for d in (3, 2048, 3000, 40000):  # 3000: padded to 4096, in several reused chunks of 64 pairs
        x = torch.from_numpy(rng.standard_normal((40, d)).astype(np.float32))
        i, j = torch.from_numpy(rng.integers(0, 40, 300)), torch.from_numpy(rng.integers(0, 40, 300))
        batch = pair_sq_distances(x, x, i, j)
        assert torch.equal(batch, pair_sq_distances(x, x, j, i))  # symmetric
        order = torch.from_numpy(rng.permutation(300))
        assert torch.equal(pair_sq_distances(x, x, i[order], j[order]), batch[order])  # other positions
        for p in (0, 7, 299):  # alone
            assert torch.equal(pair_sq_distances(x, x, i[p : p + 1], j[p : p + 1]), batch[p : p + 1])
        assert torch.equal(pair_sq_distances(x, x.double(), i, i), torch.zeros(300, dtype=torch.float64))


def test_exact_distances_are_float64_sums_of_exact_squares():
    """Against math.fsum of the float64 squared differences (exactly rounded): a pairwise sum of W
    non-negative terms errs by at most log2(W) unit roundoffs."""
    rng = np.random.default_rng(9)
    for d in (1, 5, 3000):
        a = rng.standard_normal((50, d)).astype(np.float32)
        b = (rng.standard_normal((50, d)) * 10.0 ** rng.integers(-3, 4, (50, 1))).astype(np.float32)
        i, j = rng.integers(0, 50, 200), rng.integers(0, 50, 200)
        got = pair_sq_distances(*(torch.from_numpy(x) for x in (a, b, i, j)))
        squares = (a[i].astype(np.float64) - b[j].astype(np.float64)) ** 2
        expected = np.array([math.fsum(row) for row in squares])
        levels = max(1, math.ceil(math.log2(d)))
        np.testing.assert_allclose(got.numpy(), expected, rtol=levels * 2.0**-53, atol=0)


@pytest.mark.cuda
def test_exact_distances_are_bitwise_the_same_on_a_gpu():
    rng = np.random.default_rng(10)
    for d in (3, 3000, 40000):
        x = torch.from_numpy(rng.standard_normal((40, d)).astype(np.float32))
        i, j = torch.from_numpy(rng.integers(0, 40, 300)), torch.from_numpy(rng.integers(0, 40, 300))
        gpu = pair_sq_distances(x.cuda(), x.cuda(), i, j)
        assert gpu.device.type == "cpu" and torch.equal(gpu, pair_sq_distances(x, x, i, j))


def test_large_offsets_are_centered_before_rounding():
    rng = np.random.default_rng(7)
    real = rng.standard_normal((300, 16)) + 1e4  # float64 input: float32 rounding of 1e4 is 1e-3
    fake = np.concatenate([real[:100], rng.standard_normal((200, 16)) + 1e4])
    out = knn_metrics(real, fake, FAMILY, k_pr=3, k_dc=5)
    for name, k in (("precision", 3), ("recall", 3), ("density", 5), ("coverage", 5)):
        assert out[name] == _brute(real, fake, k, strict=False)[name], name


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_distances_get_their_own_rounding_bound(dtype):
    real, fake = _memorised(400, 8, copies=200, seed=8)
    out = knn_metrics(real, fake, FAMILY, k_pr=3, k_dc=5, dtype=dtype)
    for name, k in (("precision", 3), ("recall", 3), ("density", 5), ("coverage", 5)):
        assert out[name] == _brute(real, fake, k, strict=False)[name], name


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_authenticity_picks_the_exact_nearest_real(dtype):
    rng = np.random.default_rng(9)
    real = (rng.integers(0, 3, (300, 8)) + 300.0).astype(np.float32)  # lattice: many equidistant reals
    fake = (rng.integers(0, 3, (200, 8)) + 300.5).astype(np.float32)
    clusters = np.concatenate([rng.standard_normal((1000, 4)) + 300, rng.standard_normal((1000, 4)) - 300])
    for real_x, fake_x in (
        (real, fake),
        (clusters[::2].astype(np.float32), clusters[1::4].astype(np.float32)),
    ):
        fr = cdist(fake_x.astype(np.float64), real_x.astype(np.float64), "sqeuclidean")
        rr = cdist(real_x.astype(np.float64), real_x.astype(np.float64), "sqeuclidean")
        np.fill_diagonal(rr, np.inf)
        real_nn = rr.min(axis=1)
        paper = np.mean(fr.min(axis=1) > real_nn[fr.argmin(axis=1)])  # argmin: the lowest index on ties
        authors = np.mean(real_nn[fr.argmin(axis=0)] < fr.min(axis=0))
        got = alpha_precision_beta_recall_authenticity(real_x, fake_x, dtype=dtype)
        assert got["authenticity"] == paper
        got = alpha_precision_beta_recall_authenticity(real_x, fake_x, dtype=dtype, protocol="authors")
        assert got["authenticity"] == authors
