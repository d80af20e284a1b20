"""torchmetrics wrappers: same numbers as the functional core, and DDP-style state merging."""

import numpy as np
import pytest
import torch

import studio.metrics.functional as F
from studio.metrics import FeatureMetricSuite, compute_metrics, effective_options
from studio.metrics.compute import check_sample_counts
from studio.metrics.reference import RealReference

ALL = ["fid", "kid", "is", "pr", "dc", "rarity", "prd", "abauth"]
OPTIONS = {"kid": {"num_subsets": 20, "subset_size": 16}, "prd": {"num_runs": 2}}


def _features(n: int, seed: int, shift: float = 0.0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    pool = torch.randn(n, 12, generator=generator) + shift
    return {"pool": pool, "logits": torch.randn(n, 7, generator=generator) * 2}


def _feed(suite: FeatureMetricSuite, features: dict, real: bool, chunks: int) -> None:
    for part in zip(*(value.chunk(chunks) for value in features.values()), strict=True):
        suite.update(dict(zip(features, part, strict=True)), real=real)


def _functional(real: dict, fake: dict) -> dict[str, float]:
    """The same metrics called directly, one function each (independent of the suite's shared k-NN pass)."""
    r, f = real["pool"], fake["pool"]
    out = {"fid": F.fid(r, f)} | F.kid(r, f, **OPTIONS["kid"]) | F.inception_score(fake["logits"])
    out |= F.precision_recall(r, f) | {"realism_median": float(np.median(F.realism_score(r, f)))}
    out |= F.density_coverage(r, f)
    rarity = F.rarity_score(r, f)
    out |= {"rarity_mean": rarity["mean"], "rarity_num_outside": float(rarity["num_outside"])}
    prd_f, prd_f_inv = F.prd_f_beta(*F.prd(r, f, **OPTIONS["prd"]))
    out |= {"prd_f_beta": prd_f, "prd_f_beta_inv": prd_f_inv}
    ab = F.alpha_precision_beta_recall_authenticity(r, f)
    out |= {key: ab[key] for key in ("delta_precision_alpha", "delta_recall_beta", "authenticity")}
    return out


def test_wrapper_equals_functional_core():
    real, fake = _features(40, seed=1), _features(40, seed=2, shift=0.3)
    suite = FeatureMetricSuite(ALL, options=OPTIONS)
    _feed(suite, real, real=True, chunks=3)
    _feed(suite, fake, real=False, chunks=4)
    results = suite.compute()
    expected = _functional(real, fake)
    assert set(results) == set(expected)
    for name, value in expected.items():
        assert results[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    assert results["fid"] > 0 and 0 <= results["precision"] <= 1


def test_state_merge_equals_one_suite_with_all_data():
    """Two 'ranks' merged (torchmetrics merge_state / the DDP gather path) = one suite that saw everything."""
    real_a, real_b = _features(20, seed=3), _features(22, seed=4)
    fake_a, fake_b = _features(19, seed=5, shift=0.5), _features(21, seed=6, shift=0.5)
    metrics = ["fid", "kid", "is", "pr", "dc"]

    def suite_with(reals, fakes):
        suite = FeatureMetricSuite(metrics, options=OPTIONS)
        for features in reals:
            _feed(suite, features, real=True, chunks=2)
        for features in fakes:
            _feed(suite, features, real=False, chunks=2)
        return suite

    combined = suite_with([real_a, real_b], [fake_a, fake_b]).compute()
    rank0, rank1 = suite_with([real_a], [fake_a]), suite_with([real_b], [fake_b])

    # torchmetrics' DDP path: list states are concatenated per rank, all-gathered, flattened in rank order.
    rank1_states = iter([torch.cat(getattr(rank1, name)) for name in rank0._reductions])
    rank0._sync_dist(lambda tensor, group=None: [tensor, next(rank1_states)])
    assert rank0.compute() == combined

    merged = suite_with([real_b], [fake_b])  # merge_state puts the incoming state first
    merged.merge_state(suite_with([real_a], [fake_a]))
    assert merged.compute() == combined
    alone = suite_with([real_a], [fake_a]).compute()
    assert alone["fid"] != combined["fid"]


def test_reference_features_and_errors():
    real, fake = _features(30, seed=7), _features(30, seed=8)
    suite = FeatureMetricSuite(["fid", "pr"], reference=real)
    with (
        pytest.raises(ValueError, match="no fake features were added"),
        pytest.warns(UserWarning, match="before"),
    ):
        suite.compute()
    _feed(suite, fake, real=False, chunks=2)
    assert suite.compute() == compute_metrics(real, fake, ["fid", "pr"])
    with pytest.raises(ValueError, match="update it with fake features only"):
        suite.update(real, real=True)
    with pytest.raises(
        ValueError, match=r"unknown metric name\(s\) 'fdi'; valid: fid, kid, is, pr, dc, rarity"
    ):
        FeatureMetricSuite(["fid", "fdi"])
    with pytest.raises(
        ValueError, match=r"need feature outputs \['logits', 'pool'\]; the batch lacks \['logits'\]"
    ):
        FeatureMetricSuite(["fid", "is"]).update({"pool": real["pool"]}, real=False)
    with pytest.raises(ValueError, match=r"kid\(\) has no option\(s\) \['subset'\]"):
        compute_metrics(real, fake, ["kid"], {"kid": {"subset": 3}})
    with pytest.raises(
        ValueError, match=r"options for unknown function\(s\) \['kdi'\]; valid: \['alpha_precision"
    ):
        compute_metrics(real, fake, ["kid"], {"kdi": {"subset_size": 3}})


def test_effective_options_report_defaults_and_overrides():
    used = effective_options(["kid", "pr", "dc"], {"knn_metrics": {"k_pr": 4}})
    assert used["kid"]["subset_size"] == 1000 and used["kid"]["seed"] == 2020
    assert used["knn_metrics"]["k_pr"] == 4 and used["knn_metrics"]["k_dc"] == 5
    assert "metrics" not in used["knn_metrics"]


def test_sample_counts_are_checked_per_metric_with_the_setting_that_decides():
    check_sample_counts(ALL, OPTIONS, 20, 20)  # enough for everything
    with pytest.raises(ValueError) as error:
        check_sample_counts(["prd", "rarity"], {"knn_metrics": {"k_rarity": 7}}, 7, 13)
    assert str(error.value) == (
        "metric 'prd' needs at least 20 samples in all (num_clusters=20, options.prd.num_clusters), it "
        "would cluster 7 real and 7 fake (the larger set is cut to the size of the smaller one); metric "
        "'rarity' needs at least 8 real samples (k_rarity=7, options.knn_metrics.k_rarity: a k-NN radius "
        "excludes the sample itself), the real set has 7. Use more samples or change the setting named."
    )
    check_sample_counts(["prd"], {"prd": {"enforce_balance": False}}, 7, 13)
    check_sample_counts(["prd"], None, 10, 13)
    with pytest.raises(
        ValueError, match=r"^metric 'prd' needs at least 20 samples in all .* 9 real and 9 fake"
    ):
        check_sample_counts(["prd"], None, 9, 9)
    with pytest.raises(ValueError, match=r"^metric 'pr' needs at least 4 fake samples \(k_pr=3, "):
        check_sample_counts(["pr"], None, 100, 3)  # recall's k-NN balls are around the fakes
    # the functional code agrees with each boundary: one sample more runs
    r, f = _features(8, 0), _features(8, 1)
    compute_metrics({"pool": r["pool"][:6]}, {"pool": f["pool"][:1]}, ["dc"])
    compute_metrics({"pool": r["pool"][:4]}, {"pool": f["pool"][:4]}, ["pr"])
    compute_metrics({"pool": r["pool"][:2]}, {"pool": f["pool"][:2]}, ["fid", "kid", "abauth"])


def test_prd_on_unequal_sets_uses_a_seeded_random_subset_of_the_larger_one():
    real, fake = _features(30, 0)["pool"], _features(20, 1, shift=0.3)["pool"]
    options = {"prd": {"num_runs": 2, "seed": 5}}
    ours = compute_metrics({"pool": real}, {"pool": fake}, ["prd"], options)
    pick = np.sort(np.random.RandomState(5).choice(30, 20, replace=False))
    precision, recall = F.prd(real[torch.from_numpy(pick)], fake, num_runs=2, seed=5)
    f_beta, f_beta_inv = F.prd_f_beta(precision, recall)
    assert ours == {"prd_f_beta": f_beta, "prd_f_beta_inv": f_beta_inv}


def test_a_real_reference_prepares_the_real_side_once_and_gives_the_same_numbers(monkeypatch):
    real, fake = _features(40, 0), _features(30, 1, shift=0.2)
    names = ["fid", "pr", "dc", "rarity"]
    expected = compute_metrics(real, fake, names)
    reference = RealReference(real)
    built = []
    original = F.RealManifold.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(F.RealManifold, "__init__", counting)
    for shift in (0.2, 0.2, 0.5):
        results = compute_metrics(reference, _features(30, 1, shift=shift), names)
    assert len(built) == 1 and len(reference._fid_stats) == 1  # one manifold (k_max 5), one ddof
    assert compute_metrics(reference, fake, names) == expected
    assert results != expected


def _suite_on(device: torch.device, real: dict, fake: dict) -> dict[str, float]:
    reference = RealReference(real, device)
    assert all(value.device == device for value in reference.features.values())
    return compute_metrics(reference, fake, ALL, OPTIONS)


@pytest.mark.cuda
def test_the_suite_on_a_gpu_gives_the_cpu_numbers():
    """The reference on the GPU runs every metric there (fake features follow). Ball memberships and
    nearest neighbours are decided with exact distances, the same on both devices (rarity reports exact
    radii); sums in float64 (FID, KID, IS, α/β areas) may differ in their last bits, realism in float32
    rounding; PRD clusters on the CPU either way."""
    real, fake = _features(300, 0), _features(260, 1, shift=0.2)
    cpu = _suite_on(torch.device("cpu"), real, fake)
    gpu = _suite_on(torch.device("cuda"), real, fake)
    assert list(gpu) == list(cpu)
    exact = ["precision", "recall", "density", "coverage", "rarity_mean", "rarity_num_outside"]
    exact += ["authenticity", "prd_f_beta", "prd_f_beta_inv"]
    for name in exact:
        assert gpu[name] == cpu[name], name
    assert gpu["realism_median"] == pytest.approx(cpu["realism_median"], rel=1e-4)  # float32 distances
    for name in set(cpu) - {*exact, "realism_median"}:
        assert gpu[name] == pytest.approx(cpu[name], rel=1e-6, abs=1e-12), name
