"""Lightning callbacks of a studio training run: progress bar, sample grids, metrics.jsonl, checkpoints."""

from studio.callbacks.checkpointing import TrainingCheckpoint
from studio.callbacks.metrics_log import MetricsLog
from studio.callbacks.progress import KimgProgressBar
from studio.callbacks.samples import SampleGrid

__all__ = ["KimgProgressBar", "MetricsLog", "SampleGrid", "TrainingCheckpoint"]
