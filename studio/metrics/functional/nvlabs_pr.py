"""Improved precision/recall as NVlabs' StyleGAN metric code computes it (`protocol="nvlabs"`).

Written from the behaviour of `metrics/precision_recall.py` in NVlabs/stylegan2-ada-pytorch and
NVlabs/stylegan3 (the pr50k3 / pr50k3_full metrics that StyleGAN2-ADA, StyleGAN3 and StyleGAN-XL
report): features cast to float16; Euclidean (not squared) distances by `torch.cdist` in float16, the
columns zero-padded and cut into equal batches of at most `col_batch` columns, the rows in batches of
`row_batch`; a sample's radius is the (k + 1)-th smallest distance of its row (the zero self-distance
included), taken in float32 and cast back to float16; a probe is inside a ball when `dist <= radius`,
compared in float16. float16 rounding moves samples near a boundary, which is why these values differ
slightly from the exact protocol's; on the same GPU the batching reproduces the reference's arithmetic.
"""

from __future__ import annotations

import torch


def _distances(rows: torch.Tensor, columns: torch.Tensor, col_batch: int) -> torch.Tensor:
    """float16 Euclidean distances (R, C) in NVlabs' column batching (one process)."""
    n_cols = columns.shape[0]
    n_batches = (n_cols - 1) // col_batch + 1
    padded = torch.nn.functional.pad(columns, (0, 0, 0, -n_cols % n_batches))
    # torch.cdist takes its matmul formula above 25 rows and columns, as on NVlabs' GPUs; PyTorch has
    # no float16 kernel for the direct formula on the CPU, so smaller sets use the matmul there too.
    mode = "use_mm_for_euclid_dist" if rows.device.type == "cpu" else "use_mm_for_euclid_dist_if_necessary"
    parts = [
        torch.cdist(rows.unsqueeze(0), part.unsqueeze(0), compute_mode=mode)[0]
        for part in padded.chunk(n_batches)
    ]
    return torch.cat(parts, dim=1)[:, :n_cols]


def _share_inside(
    manifold: torch.Tensor, probes: torch.Tensor, k: int, row_batch: int, col_batch: int
) -> float:
    radii = torch.cat(
        [
            _distances(batch, manifold, col_batch).float().kthvalue(k + 1, dim=1).values.half()
            for batch in manifold.split(row_batch)
        ]
    )
    inside = torch.cat(
        [(_distances(batch, manifold, col_batch) <= radii).any(dim=1) for batch in probes.split(row_batch)]
    )
    return float(inside.float().mean())


def nvlabs_precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, row_batch: int = 10000, col_batch: int = 10000
) -> dict[str, float]:
    """{"precision", "recall"} of fake (M, D) against real (N, D) features by NVlabs' protocol (module
    docstring); batch sizes are pr50k3_full's. Runs on the features' device."""
    real16, fake16 = real.half(), fake.half()
    return {
        "precision": _share_inside(real16, fake16, k, row_batch, col_batch),
        "recall": _share_inside(fake16, real16, k, row_batch, col_batch),
    }
