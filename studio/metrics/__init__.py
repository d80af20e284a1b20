"""Metric suite: pure functions on features (`functional`) and torchmetrics wrappers (`suite`).

The wrappers and the compute table are imported lazily, so `import studio.metrics.functional` does not
pull in torchmetrics and the backbones.
"""

import importlib

_LAZY = {
    "DEFAULT_METRICS": "studio.metrics.compute",
    "METRIC_GROUPS": "studio.metrics.compute",
    "compute_metrics": "studio.metrics.compute",
    "effective_options": "studio.metrics.compute",
    "FeatureMetricSuite": "studio.metrics.suite",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'studio.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
