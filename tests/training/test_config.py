"""The Hydra config tree: every experiment preset composes and builds the networks it describes."""

import math
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from omegaconf import OmegaConf

from studio.cli.train import CONFIG_DIR
from studio.features import list_backbones
from studio.training import run
from studio.training.config_check import ConfigError, check_config
from studio.training.run import build_loggers

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


def compose_experiment(name: str, *overrides: str):
    """The experiment's config; presets on an image folder get data.path=/nonexistent."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={name}", *overrides])
        if OmegaConf.is_missing(cfg.data, "path"):
            cfg = compose("train", overrides=[f"experiment={name}", "data.path=/nonexistent", *overrides])
    return cfg


def stylegan2_g_params(res: int, z: int, w: int, map_layers: int, cbase: int, cmax: int) -> int:
    """Parameter count of the StyleGAN2 skip generator, from the paper's architecture (no c)."""
    ch = {r: min(cbase // r, cmax) for r in (2**i for i in range(2, int(math.log2(res)) + 1))}

    def modconv(cin: int, cout: int, k: int) -> int:  # affine (w -> cin styles) + weight + bias
        return w * cin + cin + cout * cin * k * k + cout

    total = sum(fan_in * w + w for fan_in in [z] + [w] * (map_layers - 1))  # mapping
    prev = 0
    for r, c in ch.items():
        if r == 4:
            total += c * 4 * 4 + modconv(c, c, 3) + 1  # const, conv1 (+ noise strength)
        else:
            total += modconv(prev, c, 3) + 1 + modconv(c, c, 3) + 1  # conv0 (up), conv1
        total += modconv(c, 3, 1)  # toRGB
        prev = c
    return total


def stylegan2_d_params(res: int, cbase: int, cmax: int) -> int:
    """Parameter count of the StyleGAN2 resnet discriminator (mbstd 1 channel, no c)."""

    def ch(r: int) -> int:
        return min(cbase // r, cmax)

    total = 3 * ch(res) + ch(res)  # fromRGB 1x1
    r = res
    while r > 4:
        cin, cout = ch(r), ch(r // 2)
        total += cin * cin * 9 + cin + cout * cin * 9 + cout + cout * cin  # conv0, conv1 (down), skip
        r //= 2
    c4 = ch(4)
    total += (c4 + 1) * c4 * 9 + c4 + c4 * 16 * c4 + c4 + c4 + 1  # mbstd conv, fc, out
    return total


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_analytic_counts_reproduce_the_published_cpu_config() -> None:
    # docs/benchmarks.md: G 2,284,307 and D 1,346,305 at 32x32, cbase 4096, cmax 128, mapping 2.
    assert stylegan2_g_params(32, 512, 512, 2, 4096, 128) == 2_284_307
    assert stylegan2_d_params(32, 4096, 128) == 1_346_305


# Published StyleGAN3 generator sizes (docs/benchmarks.md) and NVlabs' StyleGAN2 D at the same settings.
STYLEGAN3_COUNTS = {
    "stylegan3_t_256": 28_472_133,
    "stylegan3_r_256": 18_816_387,
    "stylegan3_t_cpu32": 3_595_271,
}


STYLEGAN_EXPERIMENTS = [name for name in EXPERIMENTS if name.startswith("stylegan")]


@pytest.mark.parametrize("name", STYLEGAN_EXPERIMENTS)
def test_every_stylegan_experiment_composes_and_builds_its_networks(name: str) -> None:
    cfg = compose_experiment(name)
    m, res = cfg.model, cfg.data.resolution
    G = instantiate(cfg.model.generator)
    D = instantiate(cfg.model.discriminator)
    assert G.img_resolution == D.img_resolution == res
    if name.startswith("stylegan3"):
        assert count(G) == STYLEGAN3_COUNTS[name]
        assert (cfg.loss.style_mixing, cfg.loss.pl_weight, cfg.model.map_layers) == (0, 0, 2)
        assert cfg.loss.blur_init_sigma == (8.49 if "_r_" in name else 0)
        # NVlabs' --batch-gpu of the measured 256² runs (docs/benchmarks.md); the CPU yardstick: one pass.
        assert cfg.train.batch_gpu == {"stylegan3_t_256": 16, "stylegan3_r_256": 8}.get(name)
    else:
        g_params = stylegan2_g_params(res, m.z_dim, m.w_dim, m.map_layers, m.channel_base, m.channel_max)
        assert count(G) == g_params
    assert count(D) == stylegan2_d_params(res, m.channel_base, m.channel_max)
    instantiate(cfg.loss)
    instantiate(cfg.optimizer.generator)


@pytest.mark.parametrize(("batch", "fade_kimg"), [(None, None), (64, 400.0), (8, 50.0)])
def test_stylegan3_schedules_follow_the_batch_as_nvlabs_derives_them(batch: int | None, fade_kimg) -> None:
    """NVlabs' train.py: magnitude_ema_beta = 0.5 ** (batch / 20000), blur_fade_kimg = batch * 200 / 32."""
    cfg = compose_experiment("stylegan3_r_256", *([f"train.batch={batch}"] if batch else []))
    batch = batch or 32
    assert cfg.train.batch == batch
    assert cfg.model.magnitude_ema_beta == 0.5 ** (batch / 20000)
    assert cfg.loss.blur_fade_kimg == (fade_kimg or 200.0)
    G = instantiate(cfg.model.generator)
    betas = {module.beta for module in G.modules() if type(module).__name__ == "MagnitudeEMA"}
    assert betas == {0.5 ** (batch / 20000)}
    assert instantiate(cfg.loss).blur_fade_kimg == (fade_kimg or 200.0)
    # The CPU yardstick's batch 16 gives the value it has always had (resumed runs continue bitwise).
    assert compose_experiment("stylegan3_t_cpu32").model.magnitude_ema_beta == 0.9994456359721023
    overrides = ("model.magnitude_ema_beta=0.999", "loss.blur_fade_kimg=10")
    explicit = compose_experiment("stylegan3_t_256", *overrides)
    synthesis = explicit.model.generator.synthesis_kwargs
    assert (synthesis.magnitude_ema_beta, explicit.loss.blur_fade_kimg) == (0.999, 10)


@pytest.mark.parametrize(
    ("name", "lr", "generator"),
    [
        ("projected_fastgan_256", 0.0002, "models.fastgan.Generator"),
        ("projected_fastgan_lite_256", 0.0002, "models.fastgan.Generator"),
        ("projected_fastgan_cpu32", 0.0002, "models.fastgan.Generator"),
        ("projected_stylegan2_256", 0.002, "models.stylegan2.Generator"),
    ],
)
def test_projected_presets_have_the_published_settings(name: str, lr: float, generator: str) -> None:
    # Sauer et al. 2021 / their train.py: hinge loss, DiffAugment, Adam betas (0, 0.99), EMA batch * 10 / 32.
    cfg = compose_experiment(name)
    assert cfg.model.generator._target_ == generator
    assert cfg.model.discriminator._target_ == "models.projected.ProjectedDiscriminator"
    assert (cfg.loss.objective, cfg.loss.gamma, cfg.loss.pl_weight, cfg.loss.style_mixing) == (
        "hinge",
        0,
        0,
        0,
    )
    assert (cfg.augment._target_, cfg.augment.policy) == (
        "models.augment.DiffAugment",
        "color,translation,cutout",
    )
    for net in ("generator", "discriminator"):
        assert (cfg.optimizer[net].lr, list(cfg.optimizer[net].betas)) == (lr, [0.0, 0.99])
    assert cfg.train.ema_kimg is None  # batch * 10 / 32
    assert cfg.model.discriminator.projection == "ccm_csm"
    assert cfg.model.discriminator.separable_heads == (generator == "models.stylegan2.Generator")
    if name.endswith("_256"):
        assert (cfg.train.batch, cfg.data.resolution, cfg.model.discriminator.backbone_resolution) == (
            64,
            256,
            None,
        )
        assert cfg.model.generator.get("lite", False) == ("lite" in name)
    if generator == "models.stylegan2.Generator":
        assert (cfg.model.z_dim, cfg.model.w_dim, cfg.model.map_layers) == (64, 128, 2)


def test_the_256_preset_is_nvlabs_single_gpu_setting() -> None:
    cfg = compose_experiment("stylegan2_256")
    assert (cfg.train.batch, cfg.loss.gamma, cfg.model.map_layers, cfg.model.channel_base) == (
        16,
        0.8192,
        2,
        16384,
    )
    assert cfg.optimizer.generator.lr == 0.0025
    G = instantiate(cfg.model.generator)
    # mapping 2 x (512 * 512 + 512); 256x256 synthesis with channels 512, ..., 512, 256, 128, 64.
    assert count(G.mapping) == 525_312
    assert count(G) == stylegan2_g_params(256, 512, 512, 2, 16384, 512)


def test_cpu_preset_matches_the_reference_parameter_counts() -> None:
    cfg = compose_experiment("stylegan2_cpu32")
    assert count(instantiate(cfg.model.generator)) == 2_284_307
    assert count(instantiate(cfg.model.discriminator)) == 1_346_305


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ConfigCompositionException, match="Could not override 'train.kimgs'"):
        compose_experiment("stylegan2_cpu32", "train.kimgs=5")


def invalid_lines(cfg) -> list[str]:
    with pytest.raises(ConfigError) as error:
        check_config(cfg)
    return str(error.value).splitlines()[1:]


def test_every_preset_passes_the_config_check(tmp_path) -> None:
    for name in EXPERIMENTS:
        check_config(compose_experiment(name))


def test_invalid_values_are_named_one_line_each(tmp_path, tiny_cfg) -> None:
    cfg = tiny_cfg(
        tmp_path,
        "train.ema_kimg=0",
        "train.channels_last=yes",
        "seed=-3",
        "eval.metrics=[fid,fdi]",
        "eval.backbone=incepton",
        "eval.metrics_device=gpu0",
        "data.num_workers=many",
        "loss.gamma=abc",
        "optimizer.generator.lr=-1",
        "trainer.precision=17",
    )
    assert invalid_lines(cfg) == [
        "  seed=-3: must be an integer >= 0.",
        "  train.ema_kimg=0: must be a number > 0 (or null).",
        "  train.channels_last=yes: must be one of true, false, auto.",
        "  eval.metrics=['fid', 'fdi']: unknown metric(s) ['fdi']; valid: fid, kid, is, pr, dc, rarity, prd, "
        "abauth, ppl, eq_t, eq_t_frac, eq_r.",
        f"  eval.backbone=incepton: must be one of {', '.join(list_backbones())}.",
        "  eval.metrics_device=gpu0: must be 'auto', 'cpu' or a torch device such as 'cuda:0'.",
        "  data.num_workers=many: must be one of auto or must be an integer >= 0.",
        "  loss.gamma=abc: must be float.",
        "  trainer.precision=17: must be one of 64, 32, 16, transformer-engine, transformer-engine-float16, "
        "16-true, 16-mixed, bf16-true, bf16-mixed, 32-true, 64-true, 64, 32, 16, bf16 or null.",
        "  optimizer.generator: Invalid learning rate: -1.",
    ]
    # Lightning's mixed precision would autocast the steps of studio's unscaled optimizers.
    assert invalid_lines(tiny_cfg(tmp_path, "trainer.precision=16-mixed")) == [
        "  trainer.precision=16-mixed: studio trains with 32-true and runs float16 itself where it is safe: "
        "on CUDA, model.num_fp16_res=N puts the top N resolutions of StyleGAN G and D in float16 "
        "(docs/training.md)."
    ]
    check_config(tiny_cfg(tmp_path, "trainer.precision=32"))


def test_keys_added_anywhere_must_be_used(tmp_path, tiny_cfg) -> None:
    cfg = tiny_cfg(
        tmp_path,
        "+kimg=3",
        "+eval.num_fakes=10",
        "+data.path=/images",  # a key of data=folder, unused by the shapes dataset
        "+model.generator.foo=1",
        "+logger.entity=me",
        "+trainer.max_stepz=3",
    )
    lines = invalid_lines(cfg)
    assert lines[:5] == [
        "  kimg: unknown key (valid keys here: run_dir, seed, resume, train, ckpt, eval, data, model, "
        "logger, loss, trainer, augment, optimizer).",
        "  eval.num_fakes: unknown key (valid keys here: every_kimg, metrics, options, monitor, mode, "
        "strict, views, psi_sweep, num_gen, num_real, backbone, weights, batch, metrics_device, grid).",
        "  data.path: this data config does not use it (no _target_ argument refers to it); remove it or "
        "pick the config group that has it.",
        "  model.generator.foo: unknown key (models.stylegan2.Generator takes: z_dim, c_dim, w_dim, "
        "img_resolution, img_channels, mapping_kwargs, synthesis_kwargs).",
        "  logger.entity: this logger config does not use it (no _target_ argument refers to it); remove it "
        "or pick the config group that has it.",
    ]
    assert lines[5].startswith("  trainer.max_stepz: unknown key (lightning.Trainer takes: accelerator, ")
    assert len(lines) == 6
    # Arguments the target accepts may be added: explicit parameters, or **kwargs (W&B's init options).
    check_config(tiny_cfg(tmp_path, "+trainer.max_steps=3", "logger=wandb", "+logger.wandb.entity=me"))


def test_default_run_is_the_demo_a_small_projected_gan_on_shapes_with_a_cheap_fid() -> None:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train")
        plain = compose("train", overrides=["~experiment"])
        preset = compose("train", overrides=["experiment=stylegan2_cpu32"])
    assert cfg.data.dataset._target_ == "studio.data.shapes.ShapesDataset"
    assert cfg.data.resolution == 32
    assert cfg.trainer.accelerator == "auto"
    assert list(cfg.logger) == ["tensorboard"]
    # A small Projected GAN: FastGAN-lite against the pretrained Lite0 backbone at 64x64.
    assert (cfg.model.generator._target_, cfg.model.generator.lite, cfg.model.generator.ngf) == (
        "models.fastgan.Generator",
        True,
        32,
    )
    assert cfg.model.discriminator._target_ == "models.projected.ProjectedDiscriminator"
    assert cfg.model.discriminator.backbone_resolution == 64
    assert (cfg.loss.objective, cfg.augment._target_, cfg.augment.policy) == (
        "hinge",
        "models.augment.DiffAugment",
        "translation",
    )
    assert cfg.data.use_labels and cfg.data.object_scale == 1.5 and cfg.data.dataset.object_scale == 1.5
    assert (cfg.train.kimg, cfg.train.batch, cfg.optimizer.generator.lr) == (4, 16, 0.0002)
    assert (list(cfg.eval.metrics), cfg.eval.backbone, cfg.eval.num_gen) == (["fid"], "random_cnn", 1000)
    # A preset replaces the demo entirely: its own settings, no metrics at ticks unless asked.
    for other in (plain, preset):
        assert list(other.eval.metrics) == [] and other.loss.pl_weight == 2.0
        assert not other.data.use_labels and other.data.object_scale == 1.0
        assert other.model.generator._target_ == "models.stylegan2.Generator" and not other.augment


def test_logger_group_builds_the_selected_loggers(tmp_path) -> None:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        several = compose("train", overrides=[f"run_dir={tmp_path}", "logger=[tensorboard,csv]"])
        wandb = compose("train", overrides=[f"run_dir={tmp_path}", "logger=wandb", "logger.offline=true"])
        none = compose("train", overrides=[f"run_dir={tmp_path}", "logger=none"])
    assert [type(x) for x in build_loggers(several.logger, tmp_path)] == [TensorBoardLogger, CSVLogger]
    (offline,) = build_loggers(wandb.logger, tmp_path)
    assert isinstance(offline, WandbLogger) and offline._offline is True
    # A stable W&B run id, drawn once per run dir, continued on resume.
    run_id = (tmp_path / "wandb_id.txt").read_text().strip()
    assert offline._wandb_init["id"] == run_id and offline._wandb_init["resume"] == "allow"
    (again,) = build_loggers(wandb.logger, tmp_path)
    assert again._wandb_init["id"] == run_id
    assert build_loggers(none.logger, tmp_path) == []


@pytest.mark.parametrize(
    ("cores", "workers", "threads", "resolved_workers"),
    [
        (2, "auto", 2, 1),  # the default on a 2-core machine: one mostly idle worker, torch on both cores
        (16, "auto", 13, 4),
        (2, 0, 2, 0),
        (2, 4, 1, 4),  # more workers than cores: torch keeps one thread, never more threads than cores free
        (8, 3, 6, 3),
    ],
)
def test_cpu_threads_leave_a_core_per_data_worker_beyond_the_first(
    monkeypatch, cores, workers, threads, resolved_workers
) -> None:
    monkeypatch.setattr(run, "available_cores", lambda: cores)
    chosen = []
    monkeypatch.setattr(run.torch, "set_num_threads", chosen.append)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"data.num_workers={workers}", "trainer.accelerator=cpu"])
    run.resolve_workers(cfg)
    run.set_cpu_threads(cfg)
    assert (chosen, cfg.data.num_workers) == ([threads], resolved_workers)
    cfg.train.cpu_threads = 3
    run.set_cpu_threads(cfg)
    assert chosen[-1] == 3


def test_evaluation_settings_fail_at_start_naming_the_eval_key(tmp_path, tiny_cfg) -> None:
    run_dir = tmp_path / "run"
    few_real = ("eval.metrics=[fid,pr]", "eval.backbone=random_cnn", "eval.num_real=3", "eval.num_gen=8")
    with pytest.raises(ConfigError) as error:
        run.train(tiny_cfg(run_dir, *few_real))
    assert str(error.value) == (
        "eval: metric 'pr' needs at least 4 real samples (k_pr=3, eval.options.knn_metrics.k_pr: a "
        "k-NN radius excludes the sample itself), the real set has 3. Use more samples or change the "
        "setting named."
    )
    with pytest.raises(ConfigError, match=r"^eval: kid\(\) has no option\(s\) \['subset'\]; valid: "):
        run.train(
            tiny_cfg(run_dir, "eval.metrics=[kid]", "eval.backbone=random_cnn", "+eval.options.kid.subset=3")
        )
    with pytest.raises(
        ConfigError, match=r"^eval: fid\(\) has no protocol 'clean-fid'; valid: \['torch-fidelity'"
    ):
        run.train(
            tiny_cfg(
                run_dir,
                "eval.metrics=[fid]",
                "eval.backbone=random_cnn",
                "eval.options.fid.protocol=clean-fid",
            )
        )
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        run.train(tiny_cfg(run_dir, "eval.metrics=[fid]", f"eval.weights={tmp_path / 'nowhere.pth'}"))
    assert not run_dir.exists()  # nothing was written: no run dir, no config.yaml


def test_the_monitor_must_be_a_result_of_the_metrics_with_a_direction(tmp_path, tiny_cfg) -> None:
    base = ("eval.metrics=[fid,kid]", "eval.backbone=random_cnn")
    assert invalid_lines(tiny_cfg(tmp_path, *base, "eval.monitor=precision")) == [
        "  eval.monitor=precision: not a result of eval.metrics=['fid', 'kid']; choose one of fid, kid_mean, "
        "kid_std."
    ]
    assert invalid_lines(tiny_cfg(tmp_path, *base, "eval.monitor=kid_std")) == [
        "  eval.mode=auto: kid_std has no better direction; set eval.mode=min or eval.mode=max."
    ]
    check_config(tiny_cfg(tmp_path, *base, "eval.monitor=kid_std", "eval.mode=min"))
    assert run.build_monitor(tiny_cfg(tmp_path, *base, "eval.monitor=kid_mean").eval).mode == "min"


def test_trainer_and_loss_values_fail_before_anything_is_written(tmp_path, tiny_cfg) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"^trainer: `Trainer\(devices=0\)` value is not a valid input"):
        run.train(tiny_cfg(run_dir, "trainer.devices=0"))
    with pytest.raises(ValueError, match=r"^loss.gamma is a regularization weight >= 0, got -1"):
        run.train(tiny_cfg(run_dir, "loss.gamma=-1"))
    assert invalid_lines(tiny_cfg(run_dir, "eval.psi_sweep=[1.0,1.5]")) == [
        "  eval.psi_sweep=[1.0, 1.5]: truncation values must be numbers in [0, 1], e.g. "
        "[1.0,0.9,0.8,0.7,0.5]; got [1.5]."
    ]
    assert not run_dir.exists()


def test_the_eval_options_in_the_config_are_the_metric_functions_defaults(tmp_path, tiny_cfg) -> None:

    from studio.metrics.compute import METRIC_GROUPS, effective_options

    cfg = tiny_cfg(tmp_path, "eval.options.prd.num_clusters=10")  # an override, no + needed
    options = OmegaConf.to_container(cfg.eval.options)
    assert options.pop("prd")["num_clusters"] == 10
    expected = effective_options(list(METRIC_GROUPS))
    expected.pop("prd")
    # The function's default None means "the protocol's radius"; reports show the radius used.
    assert expected["equivariance"]["lanczos_radius"] == 8
    expected["equivariance"]["lanczos_radius"] = None
    assert options == expected


def test_equivariance_metrics_of_a_stylegan2_run_are_refused_at_start(tmp_path, tiny_cfg) -> None:
    from studio.metrics.path_length import path_length_for

    with pytest.raises(ConfigError, match=r"eval: eq_t needs a generator with an input transform"):
        run.train(tiny_cfg(tmp_path / "run", "eval.metrics=[eq_t]", "eval.every_kimg=1"))
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert path_length_for(["eq_t", "fid"], None) is None  # no LPIPS weights needed without ppl
