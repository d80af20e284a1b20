"""Lightning callbacks of a studio training run: progress bar, sample grids, metrics.jsonl, checkpoints."""

from studio.callbacks.checkpointing import TrainingCheckpoint
from studio.callbacks.generator_metrics import GeneratorMetrics
from studio.callbacks.metrics_log import MetricsLog
from studio.callbacks.progress import KimgProgressBar
from studio.callbacks.samples import SampleGrid

__all__ = ["GeneratorMetrics", "KimgProgressBar", "MetricsLog", "SampleGrid", "TrainingCheckpoint"]
