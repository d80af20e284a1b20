"""Fréchet Inception Distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule").

FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), with float64 statistics. The covariance
follows `protocol`: "torch-fidelity" (default) divides by N - 1 as torch-fidelity, pytorch-fid,
clean-fid and torchmetrics do (np.cov); "nvlabs" divides by N as NVlabs' StyleGAN metric code does
(FeatureStats.get_mean_cov).
"""

from __future__ import annotations

import numpy as np
import torch

from studio.metrics.functional._inputs import FeatureArray, as_feature_pair, as_features

FID_PROTOCOLS = {"torch-fidelity": 1, "nvlabs": 0}  # protocol -> covariance divisor N - ddof


def protocol_ddof(protocol: str) -> int:
    """The covariance ddof of an FID protocol (see FID_PROTOCOLS)."""
    if protocol not in FID_PROTOCOLS:
        raise ValueError(f"unknown FID protocol {protocol!r}; choose from {list(FID_PROTOCOLS)}")
    return FID_PROTOCOLS[protocol]


def feature_stats(features: FeatureArray, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of features (N, D), both float64 numpy arrays.

    The covariance divides by N - ddof (1: unbiased, the FID convention; 0: maximum likelihood).
    Computed in float64 on the features' device (a GPU makes the 2048-d covariance instant).
    """
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (divide by N) or 1 (divide by N - 1), got {ddof!r}")
    x = as_features(features, "features")
    if x.shape[0] < 2:
        raise ValueError(f"features has {x.shape[0]} sample; a covariance needs at least 2")
    x = x.double()
    mu = x.mean(dim=0)
    centered = x - mu
    sigma = centered.T @ centered / (x.shape[0] - ddof)
    return mu.cpu().numpy(), sigma.cpu().numpy()


def _as_float64(x: torch.Tensor | np.ndarray, name: str, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(x).detach().to(device=device, dtype=torch.float64)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or Inf values; recompute the feature statistics")
    return t


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> float:
    """tr((S1 S2)^(1/2)) for symmetric PSD S1, S2 (D, D), float64, without complex arithmetic.

    With a factor S1 = B B^T, S1 S2 = B (B^T S2) has the same non-zero eigenvalues as the symmetric
    PSD matrix B^T S2 B, so one eigvalsh gives the trace. B is the Cholesky factor of S1 (or of S2,
    the roles being symmetric) when one is positive definite, else V diag(sqrt(l)) from eigh(S1)
    (singular covariances: fewer samples than dimensions, dead features). Eigenvalues are clamped
    at 0 to drop round-off negatives.
    """
    factor, second = None, sigma2
    for first, other in ((sigma1, sigma2), (sigma2, sigma1)):
        cholesky, info = torch.linalg.cholesky_ex(first)
        if int(info) == 0:
            factor, second = cholesky, other
            break
    if factor is None:
        eigvals, eigvecs = torch.linalg.eigh(sigma1)
        factor = eigvecs * eigvals.clamp(min=0).sqrt()
    inner = factor.T @ second @ factor
    inner = (inner + inner.T) / 2
    return float(torch.linalg.eigvalsh(inner).clamp(min=0).sqrt().sum())


def fid_from_stats(
    mu1: torch.Tensor | np.ndarray,
    sigma1: torch.Tensor | np.ndarray,
    mu2: torch.Tensor | np.ndarray,
    sigma2: torch.Tensor | np.ndarray,
) -> float:
    """FID between two Gaussians given means (D,) and covariances (D, D); computed in float64.

    Runs on sigma1's device when it is a torch tensor (a GPU makes the 2048-d case fast), else on CPU.
    """
    device = sigma1.device if isinstance(sigma1, torch.Tensor) else torch.device("cpu")
    m1, s1 = _as_float64(mu1, "mu1", device), _as_float64(sigma1, "sigma1", device)
    m2, s2 = _as_float64(mu2, "mu2", device), _as_float64(sigma2, "sigma2", device)
    d = m1.shape[0]
    if m1.shape != (d,) or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            "statistics have inconsistent shapes: mu1 "
            f"{tuple(m1.shape)}, sigma1 {tuple(s1.shape)}, mu2 {tuple(m2.shape)}, sigma2 {tuple(s2.shape)}; "
            "expected mu (D,) and sigma (D, D) from the same backbone"
        )
    diff = m1 - m2
    trace_term = float(torch.trace(s1) + torch.trace(s2))
    return float(diff @ diff) + trace_term - 2.0 * trace_sqrt_product(s1, s2)


def fid(real: FeatureArray, fake: FeatureArray, protocol: str = "torch-fidelity") -> float:
    """FID between real (N, D) and fake (M, D) features; a plain float (lower is better).

    protocol: "torch-fidelity" (covariance / (N - 1)) or "nvlabs" (/ N); see the module docstring."""
    ddof = protocol_ddof(protocol)
    real_t, fake_t = as_feature_pair(real, fake)
    return fid_from_stats(*feature_stats(real_t, ddof), *feature_stats(fake_t, ddof))
