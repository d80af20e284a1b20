"""Feature extraction (batching, inputs) and the on-disk real-feature cache."""

import dataclasses
import logging

import pytest
import torch
from torch.utils.data import Dataset

from studio.features import (
    create_backbone,
    extract,
    extract_features,
    extract_features_cached,
    feature_cache_key,
    resolve_batch,
    resolve_workers,
)
from studio.features.cache import features_cache_dir


class TinyImages(Dataset):
    """(uint8 image, label) items with a settable fingerprint, counting how often images are read."""

    def __init__(self, n: int = 7, size: int = 24, fingerprint: str = "tiny-v1"):
        generator = torch.Generator().manual_seed(n * size)
        self.images = torch.randint(0, 256, (n, 3, size, size), generator=generator).to(torch.uint8)
        self._fingerprint = fingerprint
        self.reads = 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        self.reads += 1
        return self.images[i], -1

    def fingerprint(self) -> str:
        return self._fingerprint


@pytest.fixture
def backbone():
    return create_backbone("random_cnn", seed=0)


def test_batch_size_does_not_change_features(backbone):
    data = TinyImages()
    whole = extract_features(data, backbone, batch_size=7, progress=False)
    batched = extract_features(data, backbone, batch_size=3, progress=False)
    assert whole["pool"].shape == (7, 256) and whole["logits"].shape == (7, 100)
    for name in whole:
        torch.testing.assert_close(batched[name], whole[name], atol=1e-5, rtol=1e-5)
    single = backbone(data.images[4:5])["pool"]
    torch.testing.assert_close(whole["pool"][4:5], single, atol=1e-5, rtol=1e-5)


def test_sources_tensor_dataset_iterable_and_float_agree(backbone):
    data = TinyImages()
    from_dataset = extract_features(data, backbone, batch_size=4, progress=False)["pool"]
    from_tensor = extract_features(data.images, backbone, batch_size=4, progress=False)["pool"]
    from_iterable = extract_features(iter(data.images.split(4)), backbone, progress=False)["pool"]
    as_float = data.images.float() / 127.5 - 1  # generator-style [-1, 1]; must quantise back exactly
    from_float = extract_features(as_float, backbone, batch_size=4, progress=False)["pool"]
    assert torch.equal(from_dataset, from_tensor)
    assert torch.equal(from_tensor, from_iterable) and torch.equal(from_tensor, from_float)
    limited = extract_features(data, backbone, batch_size=4, progress=False, max_items=5)["pool"]
    assert limited.shape == (5, 256)
    torch.testing.assert_close(limited, from_tensor[:5], atol=1e-5, rtol=1e-5)


def test_extract_rejects_empty_sets_and_wrong_dtypes(backbone):
    with pytest.raises(ValueError, match="empty image set"):
        extract_features(torch.zeros(0, 3, 8, 8, dtype=torch.uint8), backbone, progress=False)
    with pytest.raises(ValueError, match=r"expects uint8 images \[N, 3, H, W\]"):
        backbone(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))


def test_cache_key_changes_with_every_field(backbone):
    base = feature_cache_key("data-a", backbone, 100)
    assert base == feature_cache_key("data-a", backbone, 100)
    keys = {base, feature_cache_key("data-b", backbone, 100), feature_cache_key("data-a", backbone, 99)}
    for field, value in [("name", "random_cnn_other"), ("weights_id", "random:seed=1")]:
        changed = create_backbone("random_cnn", seed=0)
        setattr(changed, field, value)
        keys.add(feature_cache_key("data-a", changed, 100))
    resized = create_backbone("random_cnn", seed=0)
    resized.protocol = dataclasses.replace(resized.protocol, resize="bilinear_antialias")
    keys.add(feature_cache_key("data-a", resized, 100))
    resized.protocol = dataclasses.replace(resized.protocol, resize="tf1_bilinear", resolution=32)
    keys.add(feature_cache_key("data-a", resized, 100))
    assert len(keys) == 7


def test_second_call_hits_the_cache(backbone, empty_cache, caplog):
    data = TinyImages()
    caplog.set_level(logging.INFO, logger="studio.features.cache")
    first = extract_features_cached(data, backbone, progress=False, batch_size=4)
    assert any(r.getMessage().startswith("feature cache miss: ") for r in caplog.records)
    key = feature_cache_key("tiny-v1", backbone, 7)
    assert (features_cache_dir() / f"{key}.npz").is_file()
    assert [p.name for p in features_cache_dir().iterdir()] == [f"{key}.npz"]  # no temp file left behind
    reads = data.reads
    caplog.clear()
    second = extract_features_cached(data, backbone, progress=False)
    assert data.reads == reads  # no image was read again
    assert [r.getMessage() for r in caplog.records] == [f"feature cache hit: {key} (random_cnn, 7 images)"]
    assert all(torch.equal(first[k], second[k]) for k in first)
    caplog.clear()
    fewer = extract_features_cached(data, backbone, progress=False, max_items=5)
    assert fewer["pool"].shape == (5, 256)
    assert caplog.records[0].getMessage().startswith("feature cache miss: ")


@pytest.mark.cuda
def test_cuda_extraction_matches_cpu_and_is_repeatable():
    backbone = create_backbone("random_inception", seed=0)
    images = TinyImages(n=4, size=64).images
    cpu = extract_features(images, backbone, batch_size=2, device="cpu", progress=False)
    gpu = extract_features(images, backbone, batch_size=2, device="cuda", progress=False)
    again = extract_features(images, backbone, batch_size=2, device="cuda", progress=False)
    assert all(torch.equal(gpu[k], again[k]) for k in gpu)
    for name in cpu:
        torch.testing.assert_close(gpu[name], cpu[name], atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize(
    ("device", "resolution", "expected"),
    [("cpu", None, 16), ("cpu", 1024, 16), ("cuda", None, 256), ("cuda", 256, 256), ("cuda", 512, 64)]
    + [("cuda", 1024, 16), ("cuda", 8192, 8)],
)
def test_auto_batch_is_chosen_for_the_device_and_generator_size(device, resolution, expected):
    assert resolve_batch("auto", torch.device(device), resolution) == expected
    assert resolve_batch(None, torch.device(device), resolution) == expected
    assert resolve_batch(48, torch.device(device), resolution) == 48


@pytest.mark.parametrize("bad", [0, -3, "big"])
def test_bad_batch_setting_is_refused(bad):
    with pytest.raises(ValueError, match=f"batch must be a positive integer or 'auto', got {bad!r}"):
        resolve_batch(bad, torch.device("cpu"))


@pytest.mark.parametrize("bad", [-1, "many"])
def test_bad_workers_setting_is_refused(bad):
    with pytest.raises(ValueError, match=f"workers must be an integer >= 0 or 'auto', got {bad!r}"):
        resolve_workers(bad, torch.device("cpu"))


def test_auto_workers(monkeypatch):
    monkeypatch.setattr(extract, "available_cores", lambda: 16)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert (extract.default_workers(cpu), extract.default_workers(cuda)) == (0, 8)
    monkeypatch.setattr(extract, "available_cores", lambda: 2)
    assert extract.default_workers(torch.device("cuda")) == 1


def test_decoding_workers_give_the_features_of_the_main_process(backbone):
    data = TinyImages(n=9)
    in_process = extract_features(data, backbone, batch_size=4, num_workers=0, progress=False)
    decoded_by_workers = extract_features(data, backbone, batch_size=4, num_workers=2, progress=False)
    assert all(torch.equal(in_process[k], decoded_by_workers[k]) for k in in_process)


def test_features_moved_to_the_host_in_between_are_the_same(backbone, monkeypatch):
    data = TinyImages(n=9)
    whole = extract_features(data, backbone, batch_size=2, num_workers=0, progress=False)
    monkeypatch.setattr(extract, "FLUSH_BATCHES", 2)  # 5 batches: moved after the 2nd, 4th and last
    flushed = extract_features(data, backbone, batch_size=2, num_workers=0, progress=False)
    assert all(torch.equal(whole[k], flushed[k]) for k in whole) and whole["pool"].shape[0] == 9
