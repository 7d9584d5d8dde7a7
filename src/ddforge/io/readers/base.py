"""The common reader output (:class:`RawDataset`) and the fingerprint helpers every format uses.

Every format module imports from here; nothing here knows about any one format.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddforge.errors import DataSourceError

_CHUNK = 1 << 20  # 1 MiB: hashing streams files, never holding a whole file for the hash


@dataclass(frozen=True, eq=False)
class RawDataset:
    """The common output of every reader, validated once here so consumers can trust it."""

    train_images: torch.Tensor  # uint8 [N, C, H, W]
    train_labels: torch.Tensor  # int64 [N]
    test_images: torch.Tensor  # uint8 [M, C, H, W]
    test_labels: torch.Tensor  # int64 [M]
    class_names: list[str]
    fingerprint: str  # sha256 hex digest of the raw input bytes (+ reader options that change them)
    source: str  # what was read, e.g. "idx:/usr/share/datasets/fashion-mnist"
    train_groups: list[str] | None = None  # patient (or other group) id per train image; None: unknown
    test_groups: list[str] | None = None  # same for test; lets splits keep one patient on one side

    def __post_init__(self) -> None:
        if not self.class_names or not all(isinstance(c, str) for c in self.class_names):
            raise DataSourceError(f"{self.source}: class_names must be a non-empty list of str")
        for split in ("train", "test"):
            self._check_split(split, getattr(self, f"{split}_images"), getattr(self, f"{split}_labels"))
            self._check_groups(split, getattr(self, f"{split}_groups"), len(getattr(self, f"{split}_labels")))
        if len(self.train_images) == 0:  # an empty *test* split is fine: preprocess then carves one
            raise DataSourceError(f"{self.source}: the train split has no images")
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise DataSourceError(
                f"{self.source}: train images are {tuple(self.train_images.shape[1:])} "
                f"but test images are {tuple(self.test_images.shape[1:])}"
            )

    def _check_split(self, split: str, images: torch.Tensor, labels: torch.Tensor) -> None:
        where = f"{self.source} ({split} split)"
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise DataSourceError(
                f"{where}: images must be uint8 [N, C, H, W] with C in (1, 3), "
                f"got {images.dtype} {tuple(images.shape)}"
            )
        if labels.dtype != torch.int64 or labels.ndim != 1 or len(labels) != len(images):
            raise DataSourceError(
                f"{where}: labels must be int64 [N] with N={len(images)}, got {labels.dtype} {tuple(labels.shape)}"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise DataSourceError(
                f"{where}: labels range {int(labels.min())}..{int(labels.max())} but there are only "
                f"{len(self.class_names)} class names; pass class_names matching the data"
            )

    def _check_groups(self, split: str, groups: list[str] | None, n: int) -> None:
        if groups is None:
            return
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, str) for g in groups):
            raise DataSourceError(f"{self.source} ({split} split): {split}_groups must be a list of str or None")
        if len(groups) != n:
            raise DataSourceError(
                f"{self.source} ({split} split): {len(groups)} {split}_groups for {n} images; they must align"
            )
        object.__setattr__(self, f"{split}_groups", list(groups))  # tuples from callers become lists

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict of tensors/str/list[str]/None, loadable with ``torch.load(weights_only=True)``."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["class_names"] = list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RawDataset:
        """Inverse of :meth:`as_dict`; a stale or foreign dict fails with the missing keys named.

        Optional fields (the group ids) may be absent, so dicts saved before they existed still load.
        """
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in d]
        if missing:
            raise DataSourceError(f"RawDataset.from_dict: missing keys {missing}; re-run the data ingestion step")
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def fingerprint_files(base: Path, files: Iterable[Path]) -> str:
    """sha256 over (relative name, size, bytes) of each file in sorted name order.

    Names are included so that swapping two files changes the digest; the size prefix
    keeps name/content boundaries unambiguous. Files are streamed in 1 MiB chunks.
    """
    return _fingerprint_named((Path(f).relative_to(base).as_posix(), Path(f)) for f in files)


def _fingerprint_named(named: Iterable[tuple[str, Path]]) -> str:
    """The body of :func:`fingerprint_files`, for callers whose names are not relative to one base."""
    h = hashlib.sha256()
    for rel, path in sorted(named):
        h.update(rel.encode() + b"\0" + struct.pack(">Q", path.stat().st_size))
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def _fingerprint_with_options(files_digest: str, **options: Any) -> str:
    """Fold reader options that change the tensors (resize, channels, class order) into the digest.

    Without this, re-reading the same files at another ``image_size`` would give the same
    fingerprint and downstream caches keyed on it would serve artefacts of the wrong shape.
    """
    blob = json.dumps(options, sort_keys=True, default=list)
    return hashlib.sha256(f"{files_digest}\0{blob}".encode()).hexdigest()


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """sha256 over dtype, shape and bytes of in-memory arrays (for non-file sources)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _show_dir(d: Path) -> str:
    return str(d) if d.is_absolute() else f"{d} (= {d.absolute()})"
