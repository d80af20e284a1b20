"""One pass of a backbone over an image set, collecting every output the metrics need."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ops.environment import fp32_precision
from studio.features.backbone import Backbone
from studio.features.resize import quantize_to_uint8

ImageSource = torch.Tensor | Dataset | Iterable[torch.Tensor]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`None`/"auto" -> CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _as_uint8(batch: torch.Tensor) -> torch.Tensor:
    # Float batches are generator output in [-1, 1]: round to 8 bits like the stored real images.
    return batch if batch.dtype == torch.uint8 else quantize_to_uint8(batch)


def _images_only(batch) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _batches(
    source: ImageSource, batch_size: int, num_workers: int, limit: int | None
) -> Iterator[torch.Tensor]:
    if isinstance(source, torch.Tensor):
        stop = source.shape[0] if limit is None else min(limit, source.shape[0])
        for start in range(0, stop, batch_size):
            yield source[start : min(start + batch_size, stop)]
        return
    if isinstance(source, Dataset):
        if limit is not None and limit < len(source):
            source = torch.utils.data.Subset(source, range(limit))
        source = DataLoader(source, batch_size=batch_size, shuffle=False, num_workers=num_workers)
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
    batch_size: int = 64,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    progress: bool = True,
    max_items: int | None = None,
    desc: str = "features",
) -> dict[str, torch.Tensor]:
    """Run `backbone` once over `source` and return {output name: float32 [N, dim]} on the CPU.

    source: uint8 [N, 3, H, W] or float [N, 3, H, W] in [-1, 1] (quantised to uint8 first), a Dataset
    whose items are images or (image, label), or an iterable of such batches. max_items: use only the
    first N images. fp32 throughout (TF32 is not used for extraction), in order, so results are
    deterministic and independent of the batch size up to float rounding.
    """
    device = resolve_device(device)
    backbone = backbone.to(device)
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name in backbone.feature_dims}
    bar = tqdm(total=_count(source, max_items), desc=desc, unit="img", disable=not progress)
    with fp32_precision(), bar:
        for batch in _batches(source, batch_size, num_workers, max_items):
            features = backbone(_as_uint8(batch.to(device)))
            for name in outputs:
                outputs[name].append(features[name].cpu())
            bar.update(batch.shape[0])
    if not outputs or not next(iter(outputs.values())):
        raise ValueError(f"no images to extract {desc} from (empty image set)")
    return {name: torch.cat(chunks) for name, chunks in outputs.items()}
