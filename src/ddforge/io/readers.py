"""Readers that turn raw on-disk datasets into one common, validated in-memory form.

Every reader returns a :class:`RawDataset`: uint8 images ``[N, C, H, W]``, int64 labels,
class names, a sha256 fingerprint of the raw input bytes (so downstream artefacts can be
tied to the exact data they were made from) and a ``source`` string for provenance.

Sources without an official test split (image folders, CSV manifests) return everything as
train and an empty test split; the preprocess stage carves its own. Bad input of any kind
fails here, before training, with one :class:`DataSourceError` naming the file and the
problem (see ``docs/bad_inputs.md``); harmless oddities are logged as warnings.

The module is deliberately free of Kedro: readers are plain functions, testable on tiny
fixture files, and the Kedro layer only calls :func:`read_dataset` with a parameters dict.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib
import inspect
import io
import json
import logging
import math
import os
import pickle
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import MISSING, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddforge.errors import ConfigError, DataSourceError, DDForgeError

log = logging.getLogger(__name__)

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
DIGIT_CLASSES = [str(i) for i in range(10)]

_CHUNK = 1 << 20  # 1 MiB: hashing streams files, never holding a whole file for the hash


# --------------------------------------------------------------------------- RawDataset


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


# --------------------------------------------------------------------------- fingerprint


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


# --------------------------------------------------------------------------- idx (MNIST family)

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


def _show_dir(d: Path) -> str:
    return str(d) if d.is_absolute() else f"{d} (= {d.absolute()})"


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


# --------------------------------------------------------------------------- CIFAR / SVHN


@dataclass(frozen=True)
class _CifarLayout:
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    names_key: str
    labels_key: str


_CIFAR = {
    "cifar10": _CifarLayout(
        "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
        "batches.meta", "label_names", "labels",
    ),
    "cifar100": _CifarLayout("cifar-100-python", ("train",), ("test",), "meta", "fine_label_names", "fine_labels"),
}  # fmt: skip
_SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def read_torchvision(name: str, root: str | Path, download: bool = False) -> RawDataset:
    """Read CIFAR-10, CIFAR-100 or SVHN from torchvision's on-disk layout under ``root``.

    The files are parsed here rather than through ``torchvision.datasets``, because
    torchvision refuses any file whose md5 differs from the official archive; that would
    reject small test fixtures and re-packed copies alike. Torchvision is only used for
    ``download=True`` (it fetches and checks the official files). Integrity is instead
    recorded by the sha256 fingerprint over the files actually read.
    """
    root = Path(root)
    if name in _CIFAR:
        layout = _CIFAR[name]
        folder = root / layout.folder
        needed = [folder / f for f in (*layout.train, *layout.test, layout.meta)]
        _ensure_files(name, root, needed, download)
        return _read_cifar(name, folder, layout)
    if name == "svhn":
        needed = [root / f for f in _SVHN_FILES.values()]
        _ensure_files(name, root, needed, download)
        return _read_svhn(root)
    raise DataSourceError(f"read_torchvision: unknown dataset {name!r}; known: {sorted([*_CIFAR, 'svhn'])}")


def _ensure_files(name: str, root: Path, needed: list[Path], download: bool) -> None:
    """Download only when asked and needed, so offline runs never touch the network."""
    missing = [p for p in needed if not p.is_file()]
    if missing and download:
        _download(name, root)
        missing = [p for p in needed if not p.is_file()]
    if missing:
        raise DataSourceError(
            f"{name}: dataset files not found under {_show_dir(root)}; missing: {[str(p) for p in missing]}. "
            f"Set `download: true` for this dataset in the parameters to fetch it with torchvision, "
            f"or copy the extracted files there."
        )


def _download(name: str, root: Path) -> None:
    from torchvision import datasets  # imported lazily: only needed for downloads

    try:
        if name == "svhn":
            for split in _SVHN_FILES:
                datasets.SVHN(root, split=split, download=True)
        else:
            {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name](root, download=True)
    except Exception as e:  # network, disk or checksum failures all mean "no data"
        raise DataSourceError(
            f"{name}: download into {_show_dir(root)} failed ({type(e).__name__}: {e}); "
            f"check network access or copy the files there by hand"
        ) from e


def _read_cifar(name: str, folder: Path, layout: _CifarLayout) -> RawDataset:
    train_x, train_y = _read_cifar_batches([folder / f for f in layout.train], layout.labels_key)
    test_x, test_y = _read_cifar_batches([folder / f for f in layout.test], layout.labels_key)
    meta_path = folder / layout.meta
    meta = _load_cifar_pickle(meta_path)
    if layout.names_key not in meta:
        raise DataSourceError(f"{meta_path}: no {layout.names_key!r} key (found {sorted(meta)})")
    files = [folder / f for f in (*layout.train, *layout.test, layout.meta)]
    return RawDataset(
        train_images=train_x,
        train_labels=train_y,
        test_images=test_x,
        test_labels=test_y,
        class_names=[_to_str(c) for c in meta[layout.names_key]],
        fingerprint=fingerprint_files(folder, files),
        source=f"{name}:{folder}",
    )


def _read_cifar_batches(paths: list[Path], labels_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate batches in the documented format: ``data`` uint8 [N, 3072] (CHW rows) + labels."""
    xs, ys = [], []
    for path in paths:
        batch = _load_cifar_pickle(path)
        if "data" not in batch or labels_key not in batch:
            raise DataSourceError(f"{path}: expected keys 'data' and {labels_key!r}, found {sorted(batch)}")
        data, labels = np.asarray(batch["data"]), np.asarray(batch[labels_key], dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DataSourceError(f"{path}: 'data' must be uint8 [N, 3072], got {data.dtype} {data.shape}")
        if len(labels) != len(data):
            raise DataSourceError(f"{path}: {len(data)} images but {len(labels)} labels")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels.reshape(-1))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays, so a tampered batch file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
    }  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("numpy.core."):  # files pickled with numpy < 2
            module = "numpy._core." + module.removeprefix("numpy.core.")
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return getattr(importlib.import_module(module), name)


def _load_cifar_pickle(path: Path) -> dict[str, Any]:
    """Load one CIFAR pickle (python-2 era, hence latin1) and normalise bytes keys to str."""
    try:
        with open(path, "rb") as fh:
            obj = _ArrayOnlyUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DataSourceError(f"{path}: not a readable CIFAR pickle batch ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DataSourceError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
    return {_to_str(k): v for k, v in obj.items()}


def _to_str(x: Any) -> str:
    return x.decode("latin1") if isinstance(x, bytes) else str(x)


def _read_svhn(root: Path) -> RawDataset:
    try:
        import scipy.io as sio  # optional: only SVHN's .mat files need it
    except ImportError as e:
        raise DataSourceError(f"svhn: reading {root / _SVHN_FILES['train']} needs scipy: pip install scipy") from e
    split = {s: _read_svhn_mat(sio, root / f) for s, f in _SVHN_FILES.items()}
    return RawDataset(
        train_images=split["train"][0],
        train_labels=split["train"][1],
        test_images=split["test"][0],
        test_labels=split["test"][1],
        class_names=list(DIGIT_CLASSES),
        fingerprint=fingerprint_files(root, [root / f for f in _SVHN_FILES.values()]),
        source=f"svhn:{root}",
    )


def _read_svhn_mat(sio: Any, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` is [32, 32, 3, N] (HWC, N last); ``y`` is [N, 1] with 10 meaning the digit 0."""
    try:
        mat = sio.loadmat(path)
    except Exception as e:  # scipy raises several unrelated types for bad files
        raise DataSourceError(f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from e
    if "X" not in mat or "y" not in mat:
        raise DataSourceError(f"{path}: expected variables 'X' and 'y', found {sorted(k for k in mat if k[0] != '_')}")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).astype(np.int64).reshape(-1)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[2] != 3 or x.shape[3] != len(y):
        raise DataSourceError(f"{path}: 'X' must be uint8 [H, W, 3, N] with N={len(y)}, got {x.dtype} {x.shape}")
    y = np.where(y == 10, 0, y)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1))), torch.from_numpy(y)


# --------------------------------------------------------------------------- sklearn digits


def read_sklearn_digits(test_fraction: float = 0.2, seed: int = 0) -> RawDataset:
    """sklearn's bundled 8x8 digits: a tiny, offline dataset for smoke tests and CI.

    Values 0..16 are scaled to 0..255 (``x * 255 // 16``) so it looks like every other
    uint8 image source. The split is stratified so every class appears in both splits.
    """
    from sklearn.datasets import load_digits  # imported lazily: sklearn is slow to import

    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"read_sklearn_digits: test_fraction must be in (0, 1), got {test_fraction}")
    digits = load_digits()
    raw, target = np.asarray(digits.images), np.asarray(digits.target, dtype=np.int64)
    images = (raw.astype(np.int64) * 255 // 16).astype(np.uint8)[:, None, :, :]
    train_idx, test_idx = _stratified_split(target, test_fraction, seed)
    return RawDataset(
        train_images=torch.from_numpy(images[train_idx]),
        train_labels=torch.from_numpy(target[train_idx]),
        test_images=torch.from_numpy(images[test_idx]),
        test_labels=torch.from_numpy(target[test_idx]),
        class_names=[str(c) for c in digits.target_names],
        fingerprint=fingerprint_arrays(raw, target),
        source=f"sklearn_digits:test_fraction={test_fraction},seed={seed}",
    )


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class, a seeded shuffle sends round(n * fraction) items (at least 1, at most n-1) to test."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_test = min(max(round(len(idx) * test_fraction), 1), len(idx) - 1)
        test.append(rng.permutation(idx)[:n_test])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx


# --------------------------------------------------------------------------- shared: files and images

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_JUNK_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}  # OS droppings, skipped like dot-files
_GRAY_MODES = {"1", "L", "LA", "La"}
_RESIZE_HINT = (
    "set `image_size` in the dataset source (the same value as `preprocess.image_size`, "
    "an int or [H, W]) so every image is resized once when it is read"
)


def _is_hidden(p: Path) -> bool:
    return p.name.startswith(".") or p.name.lower() in _JUNK_NAMES


def _kind(p: Path) -> str:
    """'file', 'dir', 'missing' or 'other', never raising (names may be too long, links broken)."""
    try:
        if p.is_dir():
            return "dir"
        if p.is_file():
            return "file"
    except (OSError, ValueError):
        pass
    return "other" if os.path.lexists(p) else "missing"


def _as_path(value: Any, what: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or str(value) == "":
        raise ConfigError(f"{what} must be a non-empty path string, got {value!r}")
    return Path(value)


def _existing_dir(value: Any, what: str) -> Path:
    root = _as_path(value, what)
    kind = _kind(root)
    if kind == "missing":
        raise DataSourceError(f"{_show_dir(root)}: {what} does not exist")
    if kind != "dir":
        raise DataSourceError(f"{root}: {what} is not a directory (expected a folder of class folders)")
    return root


def _existing_file(value: Any, what: str) -> Path:
    path = _as_path(value, what)
    kind = _kind(path)
    if kind == "missing":
        raise DataSourceError(f"{_show_dir(path)}: {what} does not exist")
    if kind == "dir":
        raise DataSourceError(f"{path}: {what} is a directory, expected a file")
    if kind != "file":
        raise DataSourceError(f"{path}: {what} is not a regular file (broken link or special file?)")
    if path.stat().st_size == 0:
        raise DataSourceError(f"{path}: {what} is an empty file (0 bytes)")
    return path


def _list_dir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as e:
        raise DataSourceError(f"{folder}: cannot list folder ({e.strerror or e})") from e


def _warn_skipped(folder: Path, names: list[str], why: str) -> None:
    if names:
        log.warning("%s: skipping %s: %s", folder, why, ", ".join(sorted(names)))


def _parse_image_size(image_size: Any) -> tuple[int, int] | None:
    """``None``, an int, or ``[H, W]`` -> ``(H, W)``; anything else is a config mistake."""
    if image_size is None:
        return None
    hw = [image_size, image_size] if isinstance(image_size, int) else image_size
    if (
        not isinstance(hw, (list, tuple))
        or len(hw) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in hw)
    ):
        raise ConfigError(f"image_size must be null, a positive int or [H, W] of positive ints, got {image_size!r}")
    return int(hw[0]), int(hw[1])


def _parse_channels(channels: Any) -> int | None:
    if channels not in (None, 1, 3) or isinstance(channels, bool):
        raise ConfigError(f"channels must be null (keep), 1 (grayscale) or 3 (RGB), got {channels!r}")
    return channels


def _parse_class_names(class_names: Any) -> list[str] | None:
    if class_names is None:
        return None
    ok = isinstance(class_names, (list, tuple)) and class_names and all(isinstance(c, str) and c for c in class_names)
    if not ok or len(set(class_names)) != len(class_names):
        raise ConfigError(f"class_names must be a non-empty list of distinct non-empty strings, got {class_names!r}")
    return list(class_names)


def _load_image(path: Path, size: tuple[int, int] | None, channels: int | None) -> np.ndarray:
    """Decode one image to uint8 ``[C, H, W]``, resizing with PIL's antialiased bilinear filter.

    Resizing happens here, once, on the decoded image: resampling again later would blur twice.
    PIL raises many unrelated exception types for damaged files, so all are wrapped.
    """
    from PIL import Image  # imported lazily: only image sources need it

    try:
        if path.stat().st_size == 0:
            raise DataSourceError(f"{path}: empty file (0 bytes), not an image")
        with Image.open(path) as im:
            im = _convert_mode(im, channels, path)
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except DDForgeError:
        raise
    except Exception as e:
        raise DataSourceError(f"{path}: {_image_problem(e)} ({type(e).__name__}: {e})") from e
    return arr[None].copy() if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def _convert_mode(im: Any, channels: int | None, path: Path) -> Any:
    """Grayscale stays one channel (unless ``channels=3``); colour becomes RGB (unless ``channels=1``)."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        im = _high_depth_to_l(im, path)
    target = channels or (1 if im.mode in _GRAY_MODES else 3)
    want = "L" if target == 1 else "RGB"
    return im if im.mode == want else im.convert(want)


def _high_depth_to_l(im: Any, path: Path) -> Any:
    """16/32-bit integer grayscale (common for X-rays) is scaled 0..65535 -> 0..255.

    PIL's own ``convert("L")`` clips instead, which would turn most of a 16-bit image white.
    """
    from PIL import Image

    if im.mode == "F":
        raise DataSourceError(f"{path}: floating-point image (PIL mode F) is not supported; save it as 8 or 16 bit")
    a = np.asarray(im).astype(np.int64)
    if a.size and (a.min() < 0 or a.max() > 65535):
        raise DataSourceError(
            f"{path}: {im.mode} image has values {a.min()}..{a.max()}, outside the 16-bit range 0..65535"
        )
    return Image.fromarray(np.rint(a / 257.0).astype(np.uint8))  # 2-d uint8 -> mode L


def _image_problem(e: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(e, OSError) and e.errno is not None:  # the OS refused (permissions, I/O), not PIL
        return "cannot read file"
    if isinstance(e, EOFError) or "truncat" in str(e).lower():
        return "truncated image"
    if isinstance(e, UnidentifiedImageError):
        return "not a readable image (unknown format or corrupt header)"
    return "corrupt image"


def _load_images(files: Sequence[Path], size: tuple[int, int] | None, channels: int | None) -> np.ndarray:
    """Stack decoded images into ``[N, C, H, W]``; the first geometry mismatch names both files."""
    arrays: list[np.ndarray] = []
    for path in files:
        arr = _load_image(path, size, channels)
        if arrays and arr.shape != arrays[0].shape:
            raise _geometry_mismatch(files[0], arrays[0].shape, path, arr.shape)
        arrays.append(arr)
    return np.stack(arrays)


def _geometry_mismatch(a: Path, shape_a: tuple, b: Path, shape_b: tuple) -> DataSourceError:
    if shape_a[0] != shape_b[0]:
        kind = {1: "grayscale (1 channel)", 3: "RGB (3 channels)"}
        return DataSourceError(
            f"{b}: mixed channels: it is {kind[shape_b[0]]} but {a} is {kind[shape_a[0]]}; "
            f"set `channels: 1` or `channels: 3` in the dataset source to convert them all"
        )
    return DataSourceError(
        f"{b}: images of different sizes: it is {shape_b[1]}x{shape_b[2]} (HxW) but {a} is "
        f"{shape_a[1]}x{shape_a[2]}; {_RESIZE_HINT}"
    )


def _train_only(
    images: np.ndarray, labels: list[int], class_names: list[str], fingerprint: str, source: str,
    groups: list[str] | None = None,
) -> RawDataset:  # fmt: skip
    """Everything in train and an empty test split of the same geometry: no official test split exists."""
    x = torch.from_numpy(images)
    return RawDataset(
        train_images=x,
        train_labels=torch.tensor(labels, dtype=torch.int64),
        test_images=x[:0].clone(),
        test_labels=torch.zeros(0, dtype=torch.int64),
        class_names=class_names,
        fingerprint=fingerprint,
        source=source,
        train_groups=groups,
        test_groups=[] if groups is not None else None,
    )


# --------------------------------------------------------------------------- image folders


def read_image_folder(
    root: str | Path,
    image_size: int | Sequence[int] | None = None,
    channels: int | None = None,
    class_names: Sequence[str] | None = None,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> RawDataset:
    """Read ``<root>/<Class>/*.png`` or ``<root>/<Class>/images/*.png`` (COVID-19 Radiography layout).

    Classes are the sub-folder names, sorted, unless ``class_names`` picks and orders them
    (folders not listed are skipped with a warning). ``masks/`` folders, dot-files and files
    at the top level are skipped with a warning; anything else unexpected is an error, since
    a stray file in a class folder usually means the folder is not what the user thinks.
    All images go to train; the test split is empty (preprocess carves one).
    """
    root = _existing_dir(root, "image folder root")
    size, chans = _parse_image_size(image_size), _parse_channels(channels)
    exts = _parse_extensions(extensions)
    folders = _class_folders(root)
    names = _select_classes(root, folders, _parse_class_names(class_names))
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        found = _class_images(folders[name], exts)
        files += found
        labels += [label] * len(found)
    images = _load_images(files, size, chans)
    digest = _fingerprint_with_options(fingerprint_files(root, files), image_size=size, channels=chans, classes=names)
    return _train_only(images, labels, names, digest, f"image_folder:{root}")


def _parse_extensions(extensions: Any) -> tuple[str, ...]:
    if isinstance(extensions, str) or not extensions or not all(isinstance(e, str) and e for e in extensions):
        raise ConfigError(f"extensions must be a non-empty list like ['.png', '.jpg'], got {extensions!r}")
    return tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)


def _class_folders(root: Path) -> dict[str, Path]:
    folders, files, hidden = {}, [], []
    for entry in _list_dir(root):
        if _is_hidden(entry):
            hidden.append(entry.name)
        elif _kind(entry) == "dir":
            folders[entry.name] = entry
        else:
            files.append(entry.name)
    _warn_skipped(root, hidden, "hidden/system entries")
    _warn_skipped(root, files, "files at the top level (only class folders are read)")
    if not folders:
        raise DataSourceError(
            f"{root}: no class folders found (found {len(files)} file(s) at the top level); expected one "
            f"sub-folder per class, e.g. {root}/Normal/*.png or {root}/Normal/images/*.png"
        )
    return folders


def _select_classes(root: Path, folders: dict[str, Path], class_names: list[str] | None) -> list[str]:
    if class_names is None:
        return sorted(folders)
    missing = [n for n in class_names if n not in folders]
    if missing:
        raise DataSourceError(f"{root}: no class folder for class_names {missing}; found folders {sorted(folders)}")
    _warn_skipped(root, [n for n in folders if n not in class_names], "class folders not in class_names")
    return class_names


def _class_images(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Image files of one class, from ``folder`` or its ``images/`` sub-folder."""
    searched = folder / "images"
    if _kind(searched) == "dir":
        _check_nested_class(folder)
    else:
        searched = folder
    files = _image_files(searched, extensions)
    if not files:
        raise DataSourceError(f"{searched}: empty class folder: no image files with extensions {list(extensions)}")
    return files


def _check_nested_class(folder: Path) -> None:
    """Beside ``images/`` only ``masks/`` (segmentation masks, not inputs) and hidden files may live."""
    hidden, masks = [], []
    for entry in _list_dir(folder):
        if entry.name == "images":
            continue
        if _is_hidden(entry):
            hidden.append(entry.name)
        elif entry.name.lower() == "masks" and _kind(entry) == "dir":
            masks.append(entry.name + "/")
        else:
            raise DataSourceError(
                f"{entry}: unexpected entry beside {folder.name}/images/; with the images/ layout a class "
                f"folder may only hold images/ and masks/"
            )
    _warn_skipped(folder, hidden, "hidden/system entries")
    _warn_skipped(folder, masks, "mask folders (segmentation masks are not training images)")


def _image_files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    files, hidden, masks = [], [], []
    for entry in _list_dir(folder):
        kind = _kind(entry)
        if _is_hidden(entry):
            hidden.append(entry.name)
        elif kind == "dir" and entry.name.lower() == "masks":
            masks.append(entry.name + "/")
        elif kind == "dir":
            raise DataSourceError(
                f"{entry}: unexpected sub-folder in class folder {folder.name!r}; expected image files "
                f"directly inside, or the <Class>/images/ (+ masks/) layout"
            )
        elif kind != "file":
            raise DataSourceError(f"{entry}: not a regular file (broken link or special file?)")
        elif entry.suffix.lower() not in extensions:
            raise DataSourceError(
                f"{entry}: not an image file (extension {entry.suffix or '(none)'!r}, expected one of "
                f"{list(extensions)}); move it out of the class folder {folder}"
            )
        else:
            files.append(entry)
    _warn_skipped(folder, hidden, "hidden/system entries")
    _warn_skipped(folder, masks, "mask folders (segmentation masks are not training images)")
    return files


# --------------------------------------------------------------------------- CSV manifests


@dataclass(frozen=True)
class _ManifestRow:
    row: int  # line number in the file; the header is row 1
    path: str
    label: str
    patient_id: str | None


_MANIFEST_HEADER = "`path,label` or `path,label,patient_id`"


def read_csv_manifest(
    path: str | Path,
    image_size: int | Sequence[int] | None = None,
    channels: int | None = None,
    class_names: Sequence[str] | None = None,
) -> RawDataset:
    """Read images listed in a CSV with header ``path,label[,patient_id]``.

    Paths are relative to the manifest's folder so a dataset folder can be moved as a whole.
    Labels are class names; the class list is the sorted unique labels unless ``class_names``
    is given. ``patient_id`` (optional) fills ``train_groups`` so later splits can keep each
    patient on one side. All images go to train; the test split is empty (preprocess carves one).
    """
    manifest = _existing_file(path, "CSV manifest")
    size, chans = _parse_image_size(image_size), _parse_channels(channels)
    rows, has_groups = _read_manifest(manifest)
    names = _manifest_classes(manifest, rows, _parse_class_names(class_names))
    files = _manifest_files(manifest, rows)
    images = _load_images(files, size, chans)
    index = {name: i for i, name in enumerate(names)}
    named = [(manifest.name, manifest)] + [(f"rows/{r.path}", f) for r, f in zip(rows, files)]
    digest = _fingerprint_with_options(_fingerprint_named(named), image_size=size, channels=chans, classes=names)
    groups = [r.patient_id for r in rows] if has_groups else None
    return _train_only(images, [index[r.label] for r in rows], names, digest, f"csv_manifest:{manifest}", groups)


def _read_manifest(path: Path) -> tuple[list[_ManifestRow], bool]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        cols = _manifest_columns(path, header)
        rows = [r for rec in reader if (r := _manifest_row(path, reader.line_num, rec, header, cols))]
    except csv.Error as e:
        raise DataSourceError(f"{path}: malformed CSV near line {reader.line_num} ({e})") from e
    if not rows:
        raise DataSourceError(f"{path}: manifest has a header but no rows; list one image per row")
    return rows, "patient_id" in cols


def _read_text(path: Path) -> str:
    try:
        text = path.read_bytes().decode("utf-8-sig")  # -sig: spreadsheet exports often start with a BOM
    except UnicodeDecodeError as e:
        raise DataSourceError(f"{path}: not UTF-8 text ({e}); save the manifest as UTF-8 CSV") from e
    except OSError as e:
        raise DataSourceError(f"{path}: cannot read file ({e.strerror or e})") from e
    if not text.strip():
        raise DataSourceError(
            f"{path}: empty manifest: no header and no rows; the first line must be {_MANIFEST_HEADER}"
        )
    return text


def _manifest_columns(path: Path, header: list[str]) -> dict[str, int]:
    missing = [c for c in ("path", "label") if c not in header]
    if missing:
        hint = "" if set(header) & {"path", "label", "patient_id"} else " (is the header line missing?)"
        raise DataSourceError(
            f"{path}: manifest header {header} lacks column(s) {missing}{hint}; "
            f"the first line must be {_MANIFEST_HEADER}"
        )
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    if dupes:
        raise DataSourceError(f"{path}: manifest header repeats column(s) {dupes}")
    extra = [h for h in header if h not in ("path", "label", "patient_id")]
    _warn_skipped(path, extra, "unknown manifest columns")
    return {c: header.index(c) for c in ("path", "label", "patient_id") if c in header}


def _manifest_row(
    path: Path, line: int, rec: list[str], header: list[str], cols: dict[str, int]
) -> _ManifestRow | None:
    if not any(cell.strip() for cell in rec):
        return None  # blank line
    where = f"{path}, row {line}"
    if len(rec) != len(header):
        raise DataSourceError(f"{where}: expected {len(header)} fields ({','.join(header)}), found {len(rec)}")
    cells = {c: rec[i].strip() for c, i in cols.items()}
    empty = [c for c, v in cells.items() if not v]
    if empty:
        raise DataSourceError(f"{where}: empty {' and '.join(empty)} cell")
    return _ManifestRow(line, cells["path"], cells["label"], cells.get("patient_id"))


def _manifest_classes(path: Path, rows: list[_ManifestRow], class_names: list[str] | None) -> list[str]:
    labels = sorted({r.label for r in rows})
    if class_names is None:
        return labels
    for r in rows:
        if r.label not in class_names:
            raise DataSourceError(f"{path}, row {r.row}: unknown label {r.label!r}; class_names are {class_names}")
    unused = [c for c in class_names if c not in labels]
    if unused:
        raise DataSourceError(f"{path}: no row has label(s) {unused}, although class_names lists them")
    return class_names


def _manifest_files(manifest: Path, rows: list[_ManifestRow]) -> list[Path]:
    """Resolve each row's path against the manifest's folder; each image may be listed once."""
    seen: dict[str, int] = {}
    files = []
    for r in rows:
        f = manifest.parent / r.path
        where = f"{manifest}, row {r.row}"
        key = os.path.normpath(f)
        if key in seen:
            raise DataSourceError(f"{where}: image {r.path!r} is listed twice (first on row {seen[key]})")
        seen[key] = r.row
        kind = _kind(f)
        if kind == "missing":
            raise DataSourceError(
                f"{where}: image {r.path!r} not found (looked for {f}; paths are relative to the manifest's folder)"
            )
        if kind != "file":
            what = "a directory" if kind == "dir" else "not a regular file"
            raise DataSourceError(f"{where}: image path {r.path!r} is {what}, expected an image file")
        files.append(f)
    return files


# --------------------------------------------------------------------------- MedMNIST .npz

_NPZ_SPLITS = ("train", "val", "test")
_NPZ_KEYS = tuple(f"{s}_{k}" for s in _NPZ_SPLITS for k in ("images", "labels"))
_MAX_DEFAULT_CLASSES = 10_000  # guards against e.g. 255-as-missing labels silently making 256 classes


def read_medmnist_npz(path: str | Path, class_names: Sequence[str] | None = None) -> RawDataset:
    """Read a MedMNIST ``.npz`` (images uint8 ``[N, H, W]`` or ``[N, H, W, 3]``, labels ``[N]`` or ``[N, 1]``).

    ``val`` is appended to train: preprocess makes its own stratified validation split, and
    keeping the official one separate would give two conflicting notions of validation.
    Split sizes are not checked against the official counts (re-packed subsets are fine).
    Class names default to ``"0"..."K-1"``.
    """
    path = _existing_file(path, "MedMNIST .npz file")
    arrays = _load_npz(path)
    split = {s: _npz_split(path, s, arrays[f"{s}_images"], arrays[f"{s}_labels"]) for s in _NPZ_SPLITS}
    _check_npz_geometry(path, {s: x.shape[1:] for s, (x, _) in split.items()})
    names = _npz_classes(path, split, _parse_class_names(class_names))
    digest = _fingerprint_with_options(fingerprint_files(path.parent, [path]), classes=names)
    return RawDataset(
        train_images=torch.from_numpy(np.concatenate([split["train"][0], split["val"][0]])),
        train_labels=torch.from_numpy(np.concatenate([split["train"][1], split["val"][1]])),
        test_images=torch.from_numpy(split["test"][0]),
        test_labels=torch.from_numpy(split["test"][1]),
        class_names=names,
        fingerprint=digest,
        source=f"medmnist_npz:{path}",
    )


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load the six arrays; numpy/zipfile raise many types for damaged archives, all are wrapped."""
    _check_npz_signature(path)
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:
        raise DataSourceError(
            f"{path}: corrupt or truncated .npz archive ({type(e).__name__}: {e}); re-download it"
        ) from e
    with z:
        missing = [k for k in _NPZ_KEYS if k not in z.files]
        if missing:
            raise DataSourceError(
                f"{path}: missing keys {missing} (found {sorted(z.files)}); expected {list(_NPZ_KEYS)}"
            )
        out = {}
        for key in _NPZ_KEYS:
            try:
                out[key] = z[key]
            except Exception as e:
                raise DataSourceError(f"{path}: array {key!r} is unreadable ({type(e).__name__}: {e})") from e
    return out


def _check_npz_signature(path: Path) -> None:
    """Sniff the first bytes so a wrong file gets a plain answer, not numpy's advice to unpickle it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as e:
        raise DataSourceError(f"{path}: cannot read file ({e.strerror or e})") from e
    if head.startswith(b"\x93NUMPY"):
        raise DataSourceError(f"{path}: is a single .npy array, not an .npz archive with keys {list(_NPZ_KEYS)}")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise DataSourceError(f"{path}: not an .npz archive (no zip signature; file starts with {head!r})")


def _npz_split(path: Path, split: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One split as uint8 ``[N, C, H, W]`` and int64 ``[N]``, after checking dtypes and shapes."""
    xk, yk = f"'{split}_images'", f"'{split}_labels'"
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    else:
        raise DataSourceError(f"{path}: {xk} has wrong shape {x.shape}; expected [N, H, W] or [N, H, W, 3]")
    if x.dtype != np.uint8:
        raise DataSourceError(f"{path}: {xk} has wrong dtype {x.dtype}; expected uint8")
    if 0 in x.shape[2:]:
        raise DataSourceError(f"{path}: {xk} has wrong shape {x.shape}: zero height or width")
    if y.dtype.kind not in "iu":
        raise DataSourceError(f"{path}: {yk} has wrong dtype {y.dtype}; expected integers")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim != 1:
        raise DataSourceError(
            f"{path}: {yk} has wrong shape {y.shape}; expected [N] or [N, 1] (multi-label files are not supported)"
        )
    if len(y) != len(x):
        raise DataSourceError(f"{path}: {yk} has {len(y)} labels but {xk} has {len(x)} images")
    if len(y) and int(y.min()) < 0:
        raise DataSourceError(f"{path}: {yk} has negative label {int(y.min())}")
    if len(y) and int(y.max()) >= 2**31:
        raise DataSourceError(f"{path}: {yk} has label {int(y.max())}, out of range")
    return np.ascontiguousarray(x), y.astype(np.int64)


def _check_npz_geometry(path: Path, shapes: dict[str, tuple]) -> None:
    if len(set(shapes.values())) > 1:
        shown = ", ".join(f"{s}: {tuple(v)}" for s, v in shapes.items())
        raise DataSourceError(f"{path}: splits have different image shapes [C, H, W] ({shown})")


def _npz_classes(
    path: Path, split: dict[str, tuple[np.ndarray, np.ndarray]], class_names: list[str] | None
) -> list[str]:
    top = {s: int(y.max()) for s, (_, y) in split.items() if len(y)}
    if not top:
        raise DataSourceError(f"{path}: all splits are empty")
    worst = max(top, key=top.get)
    if class_names is not None:
        if top[worst] >= len(class_names):
            raise DataSourceError(
                f"{path}: '{worst}_labels' has label {top[worst]}, out of range for {len(class_names)} class_names"
            )
        return class_names
    if top[worst] >= _MAX_DEFAULT_CLASSES:
        raise DataSourceError(
            f"{path}: '{worst}_labels' has label {top[worst]}, out of range (more than {_MAX_DEFAULT_CLASSES} "
            f"classes is implausible); pass class_names if this is intended"
        )
    return [str(i) for i in range(top[worst] + 1)]


# --------------------------------------------------------------------------- dispatcher

# One line per format.
READERS: dict[str, Callable[..., RawDataset]] = {
    "idx": read_idx,
    "cifar10": partial(read_torchvision, "cifar10"),
    "cifar100": partial(read_torchvision, "cifar100"),
    "svhn": partial(read_torchvision, "svhn"),
    "sklearn_digits": read_sklearn_digits,
    "image_folder": read_image_folder,
    "csv_manifest": read_csv_manifest,
    "medmnist_npz": read_medmnist_npz,
}


def read_dataset(spec: dict[str, Any]) -> RawDataset:
    """Dispatch on ``spec["format"]``, passing the other keys to the reader.

    Keys are checked against the reader's signature so a typo in the parameters file
    fails with the accepted keys listed rather than a bare TypeError.
    """
    spec = dict(spec)
    fmt = spec.pop("format", None)
    if fmt not in READERS:
        raise DataSourceError(f"Unknown dataset format {fmt!r}; known formats: {sorted(READERS)}")
    reader = READERS[fmt]
    try:
        inspect.signature(reader).bind(**spec)
    except TypeError as e:
        accepted = [p for p in inspect.signature(reader).parameters]
        raise ConfigError(f"dataset format {fmt!r}: bad keys {sorted(spec)} ({e}); accepted keys: {accepted}") from e
    return reader(**spec)


__all__ = [
    "DIGIT_CLASSES",
    "FASHION_MNIST_CLASSES",
    "IMAGE_EXTENSIONS",
    "READERS",
    "RawDataset",
    "fingerprint_arrays",
    "fingerprint_files",
    "read_csv_manifest",
    "read_dataset",
    "read_idx",
    "read_image_folder",
    "read_medmnist_npz",
    "read_sklearn_digits",
    "read_torchvision",
]
