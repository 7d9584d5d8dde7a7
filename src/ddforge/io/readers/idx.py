"""MNIST-family idx files (Fashion-MNIST, MNIST), gzipped or not.

A binary format parsed by hand; it shares only :mod:`.base` with the other readers.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ddforge.errors import DataSourceError
from ddforge.io.readers.base import RawDataset, _show_dir, fingerprint_files

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_IMAGES_MAGIC = 0x00000803  # ubyte, 3 dims
_IDX_LABELS_MAGIC = 0x00000801  # ubyte, 1 dim
_IDX_HOW_TO_GET = (
    "install with `apt-get install -y dataset-fashion-mnist` or copy the four idx .gz files "
    "into data/01_raw/fashion-mnist/"
)
_REFETCH = f"the file is damaged, re-fetch it ({_IDX_HOW_TO_GET})"


def read_idx(search_dirs: Sequence[str | Path], class_names: list[str] | None = None) -> RawDataset:
    """Read MNIST-family idx files (gzipped or not) from the first dir that has all four.

    Several dirs are searched because the data may come from a system package or a
    project-local copy; the first complete set wins so the choice is predictable.
    """
    dirs = [Path(search_dirs)] if isinstance(search_dirs, (str, Path)) else [Path(d) for d in search_dirs]
    problems = []
    for d in dirs:
        found = _find_idx_files(d)
        missing = [name for name, path in found.items() if path is None]
        if not missing:
            return _read_idx_dir(d, found, class_names)
        problems.append(f"  {_show_dir(d)}: " + ("does not exist" if not d.is_dir() else f"missing {missing}"))
    raise DataSourceError(
        "No complete MNIST-family idx dataset found (need train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, optionally .gz). Looked in:\n"
        + "\n".join(problems or ["  (no search_dirs given)"])
        + f"\nTo get the data: {_IDX_HOW_TO_GET}."
    )


def _find_idx_files(d: Path) -> dict[str, Path | None]:
    """Map each role to its file in ``d``, preferring the uncompressed name when both exist."""
    out: dict[str, Path | None] = {}
    for role, stem in _IDX_FILES.items():
        candidates = [d / stem, d / f"{stem}.gz"]
        out[role] = next((p for p in candidates if p.is_file()), None)
    return out


def _read_idx_dir(d: Path, files: dict[str, Path], class_names: list[str] | None) -> RawDataset:
    arrays = {
        role: _read_idx_file(path, _IDX_IMAGES_MAGIC if role.endswith("images") else _IDX_LABELS_MAGIC)
        for role, path in files.items()
    }
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise DataSourceError(
                f"{files[f'{split}_labels']}: has {n_lab} labels but {files[f'{split}_images']} "
                f"has {n_img} images; the two files do not belong together"
            )
    if class_names is None:
        class_names = _default_idx_classes(d, arrays["train_labels"], arrays["test_labels"])
    return RawDataset(
        train_images=torch.from_numpy(arrays["train_images"]).unsqueeze(1),
        train_labels=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        test_images=torch.from_numpy(arrays["test_images"]).unsqueeze(1),
        test_labels=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        class_names=list(class_names),
        fingerprint=fingerprint_files(d, files.values()),
        source=f"idx:{d}",
    )


def _default_idx_classes(d: Path, *labels: np.ndarray) -> list[str]:
    """Fashion-MNIST names when the path says so, else digit names (extended if labels exceed 9)."""
    if "fashion" in str(d).lower():
        return list(FASHION_MNIST_CLASSES)
    n = max([10] + [int(lab.max()) + 1 for lab in labels if len(lab)])
    return [str(i) for i in range(n)]


def _read_idx_file(path: Path, magic: int) -> np.ndarray:
    """Parse one idx file; gzip is detected from the content, not the file name."""
    raw = _read_maybe_gzip(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    found_magic = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
    if found_magic is not None and found_magic != magic:  # checked first: a wrong file beats a short one
        raise DataSourceError(
            f"{path}: bad idx magic number 0x{found_magic:08x}, expected 0x{magic:08x} "
            f"(unsigned-byte {ndim}-d {'images' if ndim == 3 else 'labels'}); is it the right file?"
        )
    if len(raw) < header:
        raise DataSourceError(f"{path}: truncated: expected {header} bytes of header, found {len(raw)}; {_REFETCH}")
    dims = struct.unpack(f">{ndim}i", raw[4:header])
    if any(x < 0 for x in dims) or (ndim == 3 and 0 in dims[1:]):
        raise DataSourceError(f"{path}: invalid idx dimensions {dims}")
    expected, found = math.prod(dims), len(raw) - header  # python ints: no overflow on corrupt dims
    if found < expected:
        raise DataSourceError(
            f"{path}: truncated: expected {expected} bytes, found {found} after the {header}-byte header "
            f"(dims {dims}); {_REFETCH}"
        )
    if found > expected:
        raise DataSourceError(
            f"{path}: {found - expected} unexpected trailing bytes: expected {expected} bytes, found {found} "
            f"after the header (dims {dims}); {_REFETCH}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _read_maybe_gzip(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            is_gzip = fh.read(2) == b"\x1f\x8b"
        if not is_gzip:
            return path.read_bytes()
    except OSError as e:
        raise DataSourceError(f"{path}: cannot read file ({e.strerror or e})") from e
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except EOFError as e:
        raise DataSourceError(f"{path}: truncated gzip stream ({e}); {_REFETCH}") from e
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataSourceError(f"{path}: corrupt gzip data ({e}); {_REFETCH}") from e
