"""The metric suite under torch.distributed: two CPU processes (gloo) split the fake images and give the
numbers of one process."""

import json
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tiny_run import tiny_generator

import studio.metrics.path_length as path_length
from models.stylegan3 import Generator
from studio.callbacks import GeneratorMetrics
from studio.data import ShapesDataset
from studio.features.lpips import lpips_vgg
from studio.metrics.equivariance import Equivariance
from studio.runtime import gather_computed, gather_rows, shard

METRICS = ["fid", "kid", "pr", "dc", "rarity", "ppl"]
PPL = {"perceptual_path_length": {"num_samples": 10, "batch": 4}}  # 3 batches: shards of 4 and 6 paths
NUM_GEN = 21  # 6 batches of 4 (the last of 1): shards of 3 batches, 12 and 9 images


def seeded_lpips(*weights: str | None) -> torch.nn.Module:
    """LPIPS with seeded random weights: no weight files offline."""
    return lpips_vgg(seed=0)


def evaluate_once(views: bool = False) -> tuple[dict[str, float], GeneratorMetrics]:
    dataset = ShapesDataset(resolution=16, size=24)
    evaluate = GeneratorMetrics(
        dataset,
        METRICS,
        num_gen=NUM_GEN,
        backbone="random_cnn",
        batch=4,
        seed=3,
        options=PPL,
        views=views,
        psi_sweep=[0.5],
    )
    return evaluate(tiny_generator(), torch.device("cpu")), evaluate


def worker(index: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=index, world_size=world)
    path_length.lpips_vgg = seeded_lpips  # this spawned process only
    try:
        torch.set_num_threads(1)
        part = shard(NUM_GEN, unit=4)
        rows = gather_rows(
            torch.arange(part.start, part.stop, dtype=torch.float32)[:, None], torch.device("cpu")
        )
        results, evaluate = evaluate_once(views=True)
        record = {"rows": rows[:, 0].tolist(), "results": results, "shard": [part.start, part.stop]}
        if index == 0:
            record["psi_sweep"] = evaluate.views.psi_sweep
        Path(out, f"rank{index}.json").write_text(json.dumps(record))
    finally:
        dist.destroy_process_group()


def test_two_processes_split_the_images_and_equal_one_process(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))  # inherited by the spawned processes
    monkeypatch.setattr(path_length, "lpips_vgg", seeded_lpips)
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert rank0["rows"] == rank1["rows"] == list(range(NUM_GEN))  # shards concatenate in image order
    assert rank0["shard"] == [0, 12] and rank1["shard"] == [12, 21]
    assert rank1["results"] == {}  # only rank 0 reports
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: the same float reductions
    try:
        expected, evaluate = evaluate_once(views=True)
    finally:
        torch.set_num_threads(threads)
    assert rank0["results"] == expected and "ppl" in expected
    assert rank0["psi_sweep"] == evaluate.views.psi_sweep


def failing_worker(index: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=index, world_size=world)
    try:

        def compute() -> dict[str, torch.Tensor]:
            if index == 1:
                raise MemoryError("rank 1 ran out of memory")
            return {"pool": torch.zeros(2, 3)}

        try:
            gather_computed(compute, torch.device("cpu"))
            message = "no error"
        except Exception as err:
            message = f"{type(err).__name__}: {err}"
        Path(out, f"rank{index}.txt").write_text(message)
    finally:
        dist.destroy_process_group()


def test_a_failure_on_one_process_makes_every_process_raise_before_any_gather(tmp_path) -> None:
    mp.spawn(failing_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    assert (tmp_path / "rank0.txt").read_text() == (
        "RuntimeError: the evaluation failed on 1 other process(es); see their log"
    )
    assert (tmp_path / "rank1.txt").read_text() == "MemoryError: rank 1 ran out of memory"


EQ_OPTIONS = {"equivariance": {"num_samples": 5, "batch": 2, "protocol": "nvlabs"}}  # shards of 4 and 1


def small_stylegan3() -> torch.nn.Module:
    torch.manual_seed(0)
    synthesis = {"channel_base": 256, "channel_max": 8}
    kwargs = {"z_dim": 8, "w_dim": 8, "img_resolution": 32, "mapping_kwargs": {"num_layers": 1}}
    return Generator(**kwargs, synthesis_kwargs=synthesis).eval()


def equivariance_worker(index: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=index, world_size=world)
    try:
        torch.set_num_threads(1)
        evaluate = Equivariance(["eq_t", "eq_r"], EQ_OPTIONS)
        errors = evaluate.errors(small_stylegan3(), torch.device("cpu"))
        record = {"errors": {k: v.tolist() for k, v in errors.items()}, "values": evaluate.value(errors)}
        Path(out, f"rank{index}.json").write_text(json.dumps(record))
    finally:
        dist.destroy_process_group()


def test_equivariance_errors_gather_to_the_one_process_values(tmp_path) -> None:
    """Per-sample (squared-error sum, count) rows travel through the gather; the pooled nvlabs
    aggregation then gives the one-process value on every rank."""
    mp.spawn(equivariance_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        evaluate = Equivariance(["eq_t", "eq_r"], EQ_OPTIONS)
        errors = evaluate.errors(small_stylegan3(), torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    assert rank0 == rank1
    assert rank0["errors"] == {kind: value.tolist() for kind, value in errors.items()}
    assert len(rank0["errors"]["eq_r"]) == 5 and rank0["values"] == evaluate.value(errors)
