"""Does a synthetic image reveal a real patient? Nearest real training image per synthetic image.

Distances in pixel space (RMSE of display-space images in [0, 1]) and in the feature space of an
expert network (cosine distance of embeddings). A synthetic image closer than a threshold in
either space is flagged as a near copy. Methods initialised from real images start as exact
copies, so the check is what tells a user whether distillation moved far enough to share.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def nearest(queries: torch.Tensor, pool: torch.Tensor, metric: str, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance to, and index of, the nearest row of `pool` for every row of `queries` (flattened)."""
    q, p = queries.flatten(1).double(), pool.flatten(1).double()
    if metric == "cosine":
        q, p = F.normalize(q, dim=1), F.normalize(p, dim=1)
    best_d = torch.full((q.shape[0],), float("inf"), dtype=torch.float64)
    best_i = torch.zeros(q.shape[0], dtype=torch.long)
    for start in range(0, p.shape[0], chunk):
        block = p[start : start + chunk]
        if metric == "cosine":
            d = 1.0 - q @ block.T
        else:  # rmse
            d = torch.cdist(q, block).div(q.shape[1] ** 0.5)
        value, index = d.min(1)
        better = value < best_d
        best_d[better], best_i[better] = value[better], index[better] + start
    return best_d, best_i


def privacy_check(
    synthetic_pixels: torch.Tensor, real_pixels: torch.Tensor, synthetic_features: torch.Tensor,
    real_features: torch.Tensor, *, pixel_rmse_threshold: float, feature_cosine_threshold: float,
    reference_pixels: torch.Tensor | None = None,
) -> dict:
    """Per synthetic image: nearest real image in both spaces, the distances and the near-copy flag.

    `reference_pixels` (held-out real images) gives the typical real-to-real nearest distance, the
    scale against which a synthetic image's distance can be read.
    """
    pix_d, pix_i = nearest(synthetic_pixels, real_pixels, "rmse")
    feat_d, feat_i = nearest(synthetic_features, real_features, "cosine")
    flagged = (pix_d < pixel_rmse_threshold) | (feat_d < feature_cosine_threshold)
    report = {
        "thresholds": {"pixel_rmse": pixel_rmse_threshold, "feature_cosine": feature_cosine_threshold},
        "num_synthetic": int(synthetic_pixels.shape[0]),
        "num_flagged": int(flagged.sum()),
        "images": [
            {"index": k, "nearest_pixel_index": int(pix_i[k]), "pixel_rmse": float(pix_d[k]),
             "nearest_feature_index": int(feat_i[k]), "feature_cosine_distance": float(feat_d[k]),
             "near_copy": bool(flagged[k])}
            for k in range(synthetic_pixels.shape[0])
        ],
    }
    if reference_pixels is not None and len(reference_pixels):
        report["reference_real_to_real_pixel_rmse_median"] = real_to_real_rmse_median(reference_pixels, real_pixels)
    return report


def real_to_real_rmse_median(reference_pixels: torch.Tensor, real_pixels: torch.Tensor) -> float:
    """Median pixel RMSE from held-out real images to their nearest training image: the typical
    distance between two different real images, the scale a synthetic image's distance is read on."""
    return float(nearest(reference_pixels, real_pixels, "rmse")[0].median())
