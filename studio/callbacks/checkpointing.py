"""Exact-resume checkpoints at kimg ticks, and a graceful stop on Ctrl-C / SIGTERM."""

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L

from studio.callbacks.schedule import kimg_tag, step_crossed
from studio.io.atomic import link_atomic
from studio.io.checkpoint import save_checkpoint
from studio.runtime import assert_ranks_in_sync

log = logging.getLogger(__name__)


class TrainingCheckpoint(L.Callback):
    """Writes dirpath/kimg-<kimg>.ckpt every `every_kimg` and points dirpath/last.ckpt at the newest
    state (also at the end of training and on a requested stop). Files are replaced atomically and only
    after a step finished with finite losses, so last.ckpt is always a complete, good state.

    The first SIGINT (Ctrl-C) or SIGTERM asks training to stop after the current step and save; a second
    SIGINT interrupts at once. `extra` (e.g. the run's config) is stored in every checkpoint.
    """

    def __init__(
        self, dirpath: str | Path, every_kimg: float | None, extra: dict[str, Any] | None = None
    ) -> None:
        self.dirpath = Path(dirpath)
        self.every_kimg = every_kimg
        self.extra = dict(extra or {})
        self.stop_requested = False
        self._previous_handlers: dict[int, Any] = {}

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop_requested = True
        log.warning(
            "%s received: stopping after this step and saving a checkpoint.", signal.Signals(signum).name
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous_handlers[signum] = signal.signal(signum, self._request_stop)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handlers()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore_handlers()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        stop = self.stop_requested
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        periodic = step_crossed(pl_module, self.every_kimg)
        # Rank 0 alone knows whether this step's evaluation is a new best; every rank must agree (saving
        # is collective), so it is broadcast after each evaluation, and only then.
        monitor, best = pl_module.best, False
        if monitor is not None and monitor.evaluated_at == pl_module.cur_nimg:
            best = trainer.strategy.broadcast(monitor.improved_at == pl_module.cur_nimg)
        if periodic or stop or pl_module.done or best:
            self.save(trainer, pl_module, periodic, best)
        if stop:
            trainer.should_stop = True

    def save(
        self, trainer: L.Trainer, pl_module: L.LightningModule, periodic: bool, best: bool = False
    ) -> Path:
        """Write the state (collective: every rank must call it); returns the path of last.ckpt. With
        `best` (a new best of eval.monitor at this step) the state also becomes best.ckpt, written
        before last.ckpt moves on: a kill in between resumes before this evaluation, which then runs
        again and rewrites best.ckpt."""
        state = pl_module.training_state()
        assert_ranks_in_sync(pl_module)
        last, best_path = self.dirpath / "last.ckpt", self.dirpath / "best.ckpt"
        if trainer.is_global_zero:
            state.update(self.extra)
            periodic_path = self.dirpath / f"kimg-{kimg_tag(pl_module.cur_nimg)}.ckpt"
            written = periodic_path if periodic else best_path if best else last
            save_checkpoint(state, written)
            if best and written != best_path:
                link_atomic(written, best_path)
            if written != last:
                link_atomic(written, last)
        trainer.strategy.barrier()
        return last
