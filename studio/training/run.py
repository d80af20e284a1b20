"""Build a StyleGAN2 training run from the composed Hydra config and run it."""

import logging
import secrets
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from models.stylegan2.layers import MinibatchStdDev
from ops.environment import fp32_precision
from studio.callbacks import GeneratorMetrics, KimgProgressBar, MetricsLog, SampleGrid, TrainingCheckpoint
from studio.features.pretrained import load_feature_network_weights
from studio.io.atomic import remove_stale_temporaries, write_text_atomic
from studio.io.checkpoint import latest_checkpoint, load_checkpoint, network_spec
from studio.metrics.compute import metric_outputs
from studio.runtime import available_cores
from studio.training.config_check import ConfigError, check_config
from studio.training.datamodule import InfiniteDataModule
from studio.training.distributed import GANDDPStrategy
from studio.training.module import StyleGAN2Module, batch_passes
from studio.training.monitor import BestMonitor
from studio.training.resume_rules import check_resume

log = logging.getLogger(__name__)

SINGLE_PROCESS_STRATEGIES = ("auto", "single_device")
WANDB_ID_FILE = "wandb_id.txt"

# G_ema is in eval mode on purpose; Lightning warns about any module in eval mode at the start of fit.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")


def build(node: DictConfig, where: str, **kwargs: Any) -> Any:
    """instantiate(node) with the constructor's own error brought forward (Hydra's "Error in call to
    target ..." wrapper hides it): as it is when it already names its config keys (datasets, the loss),
    else as a ConfigError naming the node."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if not isinstance(cause, (ValueError, TypeError, FileNotFoundError)):
            raise
        if isinstance(cause, FileNotFoundError) or f"{where.split('.')[0]}." in str(cause):
            raise cause from None
        raise ConfigError(f"{where}: {cause}") from None


def check_resolution(cfg: DictConfig) -> None:
    """StyleGAN2 doubles the resolution from 4x4 in every block, so it needs a power of two >= 4."""
    resolution = int(cfg.data.resolution)
    if resolution >= 4 and resolution & (resolution - 1) == 0:
        return
    fix = f"data.resolution={max(4, 1 << (resolution - 1).bit_length())}"
    if "resize" in cfg.data:  # image datasets: resize to the next power of two while loading
        fix += f" data.resize={cfg.data.resize or 'lanczos'} to resize the images on the fly"
    raise ValueError(
        f"The dataset resolution is {resolution}x{resolution}, but StyleGAN2 needs a power of two >= 4 "
        f"(4, 8, 16, 32, ...). Fix: {fix}."
    )


def resolve_data(cfg: DictConfig) -> Any:
    """Instantiate the dataset and complete the config from it: data.resolution when null, model.c_dim
    from the number of classes when data.use_labels."""
    dataset = build(cfg.data.dataset, "data.dataset")
    with open_dict(cfg):
        if cfg.data.resolution is None:
            cfg.data.resolution = int(dataset.resolution)
        if cfg.data.use_labels:
            if dataset.num_classes < 1:
                raise ValueError("data.use_labels=true but the dataset has no class labels.")
            cfg.model.c_dim = int(dataset.num_classes)
    if dataset.resolution != cfg.data.resolution:
        raise ValueError(
            f"The dataset's images are {dataset.resolution}px but data.resolution={cfg.data.resolution}."
        )
    check_resolution(cfg)
    return dataset


def constructor_kwargs(network_cfg: DictConfig) -> dict[str, Any]:
    """The resolved keyword arguments of a network config, without Hydra's `_target_`."""
    kwargs = OmegaConf.to_container(network_cfg, resolve=True)
    kwargs.pop("_target_")
    return kwargs


def run_identity(cfg: DictConfig, dataset: Any) -> dict[str, Any]:
    """What a resumed run must share with its checkpoint to continue exactly: the seed (data order,
    sample and metric latents) and the dataset (its fingerprint when it has one, else its length)."""
    fingerprint = dataset.fingerprint() if hasattr(dataset, "fingerprint") else None
    return {"seed": int(cfg.seed), "dataset_length": len(dataset), "dataset_fingerprint": fingerprint}


def warn_if_run_differs(saved: dict[str, Any] | None, current: dict[str, Any]) -> None:
    """One warning line per difference between the checkpoint's run identity and this run's."""
    if saved is None:  # checkpoints written before run identities were stored
        return
    if saved["seed"] != current["seed"]:
        log.warning(
            "seed=%s differs from the checkpoint's seed=%s: the random state continues from the checkpoint, "
            "but the data order and the sample/metric latents change, so this is not an exact continuation.",
            current["seed"],
            saved["seed"],
        )
    fingerprints = saved["dataset_fingerprint"], current["dataset_fingerprint"]
    fingerprint_changed = None not in fingerprints and fingerprints[0] != fingerprints[1]
    if saved["dataset_length"] != current["dataset_length"] or fingerprint_changed:
        log.warning(
            "The dataset differs from the checkpoint's (%d images, fingerprint %s; the checkpoint's: %d "
            "images, %s): the data order is not an exact continuation.",
            current["dataset_length"],
            current["dataset_fingerprint"],
            saved["dataset_length"],
            saved["dataset_fingerprint"],
        )


def resume_path(resume: str | None, run_dir: Path) -> Path | None:
    """The checkpoint to continue from: `resume=auto` -> run_dir/checkpoints/last.ckpt when it exists.
    A fresh start (resume=null) in a run dir that already holds a run is refused: it would overwrite its
    checkpoints, best.ckpt and metrics.jsonl (e.g. a requeued cluster job started without resume=auto)."""
    if resume is None:
        if latest_checkpoint(run_dir) is not None:
            raise ValueError(
                f"run_dir={run_dir} already holds a run (checkpoints/last.ckpt). Continue it with "
                "resume=auto, or start a new run in another run_dir."
            )
        return None
    if resume == "auto":
        path = latest_checkpoint(run_dir)
        if path is None:
            log.info("resume=auto: no checkpoint in %s/checkpoints, starting a new run.", run_dir)
        return path
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(
            f"resume={resume}: no such checkpoint file (use resume=auto or a .ckpt path)."
        )
    return path


def wandb_run_id(run_dir: Path) -> str:
    """The W&B run id of `run_dir`: drawn at the first start and stored in run_dir/wandb_id.txt, read back
    on resume so that the resumed run continues the same W&B run."""
    path = run_dir / WANDB_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    run_id = secrets.token_hex(8)  # W&B run ids may use [a-z0-9]
    write_text_atomic(path, run_id + "\n")
    return run_id


def build_loggers(cfg: DictConfig | None, run_dir: Path) -> list[Logger]:
    """One Lightning logger per entry of the `logger` group that has a _target_; a W&B logger without an
    `id` gets the run dir's stable id (wandb_run_id)."""
    if not cfg:
        return []
    loggers = []
    for entry in cfg.values():
        if not (isinstance(entry, DictConfig) and "_target_" in entry):
            continue
        wandb_without_id = entry._target_.endswith(".WandbLogger") and entry.get("id") is None
        loggers.append(instantiate(entry, **({"id": wandb_run_id(run_dir)} if wandb_without_id else {})))
    return loggers


def build_strategy(trainer_cfg: DictConfig) -> Any:
    """Lightning strategy: single process, or GANDDPStrategy for several devices/nodes."""
    strategy = trainer_cfg.strategy
    if strategy not in (*SINGLE_PROCESS_STRATEGIES, GANDDPStrategy.strategy_name):
        raise ValueError(
            f"trainer.strategy={strategy} is not supported for GAN training: use 'auto' (one process, or "
            f"'{GANDDPStrategy.strategy_name}' when trainer.devices or trainer.num_nodes > 1)."
        )
    several = str(trainer_cfg.devices) not in ("1", "[0]") or int(trainer_cfg.num_nodes) > 1
    if strategy == GANDDPStrategy.strategy_name or (strategy == "auto" and several):
        return GANDDPStrategy()
    return strategy


def resolve_workers(cfg: DictConfig) -> None:
    """data.num_workers=auto -> half the cores, 1 to 4: one worker keeps up with CPU training (it sleeps
    most of the time) and more would only compete with torch's threads for the cores."""
    if cfg.data.num_workers == "auto":
        with open_dict(cfg):
            cfg.data.num_workers = min(4, max(1, available_cores() // 2))


def trains_on_cpu(cfg: DictConfig) -> bool:
    """Whether the Lightning trainer of `cfg` will run on the CPU."""
    accelerator = cfg.trainer.accelerator
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())


def set_cpu_threads(cfg: DictConfig) -> None:
    """Torch intra-op threads when training on CPU: train.cpu_threads, or by default every core but one
    per data worker beyond the first. Torch's threads busy-wait at barriers, so cores shared with busy
    workers slow training several times over; a single worker is mostly asleep (32x32 rendering or PNG
    decoding takes milliseconds per batch of a step that takes about a second), and leaving it a core
    cost 1.5x in training speed on 2 cores (docs/benchmarks.md)."""
    if not trains_on_cpu(cfg):
        return
    threads = cfg.train.cpu_threads
    if threads is None:
        threads = max(1, available_cores() - max(0, int(cfg.data.num_workers) - 1))
    torch.set_num_threads(int(threads))


def use_channels_last(cfg: DictConfig) -> bool:
    """train.channels_last: true, false, or auto = on CPU only (measured faster there; on GPUs the
    layout has not been measured yet, so they keep NCHW)."""
    setting = cfg.train.channels_last
    return trains_on_cpu(cfg) if setting == "auto" else setting


def check_batch_split(train_cfg: DictConfig, discriminator: nn.Module, processes: int) -> None:
    """ConfigError unless passes of train.batch_gpu images tile each process's share of the batch and
    the discriminator's minibatch-stddev groups tile a pass (its forward would refuse it mid-step)."""
    if train_cfg.batch % processes:
        return  # the data module names that problem
    try:
        size = batch_passes(train_cfg.batch // processes, train_cfg.batch_gpu)[0].stop
    except ValueError as err:
        raise ConfigError(str(err)) from None
    for layer in discriminator.modules():
        if not isinstance(layer, MinibatchStdDev):
            continue
        try:
            layer.group_for(size)
        except ValueError:
            raise ConfigError(
                f"model.discriminator.mbstd_group_size={layer.group_size} must divide the {size} images of "
                "each forward pass (train.batch / processes, or train.batch_gpu when smaller), or be at "
                "least that many."
            ) from None


def load_pretrained_backbone(discriminator: nn.Module, weights: str | None) -> None:
    """Load the ImageNet weights of a Projected GAN discriminator's frozen backbone (model.backbone_weights,
    else studio's cache, else the package that ships them); other discriminators have none to load."""
    network = getattr(discriminator, "feature_network", None)
    if network is None:
        if weights is not None:
            raise ConfigError(
                f"model.backbone_weights={weights}: this discriminator has no pretrained backbone; "
                "remove the key or use model/discriminator=projected."
            )
        return
    source = load_feature_network_weights(network, weights)
    log.info(
        "Discriminator backbone %s: weights %s (sha256 %s).", network.name, source, network.weights_sha256
    )


def build_module(cfg: DictConfig, pretrained: bool = True) -> StyleGAN2Module:
    """Networks, loss, augmentation and optimizers from the config (weights initialised from cfg.seed,
    a Projected GAN backbone's loaded from its pretrained file unless `pretrained` is False: a resumed
    run's checkpoint holds them)."""
    L.seed_everything(cfg.seed, verbose=False)
    generator = build(cfg.model.generator, "model.generator")
    discriminator = build(cfg.model.discriminator, "model.discriminator")
    if pretrained:
        load_pretrained_backbone(discriminator, cfg.model.get("backbone_weights"))
    augment = build(cfg.augment, "augment") if cfg.get("augment") else None
    return StyleGAN2Module(
        generator=generator,
        discriminator=discriminator,
        loss=build(cfg.loss, "loss", augment=augment),
        g_optimizer=build(cfg.optimizer.generator, "optimizer.generator"),
        d_optimizer=build(cfg.optimizer.discriminator, "optimizer.discriminator"),
        batch_size=cfg.train.batch,
        batch_gpu=cfg.train.batch_gpu,
        total_kimg=cfg.train.kimg,
        ema_kimg=cfg.train.ema_kimg,
        ema_rampup=cfg.train.ema_rampup,
        seed=cfg.seed,
        channels_last=use_channels_last(cfg),
        best=build_monitor(cfg.eval),
    )


def build_monitor(eval_cfg: DictConfig) -> BestMonitor | None:
    """The eval.monitor tracker (None without eval.monitor); eval.mode=auto takes the metric's direction."""
    if eval_cfg.monitor is None:
        return None
    mode = eval_cfg.mode
    if mode == "auto":
        mode = metric_outputs(eval_cfg.metrics)[eval_cfg.monitor]
    measured_by = ("metrics", "options", "num_gen", "num_real", "backbone", "weights")
    protocol = OmegaConf.to_container(OmegaConf.masked_copy(eval_cfg, list(measured_by)), resolve=True)
    return BestMonitor(eval_cfg.monitor, mode, protocol)


def build_evaluation(cfg: DictConfig, dataset: Any, generator: nn.Module) -> GeneratorMetrics | None:
    """The metric suite of eval.*, or None when eval.metrics is empty. Its checks (backbone weights
    present, option names, sample counts against k, a generator the metrics can measure) run now
    rather than at the first tick."""
    if not cfg.eval.metrics:
        return None
    try:
        metrics = GeneratorMetrics(
            dataset,
            cfg.eval.metrics,
            num_gen=cfg.eval.num_gen,
            backbone=cfg.eval.backbone,
            weights=cfg.eval.weights,
            num_real=cfg.eval.num_real,
            batch=cfg.eval.batch,
            seed=cfg.seed,
            options=OmegaConf.to_container(cfg.eval.options),
            views=cfg.eval.views,
            psi_sweep=list(cfg.eval.psi_sweep),
            metrics_device=cfg.eval.metrics_device,
        )
        if metrics.equivariance is not None:
            metrics.equivariance.check_generator(generator)
    except ValueError as err:
        raise ConfigError(f"eval: {err}") from None
    return metrics


def train(
    cfg: DictConfig,
    extra_callbacks: Sequence[L.Callback] = (),
    referenced: frozenset[str] | set[str] = frozenset(),
) -> StyleGAN2Module:
    """Train (or continue) the run described by `cfg` into cfg.run_dir; returns the trained module.

    Everything is checked and built before the first file is written into the run dir, so a config
    that fails leaves nothing behind. `referenced`: keys that interpolations outside `cfg` use (e.g.
    Hydra's run dir pattern), which count as used for the unknown-key check."""
    run_dir = Path(cfg.run_dir)
    check_config(cfg, referenced)
    resolve_workers(cfg)
    set_cpu_threads(cfg)
    dataset = resolve_data(cfg)
    checkpoint = resume_path(cfg.resume, run_dir)
    module = build_module(cfg, pretrained=checkpoint is None)
    evaluate = build_evaluation(cfg, dataset, module.G_ema)
    identity = run_identity(cfg, dataset)
    if checkpoint is not None:
        state = load_checkpoint(checkpoint)
        check_resume(state.get("config"), cfg, state["progress"]["cur_nimg"] / 1000)
        module.load_training_state(state)
        warn_if_run_differs(state.get("run"), identity)
        log.info("Resuming from %s at kimg %.3f.", checkpoint, module.cur_kimg)
    if module.done:
        log.info("Training already reached train.kimg=%s; nothing to do.", cfg.train.kimg)
        return module

    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    datamodule = InfiniteDataModule(dataset, cfg.train.batch, cfg.data.num_workers, seed=cfg.seed)
    datamodule.start_nimg = module.cur_nimg
    extra = {
        "networks": {
            "generator": network_spec(module.G, constructor_kwargs(cfg.model.generator)),
            "discriminator": network_spec(module.D, constructor_kwargs(cfg.model.discriminator)),
        },
        "config": config_yaml,
        "run": identity,
    }
    callbacks = [
        SampleGrid(run_dir / "samples", cfg.eval.every_kimg, grid=cfg.eval.grid, seed=cfg.seed),
        MetricsLog(run_dir / "metrics.jsonl", cfg.eval.every_kimg, evaluate=evaluate, strict=cfg.eval.strict),
        TrainingCheckpoint(run_dir / "checkpoints", cfg.ckpt.every_kimg, extra=extra),
        *extra_callbacks,
    ]
    if cfg.trainer.enable_progress_bar:
        callbacks.append(KimgProgressBar())
    strategy = build_strategy(cfg.trainer)
    try:  # the Trainer checks its own arguments (devices, accelerator, ...): before anything is written
        trainer = build(cfg.trainer, "trainer", strategy=strategy, callbacks=callbacks, logger=False)
    except InstantiationException as err:
        if isinstance(err.__cause__, MisconfigurationException):
            raise ConfigError(f"trainer: {err.__cause__}") from None
        raise
    check_batch_split(cfg.train, module.D, trainer.world_size)
    trainer.loggers = build_loggers(cfg.logger, run_dir)
    if rank_zero_only.rank == 0:
        # Nothing writes into this run's folders yet: temporary files there are debris of a killed writer.
        for stale in (*remove_stale_temporaries(run_dir), *remove_stale_temporaries(run_dir / "checkpoints")):
            log.info("Removed %s, left by an interrupted write.", stale)
        write_text_atomic(run_dir / "config.yaml", config_yaml)
    hyperparams = OmegaConf.to_container(cfg, resolve=True)
    for logger in trainer.loggers:
        logger.log_hyperparams(hyperparams)
    # IEEE float32 on CUDA, as NVlabs' loops train (TF32 off): the reference numbers and the metrics
    # assume it; fp16 layers are unaffected.
    with fp32_precision():
        trainer.fit(module, datamodule=datamodule)
    return module
