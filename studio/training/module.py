"""StyleGAN2 training as a LightningModule with manual optimization, counted in images shown (nimg)."""

import copy
import functools
import logging
import math
import random
from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from studio.io.checkpoint import CHECKPOINT_FORMAT
from studio.runtime import capture_rng_state, rank, restore_rng_state, world_size
from studio.training.distributed import (
    average_gradients_,
    average_tensors_,
    mean_over_ranks,
)
from studio.training.loss import StyleGAN2Loss
from studio.training.monitor import BestMonitor
from studio.training.optim import ema_beta, finite_gradients_, make_lazy_optimizer, update_ema_

log = logging.getLogger(__name__)


RUNNING_STATS = ("_avg", "_ema", "running_mean", "running_var")


def running_statistics(*nets: nn.Module) -> list[torch.Tensor]:
    """Buffers the networks update in their forward from each rank's batch (w_avg, StyleGAN3's
    magnitude_ema, BatchNorm's in FastGAN and the Projected heads). Parts in eval mode, such as a
    frozen backbone, update none."""
    return [
        buffer
        for net in nets
        for module in net.modules()
        if module.training
        for name, buffer in module.named_buffers(recurse=False)
        if name.endswith(RUNNING_STATS)
    ]


def batch_passes(n: int, batch_gpu: int | None) -> list[slice]:
    """The forward/backward passes over a process's batch of n images: slices of batch_gpu images, or
    one pass when batch_gpu is None or at least n."""
    size = n if batch_gpu is None else min(batch_gpu, n)
    if n % size:
        raise ValueError(
            f"train.batch_gpu={batch_gpu} must divide the {n} images each process trains on per step "
            "(train.batch / processes), or be at least that many."
        )
    return [slice(start, start + size) for start in range(0, n, size)]


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or Inf; training stops without writing a checkpoint of that state."""


class RunningStats:
    """Per-name running means of Python floats between two evaluation ticks."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1

    def state_dict(self) -> dict[str, dict]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])

    def pop_means(self) -> dict[str, float]:
        """Means since the last call, then reset."""
        means = {name: self.sums[name] / self.counts[name] for name in self.sums}
        self.sums, self.counts = {}, {}
        return means


class StyleGAN2Module(L.LightningModule):
    """G, D and G_ema trained with the StyleGAN2 objective; one training_step = one global batch.

    Each step runs the phases G main, G path-length (every loss.pl_interval steps), D main and D R1
    (every loss.r1_interval steps), each with its own optimizer step, then updates G_ema.
    batch_size: the GLOBAL batch (images per step summed over all processes). batch_gpu: images per
    forward/backward pass in each process; the per-process batch runs in passes of that many, whose
    gradients add up before the optimizer step (NVlabs' --batch-gpu: less memory; minibatch-std groups,
    style mixing and the path-length average then work per pass). None, or at least the per-process
    batch: one pass. total_kimg: length of training in thousands of real images shown. ema_kimg: G_ema
    half-life in kimg (None: batch * 10 / 32).
    seed: training randomness is seeded per process with (seed, rank) at the first step of a fresh run.
    channels_last: keep networks, gradients and images in NHWC memory layout (oneDNN's native layout on
    CPU: 1.75x faster 3x3 convolutions at 16x128x32x32 and 15% faster training of stylegan2_cpu32).
    best: the eval.monitor tracker, saved and restored with the rest of the training state.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: StyleGAN2Loss,
        g_optimizer: functools.partial,
        d_optimizer: functools.partial,
        batch_size: int,
        total_kimg: float,
        batch_gpu: int | None = None,
        ema_kimg: float | None = None,
        ema_rampup: float | None = 0.05,
        seed: int = 0,
        channels_last: bool = False,
        best: BestMonitor | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # Moving to a device keeps the layout, so the networks, their gradients, the optimizer state
        # and (through `training_step`) the real images stay in this layout for the whole run.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.G = generator.to(memory_format=self.memory_format)
        self.D = discriminator.to(memory_format=self.memory_format)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.loss = loss
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.batch_size = int(batch_size)
        self.batch_gpu = None if batch_gpu is None else int(batch_gpu)
        self.total_nimg = int(round(total_kimg * 1000))
        self.ema_kimg = batch_size * 10 / 32 if ema_kimg is None else float(ema_kimg)
        self.ema_rampup = ema_rampup
        self.seed = int(seed)
        self.cur_nimg = 0
        self.num_steps = 0
        self.stats = RunningStats()
        self.best = best
        self.last_losses: dict[str, float] = {}
        self._rng_started = False
        self._pending_rng: list[dict[str, Any]] | None = None
        self._pending_optimizer_states: tuple[dict, dict] | None = None

    @property
    def cur_kimg(self) -> float:
        return self.cur_nimg / 1000

    @property
    def done(self) -> bool:
        return self.cur_nimg >= self.total_nimg

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        # A regularizer that is off takes no extra steps, so its optimizer keeps the configured values.
        loss = self.loss
        pl_interval = loss.pl_interval if loss.pl_weight > 0 else None
        r1_interval = loss.r1_interval if loss.gamma > 0 else None
        return [
            make_lazy_optimizer(self.g_optimizer, self.G.parameters(), pl_interval),
            make_lazy_optimizer(self.d_optimizer, self.D.parameters(), r1_interval),
        ]

    def on_train_start(self) -> None:
        if self._pending_optimizer_states is not None:
            for opt, state in zip(
                self.optimizers(use_pl_optimizer=False), self._pending_optimizer_states, strict=True
            ):
                opt.load_state_dict(state)
            self._pending_optimizer_states = None

    def labels_to_c(self, labels: torch.Tensor) -> torch.Tensor | None:
        """int64 labels [N] -> one-hot conditioning c [N, c_dim] (None for an unconditional G)."""
        if self.G.c_dim == 0:
            return None
        return F.one_hot(labels, self.G.c_dim).to(torch.float32)

    def _start_rng_stream(self) -> None:
        """Restore the checkpointed RNG state of this rank, or seed a fresh stream from (seed, rank)."""
        self._rng_started = True
        if self._pending_rng is not None and len(self._pending_rng) == world_size():
            restore_rng_state(self._pending_rng[rank()])
        else:
            if self._pending_rng is not None:
                log.warning(
                    "The checkpoint was written by %d processes, this run has %d: the data order continues "
                    "exactly, the random latents do not.",
                    len(self._pending_rng),
                    world_size(),
                )
            entropy = np.random.SeedSequence([self.seed, rank(), world_size(), self.cur_nimg]).generate_state(
                2
            )
            torch.manual_seed(int(entropy[0]))
            np.random.seed(int(entropy[1]))  # noqa: NPY002 (the global stream, saved in checkpoints)
            random.seed(int(entropy[1]))
        self._pending_rng = None

    def _train_phase(
        self,
        net: nn.Module,
        opt: torch.optim.Optimizer,
        passes: list[slice],
        compute_loss: Callable[..., torch.Tensor],
        *inputs: torch.Tensor | None,
    ) -> torch.Tensor:
        """One optimizer step of `net` (the other network frozen) on the mean over `passes` of
        `compute_loss(*inputs[part])`, the loss of each part of the batch (None inputs stay None); each
        pass's graph is freed after its backward. Returns that mean."""
        self.G.requires_grad_(net is self.G)
        self.D.requires_grad_(net is self.D)
        opt.zero_grad(set_to_none=True)
        losses = []
        for part in passes:
            loss = compute_loss(*(None if x is None else x[part] for x in inputs))
            self.manual_backward(loss / len(passes))
            losses.append(loss.detach())
        average_gradients_(net)
        finite_gradients_(net)
        opt.step()
        return torch.stack(losses).mean()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """batch: (uint8 images [n, C, R, R], int64 labels [n]) with n = batch_size / world_size."""
        if not self._rng_started:
            self._start_rng_stream()
        images, labels = batch
        real = (images.to(torch.float32) / 127.5 - 1).contiguous(memory_format=self.memory_format)
        real_c = self.labels_to_c(labels)
        n = real.shape[0]
        gen_c = None if real_c is None else real_c[torch.randperm(n, device=real.device)]
        opt_g, opt_d = self.optimizers(use_pl_optimizer=False)
        G, D, loss = self.G, self.D, self.loss
        loss.set_progress(self.cur_nimg)
        passes = batch_passes(n, self.batch_gpu)

        def z() -> torch.Tensor:  # one draw per phase, split across the passes: the same latents for any B
            return torch.randn(n, G.z_dim, device=real.device)

        phase = self._train_phase
        losses = {"loss/G": phase(G, opt_g, passes, functools.partial(loss.generator_loss, G, D), z(), gen_c)}
        if loss.pl_weight > 0 and self.num_steps % loss.pl_interval == 0:
            losses["loss/G_pl"] = phase(
                G, opt_g, passes, functools.partial(loss.path_length_loss, G), z(), gen_c
            )
        losses["loss/D"] = phase(
            D, opt_d, passes, functools.partial(loss.discriminator_loss, G, D), z(), gen_c, real, real_c
        )
        if loss.gamma > 0 and self.num_steps % loss.r1_interval == 0:
            losses["loss/D_r1"] = phase(D, opt_d, passes, functools.partial(loss.r1_loss, D), real, real_c)
        loss.adapt_augment(self.num_steps, self.batch_size)
        self.G.requires_grad_(False)
        self.D.requires_grad_(False)
        if world_size() > 1:  # the running statistics each rank updated from its own batch: made equal
            average_tensors_(running_statistics(G, D))

        # One host-device sync per step: losses and pl_mean come back together for the NaN check and logs.
        losses["pl_mean"] = loss.pl_mean
        if loss.adaptive:
            losses["augment/p"] = loss.augment.p.to(loss.pl_mean.dtype)
        values = dict(zip(losses, mean_over_ranks(torch.stack(list(losses.values()))).tolist(), strict=True))
        self._check_finite(values)
        update_ema_(self.G_ema, G, ema_beta(self.batch_size, self.ema_kimg, self.ema_rampup, self.cur_nimg))
        self.cur_nimg += self.batch_size
        self.num_steps += 1
        self.last_losses.update(values)
        self.stats.add(values)
        if self.done:
            self.trainer.should_stop = True

    def _check_finite(self, values: dict[str, float]) -> None:
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if bad:
            raise TrainingDiverged(
                f"{', '.join(f'{name} = {values[name]}' for name in bad)} at kimg {self.cur_kimg:.3f} "
                f"(step {self.num_steps}): training diverged and was stopped; the last checkpoint written "
                "before this step is intact. Resume (resume=auto) with a larger loss.gamma, or start a new "
                "run with a lower learning rate: a resume restores the optimizer state (learning rate "
                "included) and the random state, so with unchanged settings it diverges again, whatever "
                "seed is set."
            )

    def training_state(self) -> dict[str, Any]:
        """Complete training state (see studio.io.checkpoint). Collective under torch.distributed:
        every rank must call it (each contributes its RNG state)."""
        rng = capture_rng_state()
        if world_size() > 1:
            gathered: list[Any] = [None] * world_size()
            dist.all_gather_object(gathered, rng)
            rng_per_rank = gathered
        else:
            rng_per_rank = [rng]
        opt_g, opt_d = self.optimizers(use_pl_optimizer=False)
        return {
            "format": CHECKPOINT_FORMAT,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "loss": self.loss.state_dict(),
            "opt_G": opt_g.state_dict(),
            "opt_D": opt_d.state_dict(),
            "progress": {
                "cur_nimg": self.cur_nimg,
                "step": self.num_steps,
                "batch": self.batch_size,
                "world_size": world_size(),
            },
            "rng": rng_per_rank,
            "stats": self.stats.state_dict(),
            **({"best": self.best.state_dict()} if self.best is not None else {}),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore weights and progress now; optimizer states when fit starts, RNG states at the first step
        (after Lightning's setup, which may draw random numbers itself)."""
        progress = state["progress"]
        if progress["batch"] != self.batch_size:
            raise ValueError(
                f"The checkpoint was trained with train.batch={progress['batch']} but this run sets "
                f"train.batch={self.batch_size}; resume with the same batch size."
            )
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.loss.load_state_dict(state["loss"])
        self.cur_nimg = int(progress["cur_nimg"])
        self.num_steps = int(progress["step"])
        self._pending_optimizer_states = (state["opt_G"], state["opt_D"])
        self._pending_rng = list(state["rng"])
        if "stats" in state:  # running means since the last tick, so the next line covers the whole tick
            self.stats.load_state_dict(state["stats"])
        if self.best is not None and "best" in state:
            self.best.load_state_dict(state["best"])
