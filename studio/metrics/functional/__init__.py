"""Pure metric functions on feature arrays (torch tensors or numpy arrays, shape (N, D)).

Every function returns plain Python floats, dicts of floats or float64 numpy arrays; see
docs/metrics.md for the papers, defaults, conventions and the reference implementations each matches.
"""

from studio.metrics.functional.alpha_precision import (
    AUTHENTICITY_PROTOCOLS,
    alpha_precision_beta_recall_authenticity,
)
from studio.metrics.functional.equivariance import (
    EQUIVARIANCE_PROTOCOLS,
    equivariance,
    equivariance_errors,
    psnr_from_errors,
)
from studio.metrics.functional.fid import (
    FID_PROTOCOLS,
    feature_stats,
    fid,
    fid_from_stats,
    protocol_ddof,
    trace_sqrt_product,
)
from studio.metrics.functional.inception_score import IS_PROTOCOLS, inception_score
from studio.metrics.functional.kid import kid
from studio.metrics.functional.knn_metrics import (
    density_coverage,
    precision_recall,
    rarity_score,
    realism_score,
)
from studio.metrics.functional.manifold import KNN_METRICS, KNN_PROTOCOLS, RealManifold, knn_metrics
from studio.metrics.functional.nvlabs_pr import nvlabs_precision_recall
from studio.metrics.functional.ppl import path_length_distances, perceptual_path_length, ppl_from_distances
from studio.metrics.functional.prd import prd, prd_f_beta

__all__ = [
    "AUTHENTICITY_PROTOCOLS",
    "EQUIVARIANCE_PROTOCOLS",
    "FID_PROTOCOLS",
    "IS_PROTOCOLS",
    "KNN_METRICS",
    "KNN_PROTOCOLS",
    "RealManifold",
    "alpha_precision_beta_recall_authenticity",
    "density_coverage",
    "equivariance",
    "equivariance_errors",
    "feature_stats",
    "fid",
    "fid_from_stats",
    "inception_score",
    "kid",
    "knn_metrics",
    "nvlabs_precision_recall",
    "path_length_distances",
    "perceptual_path_length",
    "ppl_from_distances",
    "prd",
    "prd_f_beta",
    "precision_recall",
    "protocol_ddof",
    "psnr_from_errors",
    "rarity_score",
    "realism_score",
    "trace_sqrt_product",
]
