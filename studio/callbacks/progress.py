"""A tqdm progress bar counted in kimg (thousands of real images shown)."""

import time

import lightning as L
from lightning.pytorch.callbacks import ProgressBar
from tqdm.auto import tqdm


class KimgProgressBar(ProgressBar):
    """Shows kimg done / train.kimg with the latest losses (rank 0 only), refreshed at most every
    `refresh_s` seconds."""

    def __init__(self, refresh_s: float = 0.5) -> None:
        super().__init__()
        self.refresh_s = refresh_s
        self._enabled = True
        self._bar: tqdm | None = None
        self._last_refresh = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        steps = -(-pl_module.total_nimg // pl_module.batch_size)
        self._bar = tqdm(
            total=steps * pl_module.batch_size / 1000,
            initial=pl_module.cur_kimg,
            unit="kimg",
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}{postfix}]",
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._bar is None:
            return
        now = time.monotonic()
        if now - self._last_refresh < self.refresh_s and not trainer.should_stop:
            return
        self._last_refresh = now
        self._bar.n = pl_module.cur_kimg
        self._bar.set_postfix({k.removeprefix("loss/"): f"{v:.3g}" for k, v in pl_module.last_losses.items()})

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._bar is not None:
            self._bar.n = pl_module.cur_kimg
            self._bar.close()
            self._bar = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def print(self, *args, **kwargs) -> None:
        (self._bar.write if self._bar is not None else print)(" ".join(map(str, args)))
