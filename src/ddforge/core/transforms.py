"""Pixel transforms fitted on the training split only and stored as an artefact.

Distilled images live in the transformed space; keeping the transform next to them means
evaluation, visualisation and export can never apply a different one.
"""
from __future__ import annotations

import torch


def fit_transform(train_uint8: torch.Tensor, zca: bool, zca_eps: float = 0.1) -> dict:
    """Mean/std normalisation, or ZCA whitening of [0,1] pixels (MTT/DATM convention, eps=0.1)."""
    x = train_uint8.to(torch.float64) / 255.0
    if not zca:
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-8)
        return {"kind": "normalize", "mean": mean.float(), "std": std.float()}
    flat = x.reshape(x.shape[0], -1)
    mean = flat.mean(0)
    centred = flat - mean
    cov = centred.T @ centred / (flat.shape[0] - 1)
    eigval, eigvec = torch.linalg.eigh(cov)
    scale = (eigval.clamp_min(0) + zca_eps).rsqrt()
    whiten = eigvec @ torch.diag(scale) @ eigvec.T
    unwhiten = eigvec @ torch.diag(1.0 / scale) @ eigvec.T
    return {
        "kind": "zca",
        "mean": mean.float(),
        "matrix": whiten.float(),
        "inverse": unwhiten.float(),
        "eps": float(zca_eps),
    }


def apply_transform(images_uint8: torch.Tensor, transform: dict, chunk: int = 4096) -> torch.Tensor:
    return transform_pixels(images_uint8.float() / 255.0, transform, chunk)


def transform_pixels(x: torch.Tensor, transform: dict, chunk: int = 4096) -> torch.Tensor:
    """[0,1] pixels into the transform's space (the inverse of `invert_transform`)."""
    if transform["kind"] == "normalize":
        return (x - _channel(transform["mean"])) / _channel(transform["std"])
    shape = x.shape
    out = torch.empty_like(x).reshape(shape[0], -1)
    for i in range(0, shape[0], chunk):
        out[i : i + chunk] = (x[i : i + chunk].reshape(-1, out.shape[1]) - transform["mean"]) @ transform["matrix"].T
    return out.reshape(shape)


def same_transform(a: dict, b: dict) -> bool:
    """Equal kind and parameters (the fingerprint of the data they were fitted on aside)."""
    def equal(x: object, y: object) -> bool:
        return torch.equal(x, y) if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) else x == y

    return all(equal(a.get(k), b.get(k)) for k in (a.keys() | b.keys()) - {"data_fingerprint"})


def retransform(images: torch.Tensor, source: dict, target: dict) -> torch.Tensor:
    """Images prepared by `source` as `target` prepares them (a method with its own preparation seen by a
    network trained on the shared one); unchanged when the two are the same transform."""
    if same_transform(source, target):
        return images
    return transform_pixels(invert_transform(images, source), target)


def invert_transform(images: torch.Tensor, transform: dict) -> torch.Tensor:
    """Back to [0,1] display space (for image grids and the shareable PNG export)."""
    x = images.detach().float().cpu()
    if transform["kind"] == "normalize":
        return x * _channel(transform["std"]) + _channel(transform["mean"])
    flat = x.reshape(x.shape[0], -1) @ transform["inverse"].T + transform["mean"]
    return flat.reshape(x.shape)


def _channel(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(1, -1, 1, 1)
