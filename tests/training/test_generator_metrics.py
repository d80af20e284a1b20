"""eval.metrics during training: the metric suite on G_ema samples, written to metrics.jsonl."""

import json

import pytest
import torch
from tiny_run import tiny_generator

import studio.metrics.functional as F
from studio.callbacks import GeneratorMetrics
from studio.data import ShapesDataset
from studio.features import create_backbone, extract_features
from studio.io.checkpoint import load_checkpoint, load_generator
from studio.training.run import train


def test_metrics_equal_the_functional_core_on_independently_extracted_features(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    dataset = ShapesDataset(resolution=16, size=24, xflip=True)
    G = tiny_generator()
    evaluate = GeneratorMetrics(dataset, ["fid", "pr"], num_gen=20, backbone="random_cnn", batch=8, seed=3)
    results = evaluate(G, torch.device("cpu"))

    backbone = create_backbone("random_cnn")
    reals = torch.stack([dataset[i][0] for i in range(24)])  # the mirrored copies are not real samples
    z = torch.stack([torch.randn(8, generator=torch.Generator().manual_seed(3 + i)) for i in range(20)])
    with torch.no_grad():
        fakes = G(z, None, noise_mode="const")
    real = extract_features(reals, backbone, progress=False)["pool"]
    fake = extract_features(fakes, backbone, progress=False)["pool"]
    assert results["fid"] == pytest.approx(F.fid(real, fake), rel=1e-5)
    expected = F.precision_recall(real, fake)
    assert results["precision"] == expected["precision"]
    assert results["recall"] == expected["recall"]
    assert set(results) == {"fid", "precision", "recall", "realism_median"}


def test_unknown_metric_fails_before_training():
    with pytest.raises(ValueError, match="unknown metric"):
        GeneratorMetrics(ShapesDataset(resolution=16, size=8), ["fid", "fdd"], num_gen=8)


def test_training_writes_the_metrics_into_metrics_jsonl(tmp_path, tiny_cfg, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    cfg = tiny_cfg(
        tmp_path / "run",
        "train.kimg=0.016",
        "eval.every_kimg=0.008",
        "eval.metrics=[fid,kid]",
        "eval.num_gen=16",
        "eval.backbone=random_cnn",
        "eval.batch=8",
    )
    train(cfg)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # The untrained G is measured first: the curve's starting point (no losses yet).
    assert [r["kimg"] for r in records] == [0.0, 0.008, 0.016]
    assert set(records[0]["results"]) == {"fid", "kid_mean", "kid_std"}
    for record in records:
        assert {"fid", "kid_mean", "kid_std"} <= set(record["results"])
        assert record["results"]["fid"] > 0
        assert record["eval_seconds"] >= 0


def test_metrics_at_ticks_leave_training_unchanged(tmp_path, tiny_cfg, monkeypatch) -> None:
    """A feature-cache miss iterates a DataLoader, which seeds itself from the global RNG: evaluation
    must not shift the training stream, so the weights equal those of a run without metrics."""
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    opts = ("train.kimg=0.016", "eval.every_kimg=0.008", "ckpt.every_kimg=100")
    metrics = ("eval.metrics=[fid]", "eval.backbone=random_cnn", "eval.num_gen=8", "eval.num_real=8")
    with_metrics = train(tiny_cfg(tmp_path / "with", *opts, *metrics))
    without = train(tiny_cfg(tmp_path / "without", *opts))
    for name, value in without.G.state_dict().items():
        assert torch.equal(with_metrics.G.state_dict()[name], value), name


def test_monitor_keeps_the_best_state_in_best_ckpt_and_records_it(tmp_path, tiny_cfg, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    cfg = tiny_cfg(
        tmp_path / "run",
        "train.kimg=0.032",
        "eval.every_kimg=0.004",
        "ckpt.every_kimg=100",
        "eval.metrics=[fid,pr]",
        "eval.backbone=random_cnn",
        "eval.num_gen=8",
        "eval.num_real=8",
        "eval.monitor=precision",
    )
    module = train(cfg)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["kimg"] == 0 and "best" not in records[0]  # the untrained G is no candidate
    records = records[1:]
    values = [r["results"]["precision"] for r in records]
    best_index = max(range(len(values)), key=lambda i: (values[i], -i))  # the first of equal maxima
    expected = {
        "metric": "precision",
        "mode": "max",
        "value": values[best_index],
        "kimg": records[best_index]["kimg"],
    }
    assert records[-1]["best"] == expected == module.best.summary()
    running = [max(values[: i + 1]) for i in range(len(values))]
    assert [r["best"]["value"] for r in records] == running
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert state["progress"]["cur_nimg"] == round(expected["kimg"] * 1000)
    assert state["best"]["value"] == expected["value"]


def test_a_failing_evaluation_is_one_error_line_unless_strict(
    tmp_path, tiny_cfg, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    calls = []

    def flaky(self, G, device):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return {"fid": 1.0}

    monkeypatch.setattr(GeneratorMetrics, "__call__", flaky)
    opts = ("train.kimg=0.016", "eval.every_kimg=0.008", "eval.metrics=[fid]", "eval.backbone=random_cnn")
    opts += ("eval.num_gen=8", "eval.num_real=8", "eval.monitor=fid")
    module = train(tiny_cfg(tmp_path / "lenient", *opts))
    records = [json.loads(line) for line in (tmp_path / "lenient" / "metrics.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.0, 0.008, 0.016]
    assert records[0]["eval_error"] == "RuntimeError: out of memory" and "fid" not in records[0]["results"]
    assert records[2]["results"]["fid"] == 1.0 and module.done
    assert records[2]["best"] == {"metric": "fid", "mode": "min", "value": 1.0, "kimg": 0.008}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "Evaluation at kimg 0.000 failed (RuntimeError: out of memory); training goes on "
        "(eval.strict=true stops instead)."
    ]
    calls.clear()
    with pytest.raises(RuntimeError, match="out of memory"):
        train(tiny_cfg(tmp_path / "strict", *opts, "eval.strict=true"))


def test_ppl_at_ticks_and_as_the_monitor(tmp_path, tiny_cfg, monkeypatch) -> None:
    import studio.metrics.path_length as path_length
    from studio.features.lpips import lpips_vgg

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(path_length, "lpips_vgg", lambda *weights: lpips_vgg(seed=0))  # offline weights
    cfg = tiny_cfg(
        tmp_path / "run",
        "train.kimg=0.016",
        "eval.every_kimg=0.008",
        "eval.metrics=[ppl]",
        "eval.monitor=ppl",
        "eval.options.perceptual_path_length.num_samples=4",
        "train.channels_last=false",  # the same memory layout as the reloaded G: the same float32 sums
    )
    module = train(cfg)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    G = load_generator(tmp_path / "run" / "checkpoints" / "last.ckpt", torch.device("cpu"))
    expected = F.perceptual_path_length(G, lpips_vgg(seed=0), num_samples=4)["ppl"]
    assert records[-1]["results"]["ppl"] == expected
    assert module.best.mode == "min" and module.best.value == min(r["results"]["ppl"] for r in records)


def test_missing_lpips_weights_fail_at_start(tmp_path, tiny_cfg, monkeypatch) -> None:
    import studio.features.weights as weights

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "_download", lambda url, target: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        train(tiny_cfg(tmp_path / "run", "eval.metrics=[ppl]"))
    assert not (tmp_path / "run").exists()


def test_curves_and_per_sample_views_reach_tensorboard_at_the_tick_step(
    tmp_path, tiny_cfg, monkeypatch
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    cfg = tiny_cfg(
        tmp_path / "run",
        "train.kimg=0.008",
        "eval.every_kimg=0.008",
        "eval.metrics=[pr,dc,rarity,prd]",
        "eval.backbone=random_cnn",
        "eval.num_gen=24",
        "eval.num_real=24",
        "eval.options.prd.num_clusters=4",
        "eval.options.prd.num_runs=2",
        "eval.psi_sweep=[1.0,0.5]",
        "logger=tensorboard",
    )
    train(cfg)
    (events,) = (tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    assert {"eval/prd_curve", "eval/psi_sweep", "eval/samples/rarest", "eval/samples/least_realistic"} <= set(
        tags["images"]
    )
    assert "eval/samples/most_typical" in tags["images"]
    assert {"eval/realism", "eval/rarity"} <= set(tags["histograms"])
    # Every view at the untrained G's evaluation (step 0), then at the tick (step 8).
    start, realism = accumulator.Histograms("eval/realism")
    assert (start.step, realism.step) == (0, 8) and realism.histogram_value.num <= 24  # finite of 24 fakes
    # The sweep's psi=1.0 point is the tick's own precision (same images, same real manifold).
    tick_precision = accumulator.Scalars("precision")
    sweep_precision = accumulator.Scalars("eval/psi_sweep/precision@psi=1.0")
    assert [e.step for e in sweep_precision] == [e.step for e in tick_precision] == [0, 8]
    assert [e.value for e in sweep_precision] == [e.value for e in tick_precision]
    assert len(accumulator.Scalars("eval/psi_sweep/coverage@psi=0.5")) == 2
