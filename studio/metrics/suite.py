"""torchmetrics wrapper: accumulates features (synced with "cat" under DDP), computes the suite in one call.

It holds no metric math: `compute()` concatenates the accumulated features and calls
`studio.metrics.compute.compute_metrics`, which calls `studio.metrics.functional`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from studio.metrics.compute import DEFAULT_METRICS, check_metric_names, compute_metrics, needed_features

SIDES = ("real", "fake")


class FeatureMetricSuite(Metric):
    """Accumulates real and fake feature batches; `compute()` returns the requested metrics as floats.

    metrics: names among studio.metrics.compute.METRIC_GROUPS (fid, kid, is, pr, dc, rarity, prd, abauth).
    options: {functional name: {keyword: value}} passed to the functional calls.
    reference: precomputed real features (e.g. from the on-disk cache). They are NOT a synced state, so
    under DDP every rank holds the same full real set and only fake features are gathered.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    def __init__(
        self,
        metrics: Sequence[str] = DEFAULT_METRICS,
        options: Mapping[str, Mapping] | None = None,
        reference: Mapping[str, torch.Tensor] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.metric_names = check_metric_names(list(metrics))
        self.options = {fn: dict(opts) for fn, opts in (options or {}).items()}
        self.feature_names = sorted(needed_features(self.metric_names))
        self.reference = None if reference is None else {k: v.detach().cpu() for k, v in reference.items()}
        for side in SIDES:
            for feature in self.feature_names:
                self.add_state(f"{side}_{feature}", default=[], dist_reduce_fx="cat")

    def update(self, features: Mapping[str, torch.Tensor], real: bool) -> None:
        """Add a batch: features = {"pool": [B, D], "logits": [B, C], ...}; extra outputs are ignored."""
        side = "real" if real else "fake"
        if real and self.reference is not None:
            raise ValueError(
                "this suite was given reference (real) features; update it with fake features only"
            )
        missing = [name for name in self.feature_names if name not in features]
        if missing:
            raise ValueError(
                f"metrics {self.metric_names} need feature outputs {self.feature_names}; "
                f"the batch lacks {missing}"
            )
        for name in self.feature_names:
            getattr(self, f"{side}_{name}").append(features[name].detach().float())

    def _gathered(self, side: str) -> dict[str, torch.Tensor] | None:
        if side == "real" and self.reference is not None:
            return self.reference
        states = {name: getattr(self, f"{side}_{name}") for name in self.feature_names}
        if any(isinstance(value, list) and not value for value in states.values()):
            return None
        return {name: dim_zero_cat(value) for name, value in states.items()}

    def compute(self) -> dict[str, float]:
        fake = self._gathered("fake")
        if fake is None:
            raise ValueError("no fake features were added: call update(features, real=False) first")
        return compute_metrics(self._gathered("real"), fake, self.metric_names, self.options)
