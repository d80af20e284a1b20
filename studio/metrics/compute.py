"""Run any subset of the metric suite on extracted features: one table from names to functional calls.

Each metric group reads one feature output ("pool" embedding or "logits") of the real and/or fake set,
calls `studio.metrics.functional`, and returns flat floats. Options are passed through as keyword
arguments of the functional call (e.g. {"kid": {"subset_size": 100}}); the functional signatures hold
the defaults, and `effective_options` reports what was actually used.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from studio.metrics import functional as F
from studio.metrics.functional._inputs import as_feature_pair
from studio.metrics.functional.equivariance import protocol_radius
from studio.metrics.reference import RealReference

Features = Mapping[str, torch.Tensor]
GENERATOR = "generator"  # MetricGroup.feature of metrics that need G rather than features


@dataclass(frozen=True)
class MetricGroup:
    """A metric name usable in configs/CLIs: which feature it needs and which functions it calls.

    `shortfalls(options, n_real, n_fake)` lists, as sentences, what the sample counts lack for this
    metric under the effective options ({functional name: {keyword: value}}), so that a run can refuse
    before it extracts a single image.
    """

    feature: str  # "pool" or "logits"
    uses_real: bool
    functions: tuple[str, ...]  # names in studio.metrics.functional whose keyword defaults apply
    # (real, fake, options, curves) -> results; may add per-sample arrays and curves to `curves`.
    run: Callable[[RealReference | None, torch.Tensor, dict, dict], dict[str, float]] | None  # None: k-NN
    shortfalls: Callable[[dict, int, int], list[str]]
    outputs: dict[str, str]  # result name -> "min" or "max" (which way is better), "" when neither


def _floats(values: Mapping) -> dict[str, float]:
    return {name: float(value) for name, value in values.items()}


def _option(opts: dict, fn: str, key: str):
    """A functional option as given, else the function's default."""
    return opts[fn].get(key, inspect.signature(getattr(F, fn)).parameters[key].default)


def _run_fid(real: RealReference, fake, opts, curves):
    ddof = F.protocol_ddof(_option(opts, "fid", "protocol"))
    return {"fid": F.fid_from_stats(*real.fid_stats(ddof), *F.feature_stats(fake, ddof))}


def _run_kid(real: RealReference, fake, opts, curves):
    return _floats(F.kid(real["pool"], fake, **opts["kid"]))


def _run_is(real, fake, opts, curves):
    return _floats(F.inception_score(fake, **opts["inception_score"]))


def _run_prd(real: RealReference, fake, opts, curves):
    real_x, fake_x = balanced(real["pool"], fake, opts["prd"])
    precision, recall = F.prd(real_x, fake_x, **opts["prd"])
    curves["prd"] = (precision, recall)
    f_beta, f_beta_inv = F.prd_f_beta(precision, recall, **opts["prd_f_beta"])
    return {"prd_f_beta": float(f_beta), "prd_f_beta_inv": float(f_beta_inv)}


def balanced(real: torch.Tensor, fake: torch.Tensor, prd_opts: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """PRD compares equally many samples (its reference refuses unequal sets): unless
    enforce_balance=False, the larger set is cut to the smaller one's size by a random subset drawn
    with numpy RandomState(seed) (seed: PRD's own option), kept in its original order."""
    n = min(len(real), len(fake))
    if not prd_opts.get("enforce_balance", True) or len(real) == len(fake):
        return real, fake
    pick = np.sort(
        np.random.RandomState(prd_opts.get("seed", 0)).choice(max(len(real), len(fake)), n, replace=False)
    )
    index = torch.from_numpy(pick)
    return (real[index.to(real.device)], fake) if len(real) > n else (real, fake[index.to(fake.device)])


def _run_abauth(real: RealReference, fake, opts, curves):
    out = F.alpha_precision_beta_recall_authenticity(
        real["pool"], fake, **opts["alpha_precision_beta_recall_authenticity"]
    )
    return _floats({key: out[key] for key in ("delta_precision_alpha", "delta_recall_beta", "authenticity")})


# Options of knn_metrics that shape the real manifold (prepared once per real set) rather than the pass.
MANIFOLD_OPTIONS = {"block_size": None, "dtype": "float32", "allow_tf32": False}
# k-NN groups share ONE knn_metrics call (one distance pass); these are the family members each adds.
KNN_GROUPS = {"pr": ("precision", "recall", "realism"), "dc": ("density", "coverage"), "rarity": ("rarity",)}


def _knn_summary(out: Mapping) -> dict[str, float]:
    """Flatten knn_metrics output; per-sample realism -> median (robust to +inf), rarity -> mean."""
    summary = {key: float(out[key]) for key in ("precision", "recall", "density", "coverage") if key in out}
    if "realism" in out:
        summary["realism_median"] = float(np.median(out["realism"]))
    if "rarity" in out:
        inside = out["rarity"][~np.isnan(out["rarity"])]
        summary["rarity_mean"] = float(inside.mean()) if inside.size else float("nan")
        summary["rarity_num_outside"] = float(out["rarity_num_outside"])
    return summary


def _run_knn(names: Sequence[str], real: RealReference, fake, opts, curves: dict) -> dict[str, float]:
    members = [member for name in names for member in KNN_GROUPS[name]]
    knn_opts = dict(opts["knn_metrics"])
    prepared = {key: knn_opts.pop(key, default) for key, default in MANIFOLD_OPTIONS.items()}
    ks = {"pr": knn_opts.get("k_pr", 3), "dc": knn_opts.get("k_dc", 5), "rarity": knn_opts.get("k_rarity", 3)}
    manifold = real.manifold(max(ks[name] for name in names), **prepared)
    out = F.knn_metrics(manifold, fake, members, **knn_opts)
    curves.update({key: out[key] for key in ("realism", "rarity") if key in out})
    return _knn_summary(out)


def _too_few(side: str, have: int, need: int, why: str) -> list[str]:
    return [f"needs at least {need} {side} samples ({why}), the {side} set has {have}"] if have < need else []


def _knn_radius(side: str, have: int, fn: str, key: str, opts: dict) -> list[str]:
    k = opts[fn][key]
    why = f"{key}={k}, options.{fn}.{key}: a k-NN radius excludes the sample itself"
    return _too_few(side, have, k + 1, why)


def _fid_needs(opts: dict, n_real: int, n_fake: int) -> list[str]:
    why = "a covariance needs 2"
    return _too_few("real", n_real, 2, why) + _too_few("fake", n_fake, 2, why)


def _kid_needs(opts: dict, n_real: int, n_fake: int) -> list[str]:
    why = "every KID subset draws at least 2"
    return _too_few("real", n_real, 2, why) + _too_few("fake", n_fake, 2, why)


def _is_needs(opts: dict, n_real: int, n_fake: int) -> list[str]:
    splits = opts["inception_score"]["splits"]
    return _too_few("fake", n_fake, splits, f"splits={splits}, options.inception_score.splits")


def _pr_needs(opts: dict, n_real: int, n_fake: int) -> list[str]:
    # Recall puts real samples into the k_pr-NN balls of the fakes, so both sets need k_pr + 1.
    return _knn_radius("real", n_real, "knn_metrics", "k_pr", opts) + _knn_radius(
        "fake", n_fake, "knn_metrics", "k_pr", opts
    )


def _dc_needs(opts: dict, n_real: int, n_fake: int) -> list[str]:
    return _knn_radius("real", n_real, "knn_metrics", "k_dc", opts)


def _rarity_needs(opts: dict, n_real: int, n_fake: int) -> list[str]:
    return _knn_radius("real", n_real, "knn_metrics", "k_rarity", opts)


def _prd_needs(opts: dict, n_real: int, n_fake: int) -> list[str]:
    clusters = opts["prd"]["num_clusters"]
    balanced_sets = opts["prd"]["enforce_balance"]  # both sets cut to the smaller size (see `balanced`)
    used = 2 * min(n_real, n_fake) if balanced_sets else n_real + n_fake
    if used >= clusters:
        return []
    sets = f"{used // 2} real and {used // 2} fake" if balanced_sets else f"{n_real} real and {n_fake} fake"
    return [
        f"needs at least {clusters} samples in all (num_clusters={clusters}, options.prd.num_clusters), "
        f"it would cluster {sets}"
        + (" (the larger set is cut to the size of the smaller one)" if balanced_sets else "")
    ]


def _abauth_needs(opts: dict, n_real: int, n_fake: int) -> list[str]:
    needs = _too_few("real", n_real, 2, "the nearest other real sample of every real one")
    if opts["alpha_precision_beta_recall_authenticity"]["protocol"] == "authors" and n_fake > n_real:
        needs.append(
            f"needs at most as many fake samples as real ones (protocol=authors indexes real distances "
            f"with fake indices, options.alpha_precision_beta_recall_authenticity.protocol), the fake set "
            f"has {n_fake} and the real set {n_real}"
        )
    return needs


METRIC_GROUPS: dict[str, MetricGroup] = {
    "fid": MetricGroup("pool", True, ("fid",), _run_fid, _fid_needs, {"fid": "min"}),
    "kid": MetricGroup("pool", True, ("kid",), _run_kid, _kid_needs, {"kid_mean": "min", "kid_std": ""}),
    "is": MetricGroup(
        "logits", False, ("inception_score",), _run_is, _is_needs, {"is_mean": "max", "is_std": ""}
    ),
    "pr": MetricGroup(
        "pool",
        True,
        ("knn_metrics",),
        None,
        _pr_needs,
        {"precision": "max", "recall": "max", "realism_median": "max"},
    ),
    "dc": MetricGroup("pool", True, ("knn_metrics",), None, _dc_needs, {"density": "max", "coverage": "max"}),
    "rarity": MetricGroup(
        "pool", True, ("knn_metrics",), None, _rarity_needs, {"rarity_mean": "", "rarity_num_outside": ""}
    ),
    "prd": MetricGroup(
        "pool",
        True,
        ("prd", "prd_f_beta"),
        _run_prd,
        _prd_needs,
        {"prd_f_beta": "max", "prd_f_beta_inv": "max"},
    ),
    "abauth": MetricGroup(
        "pool",
        True,
        ("alpha_precision_beta_recall_authenticity",),
        _run_abauth,
        _abauth_needs,
        {"delta_precision_alpha": "max", "delta_recall_beta": "max", "authenticity": "max"},
    ),
    # Need the generator itself, not features: studio.metrics.path_length and .equivariance compute them.
    "ppl": MetricGroup(GENERATOR, False, ("perceptual_path_length",), None, lambda *_: [], {"ppl": "min"}),
    "eq_t": MetricGroup(GENERATOR, False, ("equivariance",), None, lambda *_: [], {"eq_t": "max"}),
    "eq_t_frac": MetricGroup(GENERATOR, False, ("equivariance",), None, lambda *_: [], {"eq_t_frac": "max"}),
    "eq_r": MetricGroup(GENERATOR, False, ("equivariance",), None, lambda *_: [], {"eq_r": "max"}),
}
# Arguments the suite fills in itself.
_SET_BY_SUITE = {
    ("knn_metrics", "metrics"),
    ("perceptual_path_length", "device"),
    ("perceptual_path_length", "return_distances"),
    ("equivariance", "metrics"),
    ("equivariance", "device"),
    ("equivariance", "return_errors"),
}
DEFAULT_METRICS = ("fid", "kid", "pr", "dc")
# The reference conventions each function reproduces (`protocol=`; docs/metrics.md, Protocols).
PROTOCOLS = {
    "fid": tuple(F.FID_PROTOCOLS),
    "inception_score": F.IS_PROTOCOLS,
    "knn_metrics": F.KNN_PROTOCOLS,
    "alpha_precision_beta_recall_authenticity": F.AUTHENTICITY_PROTOCOLS,
    "equivariance": F.EQUIVARIANCE_PROTOCOLS,
}


def check_metric_names(names: Sequence[str]) -> list[str]:
    """Validate metric names (order kept, duplicates dropped); unknown ones -> ValueError listing valid."""
    unknown = [name for name in names if name not in METRIC_GROUPS]
    if unknown:
        raise ValueError(
            f"unknown metric name(s) {', '.join(map(repr, unknown))}; valid: {', '.join(METRIC_GROUPS)}"
        )
    if not names:
        raise ValueError(f"no metrics requested; valid: {', '.join(METRIC_GROUPS)}")
    return list(dict.fromkeys(names))


def needed_features(names: Sequence[str]) -> set[str]:
    """Feature outputs ("pool", "logits") the given metrics read."""
    return {METRIC_GROUPS[name].feature for name in feature_metrics(names)}


def feature_metrics(names: Sequence[str]) -> list[str]:
    """The metrics among `names` computed on features (all but those that need the generator)."""
    return [name for name in check_metric_names(names) if METRIC_GROUPS[name].feature != GENERATOR]


def generator_metrics(names: Sequence[str]) -> list[str]:
    """The metrics among `names` that need the generator itself (ppl, eq_t, eq_t_frac, eq_r)."""
    return [name for name in check_metric_names(names) if METRIC_GROUPS[name].feature == GENERATOR]


def group_options(name: str, options: Mapping[str, Mapping] | None) -> dict[str, dict]:
    """The per-function keyword overrides a metric group uses, keyed by functional name."""
    options = options or {}
    return {fn: dict(options.get(fn, {})) for fn in METRIC_GROUPS[name].functions}


def effective_options(names: Sequence[str], options: Mapping[str, Mapping] | None = None) -> dict[str, dict]:
    """{functional name: every keyword argument with its default, overridden by `options`}."""
    known = {fn for group in METRIC_GROUPS.values() for fn in group.functions}
    unknown_functions = sorted(set(options or {}) - known)
    if unknown_functions:
        raise ValueError(f"options for unknown function(s) {unknown_functions}; valid: {sorted(known)}")
    used: dict[str, dict] = {}
    for name in check_metric_names(names):
        for fn, overrides in group_options(name, options).items():
            signature = inspect.signature(getattr(F, fn))
            defaults = {
                p.name: p.default
                for p in signature.parameters.values()
                if p.default is not inspect.Parameter.empty and (fn, p.name) not in _SET_BY_SUITE
            }
            unknown = set(overrides) - set(defaults)
            if unknown:
                raise ValueError(f"{fn}() has no option(s) {sorted(unknown)}; valid: {sorted(defaults)}")
            protocol = overrides.get("protocol", defaults.get("protocol"))
            if "protocol" in defaults and protocol not in PROTOCOLS[fn]:
                raise ValueError(f"{fn}() has no protocol {protocol!r}; valid: {list(PROTOCOLS[fn])}")
            if fn == "knn_metrics" and protocol == "nvlabs" and overrides.get("strict"):
                raise ValueError(
                    "knn_metrics(): protocol 'nvlabs' compares with <= (NVlabs' code); drop strict=true"
                )
            values = defaults | overrides
            if fn == "equivariance":  # report the radius used, not None
                values["lanczos_radius"] = protocol_radius(values["lanczos_radius"], values["protocol"])
            used[fn] = {key: _jsonable(value) for key, value in values.items()}
    return used


def check_sample_counts(
    names: Sequence[str],
    options: Mapping[str, Mapping] | None,
    n_real: int,
    n_fake: int,
    setting_prefix: str = "",
) -> None:
    """ValueError naming every metric whose sample needs `n_real` real and `n_fake` fake samples do not
    meet under `options`; call it before extracting features (counts are known from the sources).
    The settings are named `options.FN.KEY`, after `setting_prefix` (e.g. "eval." in training configs)."""
    used = effective_options(names, options)
    found = [
        f"metric {name!r} {shortfall}".replace("options.", f"{setting_prefix}options.")
        for name in check_metric_names(names)
        for shortfall in METRIC_GROUPS[name].shortfalls(used, n_real, n_fake)
    ]
    if found:
        raise ValueError("; ".join(found) + ". Use more samples or change the setting named.")


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    return value if value is None or isinstance(value, (bool, int, float, str, list, dict)) else str(value)


def _require(features: Features | None, key: str, side: str, metric: str) -> torch.Tensor:
    if features is None or key not in features:
        have = sorted(features) if features is not None else []
        hint = (
            " Inception Score needs classifier logits: use a backbone with a classifier (e.g. inception "
            "with the pt_inception-2015-12-05-6726825d.pth weights) or an .npz with a 'logits' array."
            if key == "logits"
            else ""
        )
        raise ValueError(
            f"metric {metric!r} needs {side} features {key!r}, but only {have} are available.{hint}"
        )
    return features[key]


def compute_metrics(
    real: Features | RealReference | None,
    fake: Features,
    metrics: Sequence[str],
    options: Mapping[str, Mapping] | None = None,
    curves: dict | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, float]:
    """Compute the requested metric groups on extracted features; returns one flat {name: float} dict.

    real, fake: {"pool": [N, D], "logits": [N, C], ...} (real may be None if only "is" is requested).
    Pass the real side as a `RealReference` to reuse what it derived in earlier calls (FID statistics,
    k-NN radii); the metrics run on its device, the fake features moved there.
    options: {functional name: {keyword: value}}, e.g. {"knn_metrics": {"k_pr": 5}}.
    curves: a dict that receives what does not fit a float: "prd" (precision [A], recall [A]) and the
    per-fake-sample "realism" and "rarity" arrays [M] of the metrics requested.
    timings: a dict that receives each group's wall-clock seconds, the k-NN groups (one shared pass)
    under their names joined by "+", e.g. {"fid": 0.9, "pr+dc": 1.2}.
    """
    names = check_metric_names(metrics)
    if generator_metrics(names):
        raise ValueError(
            f"metric(s) {generator_metrics(names)} need the generator, not features: compute them with "
            "studio.metrics.path_length or studio.metrics.equivariance (studio-eval ckpt=..., or "
            "eval.metrics during training)"
        )
    reference = real if real is None or isinstance(real, RealReference) else RealReference(real)
    if reference is not None:  # once for every metric group, rather than in each
        fake = {name: torch.as_tensor(value, device=reference.device) for name, value in fake.items()}
    for name in names:
        group = METRIC_GROUPS[name]
        fake_x = _require(fake, group.feature, "fake", name)
        if group.uses_real:
            as_feature_pair(_require(reference, group.feature, "real", name), fake_x)  # shapes agree
    n_real = 0 if reference is None else reference.count
    check_sample_counts(names, options, n_real, int(next(iter(fake.values())).shape[0]))
    results: dict[str, float] = {}
    curves = {} if curves is None else curves
    knn_names = [name for name in names if name in KNN_GROUPS]
    for name in names:
        fake_x = fake[METRIC_GROUPS[name].feature]
        opts = group_options(name, options)
        try:
            if name not in KNN_GROUPS:
                with stopwatch(timings, name):
                    results |= METRIC_GROUPS[name].run(reference, fake_x, opts, curves)
            elif name == knn_names[0]:
                with stopwatch(timings, "+".join(knn_names)):
                    results |= _run_knn(knn_names, reference, fake_x, opts, curves)
        except ValueError as error:
            where = " or ".join(f"options.{fn}.KEY=VALUE" for fn in opts)
            raise ValueError(f"metric {name!r}: {error} (its settings: {where})") from error
    return results


@contextlib.contextmanager
def stopwatch(timings: dict[str, float] | None, stage: str) -> Iterator[None]:
    """Add the block's wall-clock seconds to timings[stage]; a no-op when timings is None."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def metric_outputs(names: Sequence[str]) -> dict[str, str]:
    """{result name: "min" | "max" | ""} of everything the given metric groups report."""
    return {
        out: way for name in check_metric_names(names) for out, way in METRIC_GROUPS[name].outputs.items()
    }
