"""PRD (Sajjadi et al. 2018) and alpha-precision / beta-recall / authenticity (Alaa et al. 2022)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_info

from studio.metrics.functional import alpha_precision_beta_recall_authenticity, prd, prd_f_beta
from studio.metrics.functional.prd import prd_curve


def test_prd_curve_hand_computed():
    fake, real = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    precision, recall = prd_curve(fake, real, num_angles=5)
    slopes = np.tan(np.linspace(1e-10, np.pi / 2 - 1e-10, 5))
    expected = np.array([min(real[0] * s, 0.5) * 2 + 0.0 for s in slopes])
    np.testing.assert_allclose(precision, np.clip(expected, 0, 1), rtol=1e-12)
    np.testing.assert_allclose(recall, np.clip(expected / slopes, 0, 1), rtol=1e-12)
    # Max recall is the real mass on clusters the fake set reaches; max precision likewise.
    assert recall.max() == pytest.approx(0.5) and precision.max() == pytest.approx(1.0)


def test_prd_identical_and_disjoint_sets():
    x = np.random.default_rng(0).standard_normal((300, 6))
    precision, recall = prd(x, x, num_clusters=10, num_angles=101, num_runs=2)
    assert precision.shape == recall.shape == (101,)
    f8, f1_8 = prd_f_beta(precision, recall)
    assert f8 == pytest.approx(1.0, abs=1e-6) and f1_8 == pytest.approx(1.0, abs=1e-6)
    precision, recall = prd(x, x + 100.0, num_clusters=10, num_angles=101, num_runs=2)
    assert precision.max() == 0.0 and recall.max() == 0.0


def test_prd_is_seeded():
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((200, 4)), rng.standard_normal((200, 4)) + 0.5
    a = prd(real, fake, num_runs=2, num_angles=51, seed=3)
    b = prd(real, fake, num_runs=2, num_angles=51, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_prd_runs_side_by_side_give_the_curves_of_seeded_sklearn_runs():
    """Each run r is scikit-learn's MiniBatchKMeans(20, n_init=10, random_state=seed + r) on the union
    (fake first), whatever thread ran it; the BLAS thread settings are as before."""
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((300, 8)), rng.standard_normal((300, 8)) + 0.3
    blas_before = [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info()]
    precision, recall = prd(real, fake, num_runs=4, num_angles=51, seed=5)
    assert [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info()] == blas_before
    slopes = np.tan(np.linspace(1e-10, np.pi / 2 - 1e-10, 51))
    expected = []
    for run in range(4):
        labels = MiniBatchKMeans(20, n_init=10, random_state=5 + run).fit(np.vstack([fake, real])).labels_
        fake_hist, real_hist = (np.bincount(half, minlength=20) / 300 for half in np.split(labels, 2))
        p = np.minimum(real_hist[None] * slopes[:, None], fake_hist[None]).sum(axis=1)
        expected.append((np.clip(p, 0, 1), np.clip(p / slopes, 0, 1)))
    np.testing.assert_allclose(precision, np.mean([e[0] for e in expected], axis=0), rtol=1e-12, atol=0)
    np.testing.assert_allclose(recall, np.mean([e[1] for e in expected], axis=0), rtol=1e-12, atol=0)


_THREADS_IN_FITS = """
import importlib, json
import numpy as np
from threadpoolctl import threadpool_info
prd = importlib.import_module("studio.metrics.functional.prd")
before = {lib["filepath"] for lib in threadpool_info()}
seen, cluster = [], prd._cluster_histograms
def spy(*args):
    seen.append([(lib["filepath"], lib["internal_api"], lib["num_threads"]) for lib in threadpool_info()])
    return cluster(*args)
prd._cluster_histograms, prd.available_cores = spy, lambda: 8
rng = np.random.default_rng(3)
prd.prd(rng.standard_normal((60, 4)), rng.standard_normal((60, 4)), num_runs=3, num_angles=11)
print(json.dumps({"before": sorted(before), "seen": seen}))
"""


def test_prd_fits_run_with_single_threaded_blas_and_a_share_of_the_cores():
    """Side by side, each fit's OpenMP loops get cores // fits threads and every BLAS one thread, also
    the libraries scikit-learn loads on first use (a fresh process): a fit restoring a multi-threaded
    BLAS inside another fit's OpenMP loop made OpenBLAS warn that it may hang."""
    out = subprocess.run([sys.executable, "-c", _THREADS_IN_FITS], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert len(report["seen"]) == 3
    for libraries in report["seen"]:
        assert {path for path, _, _ in libraries} - set(report["before"]), "scikit-learn's libraries"
        assert {threads for _, api, threads in libraries if api in ("openblas", "mkl", "blis")} == {1}
        assert {threads for _, api, threads in libraries if api == "openmp"} == {8 // 3}
    assert "OpenBLAS Warning" not in out.stderr


def test_prd_f_beta_formula_and_errors():
    precision, recall = np.array([1.0, 0.5, 0.2]), np.array([0.1, 0.5, 0.9])

    def f(b, p, r):
        return (1 + b**2) * p * r / (b**2 * p + r + 1e-10)

    f8, f1_8 = prd_f_beta(precision, recall, beta=8)
    assert f8 == pytest.approx(max(f(8, p, r) for p, r in zip(precision, recall, strict=True)))
    assert f1_8 == pytest.approx(max(f(1 / 8, p, r) for p, r in zip(precision, recall, strict=True)))
    with pytest.raises(ValueError, match=r"precision and recall values must lie in \[0, 1\]"):
        prd_f_beta(np.array([1.5]), np.array([0.5]))
    with pytest.raises(ValueError, match="beta must be positive; got 0"):
        prd_f_beta(precision, recall, beta=0)


def test_prd_unbalanced_sets_error():
    with pytest.raises(ValueError, match=r"PRD expects equally many real and fake samples \(got 10 and 12\)"):
        prd(np.zeros((10, 2)), np.ones((12, 2)))


def _reference_abauth(real: np.ndarray, fake: np.ndarray, steps: int) -> dict:
    """The authors' formulas written out with sklearn NearestNeighbors (identity embedding)."""
    alphas = np.linspace(0, 1, steps)
    center = real.mean(0)
    radii = np.quantile(np.linalg.norm(real - center, axis=1), alphas)
    fake_to_center = np.linalg.norm(fake - center, axis=1)
    real_nn = NearestNeighbors(n_neighbors=2).fit(real).kneighbors(real)[0][:, 1]
    real_to_fake, real_to_fake_idx = (
        a[:, 0] for a in NearestNeighbors(n_neighbors=1).fit(fake).kneighbors(real)
    )
    closest_d = np.linalg.norm(fake[real_to_fake_idx] - fake.mean(0), axis=1)
    closest_radii = np.quantile(closest_d, alphas)
    alpha_precision = np.array([np.mean(fake_to_center <= r) for r in radii])
    beta_recall = np.array([np.mean((real_to_fake <= real_nn) & (closest_d <= r)) for r in closest_radii])
    fake_to_real, fake_to_real_idx = (
        a[:, 0] for a in NearestNeighbors(n_neighbors=1).fit(real).kneighbors(fake)
    )
    step = alphas[1] - alphas[0]
    return {
        "alpha_precision_curve": alpha_precision,
        "beta_recall_curve": beta_recall,
        "delta_precision_alpha": 1 - 2 * np.sum(np.abs(alphas - alpha_precision)) * step,
        "delta_recall_beta": 1 - 2 * np.sum(np.abs(alphas - beta_recall)) * step,
        "authenticity": np.mean(fake_to_real > real_nn[fake_to_real_idx]),
    }


@pytest.mark.parametrize("block_size", [None, 50])
def test_abauth_matches_reference_formulas(block_size):
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((250, 6)), rng.standard_normal((230, 6)) * 1.2 + 0.3
    ours = alpha_precision_beta_recall_authenticity(real, fake, num_steps=30, block_size=block_size)
    ref = _reference_abauth(real, fake, 30)
    np.testing.assert_allclose(ours["alphas"], np.linspace(0, 1, 30))
    for key, value in ref.items():
        np.testing.assert_allclose(ours[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


def test_abauth_identical_sets_are_not_authentic():
    x = np.random.default_rng(3).standard_normal((200, 5))
    out = alpha_precision_beta_recall_authenticity(x, x)
    assert out["authenticity"] == 0.0
    assert out["delta_precision_alpha"] > 0.9
    np.testing.assert_allclose(out["alpha_precision_curve"][1:-1], out["alphas"][1:-1], atol=1 / 200 + 1e-12)
