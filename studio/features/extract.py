"""One pass of a backbone over an image set, collecting every output the metrics need."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ops.environment import fp32_precision
from studio.features.backbone import Backbone
from studio.features.resize import quantize_to_uint8
from studio.runtime import available_cores

ImageSource = torch.Tensor | Dataset | Iterable[torch.Tensor]
# Device-side features go to the host every this many batches: one synchronisation per 64 batches,
# and GPU memory stays bounded for real sets of millions of images (16k images at batch 256).
FLUSH_BATCHES = 64


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`None`/"auto" -> CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def default_batch(device: torch.device, resolution: int | None = None) -> int:
    """Images per extraction and generation batch. CPU: 16 (the FID Inception ran 1.2x faster at 8-16
    images than at 64 on 2 cores: README, Benchmarks). GPU: 256,
    fewer for images above 256², generated or read (256·(256/R)², at least 8) so that a 1024²
    generator's activations and pinned batches fit as well as Inception's (about 3 GiB at 256). It
    depends only on the device type and R, so every rank of a distributed run picks the same."""
    if device.type != "cuda":
        return 16
    if resolution is None or resolution <= 256:
        return 256
    return max(8, 256 * 256**2 // resolution**2)


def _auto_or_int(name: str, value: int | str | None, minimum: int, auto: Callable[[], int]) -> int:
    """`value` as an int >= minimum, with "auto" / None meaning `auto()`; otherwise a ValueError."""
    if value is None or value == "auto":
        return auto()
    if isinstance(value, str) or int(value) < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {wanted} or 'auto', got {value!r}")
    return int(value)


def resolve_batch(batch: int | str | None, device: torch.device, resolution: int | None = None) -> int:
    """`batch` as an int, with "auto" / None meaning `default_batch(device, resolution)`."""
    return _auto_or_int("batch", batch, 1, lambda: default_batch(device, resolution))


def default_workers(device: torch.device) -> int:
    """DataLoader processes decoding images while the backbone embeds the previous batch: on a GPU every
    core but one, up to 8 (a 256² PNG decodes at a few hundred images/s per core); on CPU none: there
    decoding takes about 1 % of the time, and a worker process gained nothing measurable against the
    cores it shares with extraction (README, Benchmarks)."""
    if device.type == "cuda":
        return min(8, max(1, available_cores() - 1))
    return 0


def resolve_workers(workers: int | str | None, device: torch.device) -> int:
    """`workers` as an int, with "auto" / None meaning `default_workers(device)`."""
    return _auto_or_int("workers", workers, 0, lambda: default_workers(device))


def _as_uint8(batch: torch.Tensor) -> torch.Tensor:
    # Float batches are generator output in [-1, 1]: round to 8 bits like the stored real images.
    return batch if batch.dtype == torch.uint8 else quantize_to_uint8(batch)


def _images_only(batch) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _batches(
    source: ImageSource, batch_size: int, num_workers: int, limit: int | None, pin_memory: bool
) -> Iterator[torch.Tensor]:
    if isinstance(source, torch.Tensor):
        stop = source.shape[0] if limit is None else min(limit, source.shape[0])
        for start in range(0, stop, batch_size):
            yield source[start : min(start + batch_size, stop)]
        return
    if isinstance(source, Dataset):
        if limit is not None and limit < len(source):
            source = torch.utils.data.Subset(source, range(limit))
        source = DataLoader(
            source, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=pin_memory
        )
    seen = 0
    for batch in source:
        images = _images_only(batch)
        if limit is not None:
            images = images[: limit - seen]
        seen += images.shape[0]
        yield images
        if limit is not None and seen >= limit:
            return


def _count(source: ImageSource, limit: int | None) -> int | None:
    try:
        total = source.shape[0] if isinstance(source, torch.Tensor) else len(source)
    except TypeError:
        return limit
    return total if limit is None else min(total, limit)


@torch.inference_mode()
def extract_features(
    source: ImageSource,
    backbone: Backbone,
    batch_size: int | str | None = None,
    device: str | torch.device | None = None,
    num_workers: int | str | None = None,
    progress: bool = True,
    max_items: int | None = None,
    desc: str = "features",
) -> dict[str, torch.Tensor]:
    """Run `backbone` once over `source` and return {output name: float32 [N, dim]} on the CPU.

    source: uint8 [N, 3, H, W] or float [N, 3, H, W] in [-1, 1] (quantised to uint8 first), a Dataset
    whose items are images or (image, label), or an iterable of such batches. max_items: use only the
    first N images. batch_size, num_workers (Dataset sources): None or "auto" = `default_batch`,
    `default_workers` for the device. fp32 throughout (TF32 is not used for extraction), in order, so
    results are deterministic and independent of the batch size up to float rounding. Features stay on
    the device for FLUSH_BATCHES batches at a time: no per-batch synchronisation, so on a GPU the next
    batch is generated, decoded and copied while the previous one is embedded. A Dataset's `resolution`
    (when it has one) sizes the automatic batch. The progress bar shows img/s.
    """
    device = resolve_device(device)
    batch_size = resolve_batch(batch_size, device, getattr(source, "resolution", None))
    num_workers = resolve_workers(num_workers, device)
    backbone = backbone.to(device)
    on_device: dict[str, list[torch.Tensor]] = {name: [] for name in backbone.feature_dims}
    on_host: dict[str, list[torch.Tensor]] = {name: [] for name in backbone.feature_dims}
    bar = tqdm(total=_count(source, max_items), desc=desc, unit="img", disable=not progress)
    batches = _batches(source, batch_size, num_workers, max_items, pin_memory=device.type == "cuda")
    with fp32_precision(), bar:
        for count, batch in enumerate(batches, 1):
            features = backbone(_as_uint8(batch.to(device, non_blocking=True)))
            for name in on_device:
                on_device[name].append(features[name])
            if count % FLUSH_BATCHES == 0:
                _move_to_host(on_device, on_host)
            bar.update(batch.shape[0])
    _move_to_host(on_device, on_host)
    if not on_host or not next(iter(on_host.values())):
        raise ValueError(f"no images to extract {desc} from (empty image set)")
    return {name: torch.cat(chunks) for name, chunks in on_host.items()}


def _move_to_host(on_device: dict[str, list[torch.Tensor]], on_host: dict[str, list[torch.Tensor]]) -> None:
    """Append the pending device chunks of each output to its host list, as one CPU tensor."""
    for name, chunks in on_device.items():
        if chunks:
            on_host[name].append(torch.cat(chunks).cpu())
            chunks.clear()
