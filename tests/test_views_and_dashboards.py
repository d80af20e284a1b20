"""studio.dashboards: the figures hold exactly their data, the sample pickers are exact, and TensorBoard,
W&B (offline, read back from the run file) and PNG files receive every view."""

import io
import json
import math
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from studio.callbacks.dashboards import log_views
from studio.views import (
    EvalViews,
    extreme_indices,
    figure_to_array,
    histogram_figure,
    image_grid,
    prd_figure,
    psi_sweep_figure,
    save_figure,
    save_views,
    typical_indices,
)

PSI_SWEEP = {
    "psi": [1.0, 0.7, 0.5],
    "precision": [0.6, 0.75, 0.9],
    "recall": [0.55, 0.4, 0.2],
    "coverage": [0.8, 0.7, 0.5],
}
REALISM = np.array([0.5, 1.5, np.inf, 1.0, 2.0, 0.8])  # one +inf
RARITY = np.array([np.nan, 3.0, 5.0, np.nan, 4.0, 6.0])  # two outside every real ball


def sample_images(k: int, value: int, size: int = 8) -> torch.Tensor:
    """uint8 [k, 3, size, size]; image i, channel c is filled with value + 10 * i + c."""
    fill = value + 10 * torch.arange(k)[:, None] + torch.arange(3)[None, :]
    return fill[:, :, None, None].expand(k, 3, size, size).to(torch.uint8).contiguous()


@pytest.fixture
def views() -> EvalViews:
    recall = np.linspace(0.0, 1.0, 11)
    precision = 1.0 - recall**2
    return EvalViews(
        prd=(precision, recall),
        psi_sweep=PSI_SWEEP,
        realism=REALISM,
        rarity=RARITY,
        samples={"rarest": sample_images(3, 10), "most_typical": sample_images(2, 100)},
    )


# ---------------------------------------------------------------------------------------------- figures


def test_prd_figure_plots_recall_against_precision_on_the_unit_square() -> None:
    recall = np.array([0.0, 0.3, 0.6, 1.0])
    precision = np.array([1.0, 0.8, 0.5, 0.0])
    fig = prd_figure(precision, recall, title="PRD at 10 kimg")
    (ax,) = fig.axes
    assert len(ax.lines) == 1
    np.testing.assert_array_equal(ax.lines[0].get_xydata(), np.column_stack([recall, precision]))
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_ylim() == (0.0, 1.0)
    assert ax.get_aspect() == 1.0
    assert ax.get_xlabel() == "recall" and ax.get_ylabel() == "precision"
    assert ax.get_title() == "PRD at 10 kimg"
    assert ax.xaxis.get_gridlines()[0].get_visible() and ax.yaxis.get_gridlines()[0].get_visible()
    with pytest.raises(ValueError, match="differ"):
        prd_figure(precision, recall[:3])


def test_psi_sweep_figure_draws_one_marked_line_per_metric() -> None:
    fig = psi_sweep_figure(PSI_SWEEP)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["precision", "recall", "coverage"]
    for line, name in zip(ax.lines, ["precision", "recall", "coverage"], strict=True):
        np.testing.assert_array_equal(line.get_xydata(), np.column_stack([PSI_SWEEP["psi"], PSI_SWEEP[name]]))
        assert line.get_marker() not in (None, "None", "")
    assert ax.get_xlabel() == "truncation ψ"
    with pytest.raises(ValueError, match="recall has 2 values for 3"):
        psi_sweep_figure({"psi": [1.0, 0.7, 0.5], "recall": [0.1, 0.2]})


def test_histogram_figure_holds_the_finite_values_and_counts_the_rest() -> None:
    values = np.array([1.0, 2.0, 2.5, np.inf, 3.0, np.nan, -np.inf, 4.0, np.nan, np.nan])
    fig = histogram_figure(values, "rarity", bins=6)
    (ax,) = fig.axes
    heights = [patch.get_height() for patch in ax.patches]
    assert len(heights) == 6 and sum(heights) == 5  # the 5 finite values
    assert ax.patches[0].get_x() == 1.0  # bins span the finite values alone
    assert ax.patches[-1].get_x() + ax.patches[-1].get_width() == pytest.approx(4.0)
    assert [t.get_text() for t in ax.texts] == ["5 shown, 5 non-finite left out (2 inf, 3 NaN)"]
    assert ax.get_title() == "rarity"


def test_figure_to_array_and_save_figure(tmp_path) -> None:
    fig = prd_figure(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert fig.canvas.manager is None  # not a pyplot figure: no global registry holds it
    rgb = figure_to_array(fig)
    assert rgb.dtype == np.uint8 and rgb.shape == (500, 500, 3)  # 5 x 5 inches at 100 dpi
    assert rgb.min() < 100 and rgb.max() == 255  # drawn on white
    save_figure(fig, tmp_path / "prd.png")
    with Image.open(tmp_path / "prd.png") as image:
        assert image.format == "PNG" and image.size == (500, 500)


# -------------------------------------------------------------------------------------- sample pickers


def test_extreme_indices_skip_nonfinite_values_and_break_ties_by_index() -> None:
    values = np.array([3.0, np.inf, 1.0, 3.0, np.nan, -np.inf, 5.0, 1.0])
    np.testing.assert_array_equal(extreme_indices(values, 3, largest=True), [6, 0, 3])
    np.testing.assert_array_equal(extreme_indices(values, 3, largest=False), [2, 7, 0])
    # Fewer finite values than asked for: all of them, extreme first.
    np.testing.assert_array_equal(extreme_indices(values, 10, largest=True), [6, 0, 3, 2, 7])
    np.testing.assert_array_equal(extreme_indices(values, 10, largest=False), [2, 7, 0, 3, 6])
    assert extreme_indices(values, 0, largest=True).shape == (0,)
    assert extreme_indices(np.array([np.nan, np.inf]), 2, largest=False).shape == (0,)
    assert extreme_indices(values, 2, largest=True).dtype == np.int64
    with pytest.raises(ValueError):
        extreme_indices(values, -1, largest=True)


def test_typical_indices_are_closest_to_the_median_of_the_finite_realism() -> None:
    realism = np.array([1.0, 2.0, np.inf, 3.0, np.nan, 4.0, 5.0])  # finite median 3
    np.testing.assert_array_equal(typical_indices(realism, 3), [3, 1, 5])  # 1 and 5 tie: lower first
    np.testing.assert_array_equal(typical_indices(realism, 9), [3, 1, 5, 0, 6])
    # Even count: median 3.0 of [1, 2, 4, 10]; 2 and 4 tie.
    np.testing.assert_array_equal(typical_indices(np.array([10.0, 4.0, np.inf, 2.0, 1.0]), 4), [1, 3, 4, 0])
    assert typical_indices(np.array([np.inf, np.nan]), 3).shape == (0,)


def test_image_grid_layout() -> None:
    images = sample_images(5, 10, size=4)[:, :, :, :3]  # H = 4, W = 3
    grid = image_grid(images, columns=3)
    assert grid.dtype == np.uint8 and grid.shape == (2 * 4, 3 * 3, 3)
    for i in range(6):
        row, col = divmod(i, 3)
        block = grid[row * 4 : (row + 1) * 4, col * 3 : (col + 1) * 3]
        expected = [0, 0, 0] if i == 5 else [10 + 10 * i, 11 + 10 * i, 12 + 10 * i]
        assert (block == np.array(expected, dtype=np.uint8)).all(), i
    # One channel is repeated to RGB.
    gray = image_grid(torch.full([1, 1, 2, 2], 7, dtype=torch.uint8), columns=2)
    assert gray.shape == (2, 4, 3) and (gray[:, :2] == 7).all() and (gray[:, 2:] == 0).all()
    with pytest.raises(TypeError):
        image_grid(images.float(), columns=3)


# ---------------------------------------------------------------------------------------------- loggers


def test_tensorboard_receives_every_view_at_the_step(tmp_path, views) -> None:
    logger = TensorBoardLogger(save_dir=tmp_path, name="tb", version="")
    log_views([logger], views, step=8)
    logger.experiment.flush()

    (events,) = (tmp_path / "tb").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    assert set(tags["images"]) == {
        "eval/prd_curve",
        "eval/psi_sweep",
        "eval/samples/rarest",
        "eval/samples/most_typical",
    }
    for tag in tags["images"]:
        assert [e.step for e in accumulator.Images(tag)] == [8]
    (prd,) = accumulator.Images("eval/prd_curve")
    assert (prd.width, prd.height) == (500, 500)
    (rarest,) = accumulator.Images("eval/samples/rarest")
    assert (rarest.width, rarest.height) == (3 * 8, 8)  # 3 images in one row
    # The grid's pixels survive (PNG is lossless).
    grid = np.asarray(Image.open(io.BytesIO(rarest.encoded_image_string)).convert("RGB"))
    np.testing.assert_array_equal(grid, image_grid(views.samples["rarest"], 3))

    assert set(tags["histograms"]) == {"eval/realism", "eval/rarity"}
    for tag, finite in (("eval/realism", REALISM[np.isfinite(REALISM)]), ("eval/rarity", [3, 5, 4, 6])):
        (event,) = accumulator.Histograms(tag)
        assert event.step == 8
        assert event.histogram_value.num == len(finite)
        assert (event.histogram_value.min, event.histogram_value.max) == (min(finite), max(finite))

    expected = {
        f"eval/psi_sweep/{name}@psi={psi}": PSI_SWEEP[name][i]
        for name in ("precision", "recall", "coverage")
        for i, psi in enumerate(["1.0", "0.7", "0.5"])
    }
    assert set(tags["scalars"]) == set(expected)
    for tag, value in expected.items():
        (event,) = accumulator.Scalars(tag)
        assert event.step == 8 and event.value == pytest.approx(value)


def test_loggers_without_figures_are_skipped(tmp_path, views) -> None:
    log_views([CSVLogger(save_dir=tmp_path / "csv")], views, step=8)
    assert not (tmp_path / "csv").exists()


def read_wandb_history(path: Path) -> list[dict]:
    """The history records of a W&B transaction log (run-<id>.wandb): LevelDB-log framing after a 7-byte
    ":W&B" header (32 KiB blocks; 7-byte record headers crc32, length, type FULL=1 FIRST=2 MIDDLE=3
    LAST=4), each record a wandb_internal_pb2.Record. Nested items become dicts under their top key."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, chunks, history = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:  # zero padding to the end of a block
            pos += block - pos % block
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc
        pos += 7 + length
        chunks += chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            chunks = b""
            if record.WhichOneof("record_type") == "history":
                row: dict = {}
                for item in record.history.item:
                    keys = [item.key] if item.key else list(item.nested_key)
                    value = json.loads(item.value_json)
                    if len(keys) == 1:
                        row[keys[0]] = value
                    else:
                        row.setdefault(keys[0], {})["/".join(keys[1:])] = value
                history.append(row)
    return history


def test_wandb_offline_run_holds_every_view_on_the_scalars_step_axis(tmp_path, views, wandb_offline) -> None:
    wandb = wandb_offline
    try:
        logger = WandbLogger(save_dir=tmp_path, offline=True, project="studio")
        logger.log_metrics({"eval/fid": 12.5}, step=8)  # the scalars of the same evaluation
        log_views([logger], views, step=8)
    finally:
        wandb.finish()

    (run_file,) = tmp_path.glob("**/offline-run-*/run-*.wandb")
    # wandb.finish() can return before wandb-core has written the records (seen: a 7-byte file, the
    # header only, in 1 of 9 runs on 2 busy cores); wait for them rather than read a half-written log.
    deadline = time.monotonic() + 30
    while len(history := read_wandb_history(run_file)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    scalars, row = history
    assert scalars["eval/fid"] == 12.5 and scalars["trainer/global_step"] == 8
    assert row["trainer/global_step"] == 8  # the same x axis as the scalars
    assert row["_step"] == scalars["_step"] + 1  # W&B's own step counts log calls

    assert row["eval/prd_curve_table"]["_type"] == "table-file"
    assert (row["eval/prd_curve_table"]["nrows"], row["eval/prd_curve_table"]["ncols"]) == (11, 2)
    assert row["eval/psi_sweep_table"]["_type"] == "table-file"  # line_series data: 3 metrics x 3 ψ
    assert (row["eval/psi_sweep_table"]["nrows"], row["eval/psi_sweep_table"]["ncols"]) == (9, 3)
    assert (row["eval/psi_sweep_values"]["nrows"], row["eval/psi_sweep_values"]["ncols"]) == (3, 4)
    assert row["eval/psi_sweep/recall@psi=0.7"] == 0.4
    assert len([k for k in row if k.startswith("eval/psi_sweep/")]) == 9
    for name, count in (("eval/realism", 5), ("eval/rarity", 4)):
        assert row[name]["_type"] == "histogram" and sum(row[name]["values"]) == count
    for name, width in (("rarest", 3 * 8), ("most_typical", 2 * 8)):
        image = row[f"eval/samples/{name}"]
        assert image["_type"] == "image-file" and (image["width"], image["height"]) == (width, 8)

    # The table behind the PRD chart holds the curve.
    table_file = run_file.parent / "files" / row["eval/prd_curve_table"]["path"]
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["recall", "precision"]
    np.testing.assert_allclose(np.array(table["data"]), np.column_stack(views.prd[::-1]))
    values_file = run_file.parent / "files" / row["eval/psi_sweep_values"]["path"]
    values = json.loads(values_file.read_text())
    assert values["columns"] == ["psi", "precision", "recall", "coverage"]
    assert values["data"][1] == [0.7, 0.75, 0.4, 0.7]


# ------------------------------------------------------------------------------------------------ files


def test_save_views_writes_one_png_per_view(tmp_path, views) -> None:
    written = save_views(views, tmp_path / "plots")
    names = [
        "prd_curve.png",
        "psi_sweep.png",
        "realism_hist.png",
        "rarity_hist.png",
        "samples_rarest.png",
        "samples_most_typical.png",
    ]
    assert written == [tmp_path / "plots" / name for name in names]
    for path in written:
        assert path.stat().st_size > 0
        with Image.open(path) as image:
            assert image.format == "PNG"
            image.verify()
    with Image.open(tmp_path / "plots" / "samples_most_typical.png") as image:
        assert image.size == (2 * 8, 8)

    prefixed = save_views(EvalViews(rarity=np.array([math.nan])), tmp_path / "plots", prefix="kimg10")
    assert prefixed == [tmp_path / "plots" / "kimg10_rarity_hist.png"]  # all NaN: the note says so
    assert save_views(EvalViews(), tmp_path / "empty") == []
