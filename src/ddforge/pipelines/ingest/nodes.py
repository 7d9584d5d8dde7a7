"""Thin Kedro nodes over `ddforge.io.readers` and `ddforge.core.transforms`."""
from __future__ import annotations

import hashlib
import inspect
import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ddforge.core.seeding import make_generator
from ddforge.core.transforms import apply_transform, fit_transform
from ddforge.core.splits import holdout
from ddforge.errors import ConfigError
from ddforge.io.readers import READERS, RawDataset, read_dataset
from ddforge.pipelines.provenance import stable_hash

log = logging.getLogger(__name__)

# What `<method>.preprocess` may set: the pixel transform only. The splits (sizes, caps, the held-out
# images) stay the shared ones, so every set is still scored on the same test images.
PREPARATION_KEYS = frozenset({"zca", "zca_eps"})


def load_raw_dataset(source: dict[str, Any], preprocess: dict[str, Any]) -> dict:
    """Readers that decode image files resize once, here, to `preprocess.image_size` (folders of
    X-rays come in many sizes); array formats are resized in `preprocess`."""
    fmt = source.get("format")
    # one sub-dict per format, so an environment can switch format without inheriting the base's keys
    spec = {"format": fmt, **(source.get(fmt) or {})}
    reader_args = inspect.signature(READERS.get(fmt, lambda: None)).parameters
    for key in ("image_size", "channels"):
        if key in reader_args and key not in spec and preprocess.get(key) is not None:
            spec[key] = preprocess[key]
    raw = read_dataset(spec)
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


def _cap_per_class(labels: torch.Tensor, cap: int | None, g: torch.Generator) -> torch.Tensor:
    if cap is None:
        return torch.arange(labels.numel())
    return torch.cat([
        (labels == c).nonzero().flatten()[torch.randperm(int((labels == c).sum()), generator=g)[:cap]]
        for c in labels.unique().tolist()
    ]).sort().values


def _pick(groups: list[str] | None, idx: torch.Tensor) -> list[str] | None:
    """The patient ids of the selected images (None when the source has none)."""
    return [groups[i] for i in idx.tolist()] if groups is not None else None


def _pixel_hashes(images: torch.Tensor) -> list[bytes]:
    """sha256 of each image's uint8 bytes: exact, and about a microsecond per small image."""
    return [hashlib.sha256(row).digest() for row in np.ascontiguousarray(images.flatten(1).numpy())]


def count_duplicates(train_x: torch.Tensor, test_x: torch.Tensor) -> tuple[int, int]:
    """(test images pixel-identical to a training image, distinct such images). A copy on both sides of
    the split (a re-exported scan, a dataset merged twice) is a test answer the networks have seen."""
    train = set(_pixel_hashes(train_x))
    hits = [h for h in _pixel_hashes(test_x) if h in train]
    return len(hits), len(set(hits))


def preprocess(raw_dataset: dict, params: dict[str, Any], seed: int) -> tuple[dict, dict, dict, dict]:
    """Test split carved out when the source has none, validation split held out of train (both
    patient-aware when patient ids exist), optional per-class cap, transform fitted on train only.
    Test images identical to training images are logged and counted (`duplicates_in_train`)."""
    raw = RawDataset.from_dict(raw_dataset)
    g = make_generator(seed, "preprocess")
    train_x = _resize(raw.train_images, params.get("image_size"), params.get("channels"))
    train_y, groups = raw.train_labels, raw.train_groups
    if raw.test_labels.numel() == 0:
        rest, test_idx = holdout(train_y, groups, params.get("test_fraction", 0.2), g)
        test_x, test_y = train_x[test_idx], train_y[test_idx]
        test_groups = _pick(groups, test_idx)
        train_x, train_y = train_x[rest], train_y[rest]
        groups = _pick(groups, rest)
    else:
        test_x, test_y = _resize(raw.test_images, params.get("image_size"), params.get("channels")), raw.test_labels
        test_groups = raw.test_groups
    duplicates, distinct = count_duplicates(train_x, test_x)  # train: all but test, validation still in it
    if duplicates:
        log.warning(
            "%s: %d of %d test images are pixel-identical to training images (%d distinct); every test figure is "
            "inflated: deduplicate the source, or give patient ids in a CSV manifest",
            raw.source, duplicates, len(test_y), distinct,
        )
    keep, held = holdout(train_y, groups, params["val_fraction"], g, params.get("max_val_per_class"))
    capped = keep[_cap_per_class(train_y[keep], params.get("max_train_per_class"), g)]
    fingerprint = stable_hash(raw.fingerprint, params, seed)
    # the same images in the same splits, whatever the transform: what a method's own preparation shares
    splits_fingerprint = stable_hash(raw.fingerprint, {k: v for k, v in params.items() if k not in PREPARATION_KEYS},
                                     seed)
    transform = fit_transform(train_x[capped], zca=params["zca"], zca_eps=params.get("zca_eps", 0.1))
    transform["data_fingerprint"] = fingerprint

    def split(name: str, x: torch.Tensor, y: torch.Tensor, split_groups: list[str] | None) -> dict:
        return {
            "split": name, "images": apply_transform(x, transform), "labels": y.clone(),
            "class_names": list(raw.class_names), "data_fingerprint": fingerprint,
            "raw_fingerprint": raw.fingerprint, "splits_fingerprint": splits_fingerprint, "groups": split_groups,
            "preparation": describe_transform(transform),
        }

    out = (
        split("train", train_x[capped], train_y[capped], _pick(groups, capped)),
        split("val", train_x[held], train_y[held], _pick(groups, held)),
        {**split("test", test_x, test_y, test_groups), "duplicates_in_train": duplicates},
    )
    log.info("splits: train %d, val %d, test %d; transform %s", *(len(s["labels"]) for s in out), transform["kind"])
    return (*out, transform)


def own_preparation(method: str, shared: dict[str, Any], own: dict[str, Any] | None,
                    matches_trajectories: bool) -> dict[str, Any] | None:
    """The `preprocess` block a method distils and is evaluated on, when its `<method>.preprocess`
    makes it differ from the shared one (DataDAM's paper leaves ZCA off where MTT, DATM and SeqMatch
    whiten, methods.md §1.3), else None. A trajectory method matches experts trained on the shared
    preparation, so it cannot have one of its own."""
    own = dict(own or {})
    unknown = set(own) - PREPARATION_KEYS
    if unknown:
        raise ConfigError(f"{method}.preprocess: unknown keys {sorted(unknown)}; a method may set only "
                          f"{sorted(PREPARATION_KEYS)} (the splits are shared by every method)")
    merged = {**shared, **own}
    if merged == shared:
        return None
    if matches_trajectories:
        changed = ", ".join(f"{k}={v}" for k, v in own.items() if shared.get(k) != v)
        raise ConfigError(
            f"{method}.preprocess sets {changed}, but {method} matches the experts' trajectories, trained on the "
            f"shared preparation (preprocess.zca={shared.get('zca')}): set `preprocess` instead, for every "
            "trajectory method and the experts at once"
        )
    return merged


def make_own_preparation_node(method: str, matches_trajectories: bool):
    """The node `<method>.preprocess`: the shared splits under the method's own transform
    (`own_preparation`); each split records the method it was prepared for."""
    def prepare_own_data(raw_dataset: dict, params: dict[str, Any], own: dict[str, Any], seed: int
                         ) -> tuple[dict, dict, dict, dict]:
        merged = own_preparation(method, params, own, matches_trajectories) or params
        train, val, test, transform = preprocess(raw_dataset, merged, seed)
        log.info("%s distils and is evaluated on its own preparation: %s", method, describe_transform(transform))
        return (*({**s, "prepared_for": method} for s in (train, val, test)), transform)

    prepare_own_data.__name__ = f"prepare_{method}_data"
    return prepare_own_data


def describe_transform(transform: dict) -> str:
    """`zca (eps 0.1)` or `normalize`: how the images were prepared, as evaluations and reports show it."""
    return f"zca (eps {transform['eps']:g})" if transform["kind"] == "zca" else transform["kind"]
