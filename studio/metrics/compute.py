"""Run any subset of the metric suite on extracted features: one table from names to functional calls.

Each metric group reads one feature output ("pool" embedding or "logits") of the real and/or fake set,
calls `studio.metrics.functional`, and returns flat floats. Options are passed through as keyword
arguments of the functional call (e.g. {"kid": {"subset_size": 100}}); the functional signatures hold
the defaults, and `effective_options` reports what was actually used.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from studio.metrics import functional as F

Features = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class MetricGroup:
    """A metric name usable in configs/CLIs: which feature it needs and which functions it calls."""

    feature: str  # "pool" or "logits"
    uses_real: bool
    functions: tuple[str, ...]  # names in studio.metrics.functional whose keyword defaults apply
    run: Callable[[torch.Tensor | None, torch.Tensor, dict], dict[str, float]] | None  # None: k-NN family


def _floats(values: Mapping) -> dict[str, float]:
    return {name: float(value) for name, value in values.items()}


def _run_fid(real, fake, opts):
    return {"fid": F.fid(real, fake, **opts["fid"])}


def _run_kid(real, fake, opts):
    return _floats(F.kid(real, fake, **opts["kid"]))


def _run_is(real, fake, opts):
    return _floats(F.inception_score(fake, **opts["inception_score"]))


def _run_prd(real, fake, opts):
    precision, recall = F.prd(real, fake, **opts["prd"])
    f_beta, f_beta_inv = F.prd_f_beta(precision, recall, **opts["prd_f_beta"])
    return {"prd_f_beta": float(f_beta), "prd_f_beta_inv": float(f_beta_inv)}


def _run_abauth(real, fake, opts):
    out = F.alpha_precision_beta_recall_authenticity(
        real, fake, **opts["alpha_precision_beta_recall_authenticity"]
    )
    return _floats({key: out[key] for key in ("delta_precision_alpha", "delta_recall_beta", "authenticity")})


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


def _run_knn(names: Sequence[str], real, fake, opts) -> dict[str, float]:
    members = [member for name in names for member in KNN_GROUPS[name]]
    return _knn_summary(F.knn_metrics(real, fake, members, **opts["knn_metrics"]))


METRIC_GROUPS: dict[str, MetricGroup] = {
    "fid": MetricGroup("pool", True, ("fid",), _run_fid),
    "kid": MetricGroup("pool", True, ("kid",), _run_kid),
    "is": MetricGroup("logits", False, ("inception_score",), _run_is),
    "pr": MetricGroup("pool", True, ("knn_metrics",), None),
    "dc": MetricGroup("pool", True, ("knn_metrics",), None),
    "rarity": MetricGroup("pool", True, ("knn_metrics",), None),
    "prd": MetricGroup("pool", True, ("prd", "prd_f_beta"), _run_prd),
    "abauth": MetricGroup("pool", True, ("alpha_precision_beta_recall_authenticity",), _run_abauth),
}
_SET_BY_SUITE = {("knn_metrics", "metrics")}  # arguments the suite fills in itself
DEFAULT_METRICS = ("fid", "kid", "pr", "dc")


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
    return {METRIC_GROUPS[name].feature for name in check_metric_names(names)}


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
            used[fn] = {key: _jsonable(value) for key, value in (defaults | overrides).items()}
    return used


def _jsonable(value):
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
    real: Features | None,
    fake: Features,
    metrics: Sequence[str],
    options: Mapping[str, Mapping] | None = None,
) -> dict[str, float]:
    """Compute the requested metric groups on extracted features; returns one flat {name: float} dict.

    real, fake: {"pool": [N, D], "logits": [N, C], ...} (real may be None if only "is" is requested).
    options: {functional name: {keyword: value}}, e.g. {"knn_metrics": {"k_pr": 5}}.
    """
    names = check_metric_names(metrics)
    effective_options(names, options)  # validates option names before any work
    results: dict[str, float] = {}
    knn_names = [name for name in names if name in KNN_GROUPS]
    for name in names:
        group = METRIC_GROUPS[name]
        fake_x = _require(fake, group.feature, "fake", name)
        real_x = _require(real, group.feature, "real", name) if group.uses_real else None
        opts = group_options(name, options)
        try:
            if name not in KNN_GROUPS:
                results |= group.run(real_x, fake_x, opts)
            elif name == knn_names[0]:
                results |= _run_knn(knn_names, real_x, fake_x, opts)
        except ValueError as error:
            where = " or ".join(f"options.{fn}.KEY=VALUE" for fn in opts)
            raise ValueError(f"metric {name!r}: {error} (its settings: {where})") from error
    return results
