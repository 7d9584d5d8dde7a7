"""Thin Kedro nodes over `ddforge.io.readers` and `ddforge.core.transforms`."""
from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F

from ddforge.core.seeding import make_generator
from ddforge.core.transforms import apply_transform, fit_transform
from ddforge.io.readers import RawDataset, read_dataset
from ddforge.pipelines.provenance import stable_hash

log = logging.getLogger(__name__)


def load_raw_dataset(source: dict[str, Any]) -> dict:
    raw = read_dataset(source)
    log.info(
        "read %s: %d train / %d test images of shape %s, %d classes, fingerprint %s…",
        raw.source, len(raw.train_labels), len(raw.test_labels), tuple(raw.train_images.shape[1:]),
        len(raw.class_names), raw.fingerprint[:12],
    )
    return raw.as_dict()


def _resize(images: torch.Tensor, size: list[int] | int | None, channels: int | None) -> torch.Tensor:
    """Resize once here (antialiased) and adapt channels, so every later stage sees one geometry."""
    if channels is not None and images.shape[1] != channels:
        if channels == 3 and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        elif channels == 1:
            images = images.float().mean(1, keepdim=True).round().to(torch.uint8)
    if size is None:
        return images.contiguous()
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[2:]) == hw:
        return images.contiguous()
    out = F.interpolate(images.float(), size=hw, mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def _stratified_holdout(labels: torch.Tensor, fraction: float, cap: int | None, g: torch.Generator):
    keep, held = [], []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        n_held = int(round(idx.numel() * fraction))
        if cap is not None:
            n_held = min(n_held, cap)
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return torch.cat(keep).sort().values, torch.cat(held).sort().values


def _cap_per_class(labels: torch.Tensor, cap: int | None, g: torch.Generator) -> torch.Tensor:
    if cap is None:
        return torch.arange(labels.numel())
    return torch.cat([
        (labels == c).nonzero().flatten()[torch.randperm(int((labels == c).sum()), generator=g)[:cap]]
        for c in labels.unique().tolist()
    ]).sort().values


def preprocess(raw_dataset: dict, params: dict[str, Any], seed: int) -> tuple[dict, dict, dict, dict]:
    """Validation split held out of train, optional per-class cap, transform fitted on train only."""
    raw = RawDataset.from_dict(raw_dataset)
    g = make_generator(seed, "preprocess")
    train_x = _resize(raw.train_images, params.get("image_size"), params.get("channels"))
    test_x = _resize(raw.test_images, params.get("image_size"), params.get("channels"))
    keep, held = _stratified_holdout(raw.train_labels, params["val_fraction"], params.get("max_val_per_class"), g)
    capped = keep[_cap_per_class(raw.train_labels[keep], params.get("max_train_per_class"), g)]
    fingerprint = stable_hash(raw.fingerprint, params, seed)
    transform = fit_transform(train_x[capped], zca=params["zca"], zca_eps=params.get("zca_eps", 0.1))
    transform["data_fingerprint"] = fingerprint

    def split(name: str, x: torch.Tensor, y: torch.Tensor) -> dict:
        return {
            "split": name, "images": apply_transform(x, transform), "labels": y.clone(),
            "class_names": list(raw.class_names), "data_fingerprint": fingerprint,
            "raw_fingerprint": raw.fingerprint,
        }

    out = (
        split("train", train_x[capped], raw.train_labels[capped]),
        split("val", train_x[held], raw.train_labels[held]),
        split("test", test_x, raw.test_labels),
    )
    log.info("splits: train %d, val %d, test %d; transform %s", *(len(s["labels"]) for s in out), transform["kind"])
    return (*out, transform)
