"""The k-NN family (precision/recall, realism, density/coverage, rarity) vs prdc, torch-fidelity and
brute-force numpy references on identical features."""

import contextlib
import io

import numpy as np
import prdc
import pytest
import torch
from torch_fidelity.metric_prc import prc_features_to_metric

from ops import cpu_tuning
from studio.metrics.functional import (
    RealManifold,
    density_coverage,
    knn,
    knn_metrics,
    precision_recall,
    rarity_score,
    realism_score,
)
from studio.metrics.functional.knn import Augmented, nearest_neighbours


def _prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        return {key: float(value) for key, value in prdc.compute_prdc(real, fake, k).items()}


def _torch_fidelity_pr(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    out = prc_features_to_metric(
        torch.from_numpy(fake), torch.from_numpy(real), prc_neighborhood=k, prc_batch_size=10000,
        save_cpu_ram=False, verbose=False,
    )  # fmt: skip
    return {"precision": out["precision"], "recall": out["recall"]}


def _brute_radii(x: np.ndarray, k: int) -> np.ndarray:
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, k - 1]


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    return rng.standard_normal((700, 12)), rng.standard_normal((600, 12)) * 1.1 + 0.2


@pytest.mark.parametrize("block_size", [None, 128])
def test_prdc_parity_float64(sets, block_size):
    real, fake = sets
    ours = knn_metrics(real, fake, ("precision", "recall", "density", "coverage"), k_pr=5, k_dc=5,
                       strict=True, dtype="float64", block_size=block_size)  # fmt: skip
    ref = _prdc(real, fake, 5)
    assert ours == pytest.approx(ref, abs=1e-12)


def test_prdc_parity_float32(sets):
    real, fake = (x.astype(np.float32) for x in sets)
    ours = knn_metrics(
        real, fake, ("precision", "recall", "density", "coverage"), k_pr=5, k_dc=5, strict=True
    )
    # float32 distances may flip a membership that sits within round-off of a radius: allow one.
    assert ours == pytest.approx(_prdc(real, fake, 5), abs=1.0 / 600 + 1e-12)


def test_deep_float32_features_match_prdc_and_brute_force(monkeypatch):
    """300-d float32 on a non-Intel CPU takes the oneDNN matmul path (D >= 254) and 2-3 triangular row
    blocks."""
    monkeypatch.setattr(cpu_tuning, "cpu_vendor", lambda: "AuthenticAMD")
    rng = np.random.default_rng(4)
    real = rng.standard_normal((600, 300)).astype(np.float32)
    fake = (rng.standard_normal((500, 300)) * 1.05 + 0.05).astype(np.float32)
    if torch.backends.mkldnn.is_available():
        assert knn._use_onednn(torch.from_numpy(real))
    ours = knn_metrics(
        real, fake, ("precision", "recall", "density", "coverage"), k_pr=5, k_dc=5, strict=True
    )
    assert ours == _prdc(real, fake, 5)  # boundary samples are decided exactly, as in float64
    got = nearest_neighbours(Augmented(torch.from_numpy(real)), 5, 0)[0].double().sqrt().numpy()
    expected = np.stack([_brute_radii(real.astype(np.float64), k) for k in range(1, 6)], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_torch_fidelity_precision_recall_parity(sets):
    real, fake = sets
    ours = precision_recall(real, fake, k=3, dtype="float64", block_size=100)
    assert ours == pytest.approx(
        _torch_fidelity_pr(real, fake, 3), abs=1e-6
    )  # its values pass through float32


def _lattice() -> tuple[np.ndarray, np.ndarray]:
    """Integer grid: every distance and radius is exact, so `<` and `<=` disagree on real ties."""
    grid = np.array([(x, y) for x in range(6) for y in range(6)], dtype=np.float64)
    fake = np.array([(-1, 1), (-1, 2), (-1, 3), (-1, 4), (2.5, 2.5), (10, 10)], dtype=np.float64)
    return grid, fake


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_ties_strict_matches_prdc_and_closed_matches_torch_fidelity(dtype):
    real, fake = _lattice()
    closed = precision_recall(real, fake, k=3, dtype=dtype)
    strict = precision_recall(real, fake, k=3, strict=True, dtype=dtype)
    # (-1, y) lies exactly on the radius-1 ball of (0, y): inside only for the closed ball.
    assert closed["precision"] == pytest.approx(5 / 6)
    assert strict["precision"] == pytest.approx(1 / 6)
    assert closed == pytest.approx(_torch_fidelity_pr(real, fake, 3), abs=1e-7)
    ref = _prdc(real, fake, 3)
    assert strict == pytest.approx({"precision": ref["precision"], "recall": ref["recall"]}, abs=1e-12)
    dc = density_coverage(real, fake, k=3, strict=True, dtype=dtype)
    assert dc == pytest.approx({"density": ref["density"], "coverage": ref["coverage"]}, abs=1e-12)


def test_realism_and_rarity_match_brute_force(sets):
    real, fake = sets
    radius = _brute_radii(real, 3)
    dist = np.sqrt(((fake[:, None] - real[None]) ** 2).sum(-1))
    kept = radius <= np.percentile(radius, 50)
    np.testing.assert_allclose(
        realism_score(real, fake, dtype="float64"), (radius[kept] / dist[:, kept]).max(1), rtol=1e-10
    )
    np.testing.assert_allclose(realism_score(real, fake), (radius[kept] / dist[:, kept]).max(1), rtol=1e-4)

    inside = dist <= radius[None]
    expected = np.where(inside.any(1), np.where(inside, radius[None], np.inf).min(1), np.nan)
    for block_size in (None, 64):
        out = rarity_score(real, fake, k=3, dtype="float64", block_size=block_size)
        np.testing.assert_allclose(out["scores"], expected, rtol=1e-10)  # NaN positions must agree too
        assert out["num_outside"] == int((~inside.any(1)).sum()) > 0
        assert out["mean"] == pytest.approx(np.nanmean(expected))


def test_small_cache_blocks_match_prdc(sets, monkeypatch):
    """Auto CPU blocks are sized to the cache; with a tiny one every pass runs over many row blocks."""
    monkeypatch.setattr(knn, "knn_block_elements", lambda: 4096)
    assert knn.block_shape(0, 600, 700) == (5, 700)
    assert knn.symmetric_row_block(700, 5) == 320  # top-k's partial-sort threshold, 64 k
    real, fake = sets
    ours = knn_metrics(real, fake, ("precision", "recall", "density", "coverage"), k_pr=5, k_dc=5,
                       strict=True, dtype="float64")  # fmt: skip
    assert ours == pytest.approx(_prdc(real, fake, 5), abs=1e-12)


def test_largest_cpu_cache_is_read_from_sysfs(tmp_path, monkeypatch):
    for index, size in enumerate(["48K", "1024K", "16M", "garbage"]):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(size + "\n")
    assert cpu_tuning.largest_cpu_cache_bytes(tmp_path) == 16 << 20
    assert cpu_tuning.largest_cpu_cache_bytes(tmp_path / "missing") == cpu_tuning.FALLBACK_CACHE_BYTES
    (tmp_path / "index9").mkdir()
    (tmp_path / "index9" / "size").write_text("307200K\n")  # a shared L3 counts as 32 MiB at most
    assert cpu_tuning.largest_cpu_cache_bytes(tmp_path) == cpu_tuning.CACHE_BYTES_MAX == 32 << 20
    for function in (cpu_tuning.knn_block_elements, cpu_tuning.upfirdn2d_chunk_elements):
        function.cache_clear()
    monkeypatch.setattr(cpu_tuning, "largest_cpu_cache_bytes", lambda: 32 << 20)
    # The sizes measured on the 32 MiB development machine: 16 MiB k-NN blocks, 4 MiB upfirdn2d chunks.
    assert cpu_tuning.knn_block_elements() == 1 << 22
    assert cpu_tuning.upfirdn2d_chunk_elements() == 1 << 20
    for function in (cpu_tuning.knn_block_elements, cpu_tuning.upfirdn2d_chunk_elements):
        function.cache_clear()


def test_onednn_products_only_off_intel(tmp_path, monkeypatch):
    (tmp_path / "intel").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n")
    assert cpu_tuning.cpu_vendor.__wrapped__(tmp_path / "intel") == "GenuineIntel"
    assert cpu_tuning.cpu_vendor.__wrapped__(tmp_path / "missing") == ""
    monkeypatch.setattr(cpu_tuning, "cpu_vendor", lambda: "GenuineIntel")
    assert cpu_tuning.knn_onednn_min_depth() == float("inf")
    monkeypatch.setattr(cpu_tuning, "cpu_vendor", lambda: "AuthenticAMD")
    assert cpu_tuning.knn_onednn_min_depth() == 256


def test_knn_radii_match_brute_force_with_duplicates():
    x = np.random.default_rng(1).standard_normal((300, 5))
    x[10] = x[20]  # a duplicate is a neighbour at distance 0
    expected = np.stack([_brute_radii(x, k) for k in (1, 2, 3, 4)], axis=1) ** 2
    for block_size in (0, 64, 1000):
        got = nearest_neighbours(Augmented(torch.from_numpy(x)), 4, block_size)[0].numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert RealManifold(x, k_max=4).radii(1)[10] == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("length", [1279, 1280, 1300, 5000])
def test_row_smallest_k_equals_topk_with_ties_and_tails(length):
    x = torch.from_numpy(np.random.default_rng(5).standard_normal((6, length)).astype(np.float32))
    x[0] = 1.0  # a row of ties
    x[:, 7] = -0.5  # a tie shared by every row
    x[1, -1] = -10.0  # the minimum in the partial tail chunk
    x[2, ::97] = float("inf")
    for k in (1, 3, 5):
        values, index = knn.row_smallest_k(x, k)
        assert torch.equal(values, x.topk(k, dim=1, largest=False).values)
        assert torch.equal(x.gather(1, index), values)


def test_real_manifold_reuse_equals_one_shot(sets):
    real, fake = sets
    manifold = RealManifold(real, k_max=5)
    shared = knn_metrics(manifold, fake)
    one_shot = knn_metrics(real, fake)
    for key in ("precision", "recall", "density", "coverage", "rarity_num_outside"):
        assert shared[key] == one_shot[key]
    np.testing.assert_array_equal(shared["realism"], one_shot["realism"])
    np.testing.assert_allclose(manifold.radii(3), _brute_radii(real, 3), rtol=1e-5)
    with pytest.raises(ValueError, match=r"k=6 is outside the radii computed for this RealManifold \(1..5\)"):
        manifold.radii(6)


def test_identical_and_disjoint_sets():
    x = np.random.default_rng(2).standard_normal((400, 8)).astype(np.float32)
    same = knn_metrics(x, x)
    assert (same["precision"], same["recall"], same["coverage"]) == (1.0, 1.0, 1.0)
    assert same["rarity_num_outside"] == 0
    assert np.mean(same["realism"] >= 1) >= 0.5
    far = knn_metrics(x, x + 100.0)
    assert (far["precision"], far["recall"], far["density"], far["coverage"]) == (0.0, 0.0, 0.0, 0.0)
    assert far["rarity_num_outside"] == 400 and np.isnan(far["rarity"]).all()
    assert far["realism"].max() < 0.1


def test_mode_dropping_lowers_recall_and_coverage_not_precision():
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((8, 4)) * 20  # 8 well-separated modes in 4-d

    def sample(modes, n_per_mode):
        return np.concatenate([c + rng.standard_normal((n_per_mode, 4)) for c in centers[list(modes)]])

    real = sample(range(8), 100)
    full = knn_metrics(real, sample(range(8), 100))
    dropped = knn_metrics(real, sample(range(4), 200))
    assert full["precision"] > 0.9 and full["recall"] > 0.9 and full["coverage"] > 0.95
    assert dropped["precision"] > 0.9 and dropped["density"] > 0.9
    assert 0.4 < dropped["recall"] < 0.55 and 0.45 < dropped["coverage"] < 0.55


def test_unknown_metric_name(sets):
    with pytest.raises(ValueError, match=r"unknown k-NN metrics \['fid'\]; choose from \['precision', "):
        knn_metrics(*sets, metrics=("precision", "fid"))
    with pytest.raises(ValueError, match=r"no k-NN metrics requested; choose from \['precision', "):
        knn_metrics(*sets, metrics=())


@pytest.mark.cuda
def test_gpu_matches_cpu(sets):
    real, fake = (torch.from_numpy(x).float() for x in sets)
    cpu = knn_metrics(real, fake, k_pr=5, k_dc=5, k_rarity=5, strict=True)
    gpu = knn_metrics(real.cuda(), fake.cuda(), k_pr=5, k_dc=5, k_rarity=5, strict=True, block_size=256)
    # Decisions near a ball's boundary use exact distances, the same on both devices.
    for key in ("precision", "recall", "density", "coverage", "rarity_num_outside"):
        assert gpu[key] == cpu[key], key
    np.testing.assert_array_equal(gpu["rarity"], cpu["rarity"])
    np.testing.assert_allclose(gpu["realism"], cpu["realism"], rtol=1e-3)


def test_tf32_setting_is_restored(sets):
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    knn_metrics(*sets, metrics=("precision",))
    knn_metrics(*sets, metrics=("precision",), allow_tf32=True)
    assert matmul.fp32_precision == before


def test_density_coverage_alone_with_a_k_below_k_pr():
    """Only the radii of the requested metrics' k exist (here 1..2, below the default k_pr=3)."""
    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((4, 4)), rng.standard_normal((7, 4))
    ours = knn_metrics(real, fake, metrics=["density", "coverage"], k_dc=2, strict=True, dtype="float64")
    expected = _prdc(real, fake, 2)
    assert ours == pytest.approx({key: expected[key] for key in ("density", "coverage")}, abs=1e-12)
    manifold = RealManifold(real, k_max=2)
    assert manifold.evaluate(fake, ["density", "coverage"], k_dc=2)["coverage"] == pytest.approx(
        density_coverage(real, fake, k=2)["coverage"]
    )
