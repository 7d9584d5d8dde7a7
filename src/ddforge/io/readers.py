"""Readers that turn raw on-disk datasets into one common, validated in-memory form.

Every reader returns a :class:`RawDataset`: uint8 images ``[N, C, H, W]``, int64 labels,
class names, a sha256 fingerprint of the raw input bytes (so downstream artefacts can be
tied to the exact data they were made from) and a ``source`` string for provenance.

The module is deliberately free of Kedro: readers are plain functions, testable on tiny
fixture files, and the Kedro layer only calls :func:`read_dataset` with a parameters dict.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import inspect
import pickle
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddforge.errors import ConfigError, DataSourceError

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
    fingerprint: str  # sha256 hex digest of the raw input bytes
    source: str  # what was read, e.g. "idx:/usr/share/datasets/fashion-mnist"

    def __post_init__(self) -> None:
        if not self.class_names or not all(isinstance(c, str) for c in self.class_names):
            raise DataSourceError(f"{self.source}: class_names must be a non-empty list of str")
        for split in ("train", "test"):
            self._check_split(split, getattr(self, f"{split}_images"), getattr(self, f"{split}_labels"))
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

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict of tensors/str/list[str], loadable with ``torch.load(weights_only=True)``."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["class_names"] = list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RawDataset:
        """Inverse of :meth:`as_dict`; a stale or foreign dict fails with the missing keys named."""
        missing = [f.name for f in fields(cls) if f.name not in d]
        if missing:
            raise DataSourceError(f"RawDataset.from_dict: missing keys {missing}; re-run the data ingestion step")
        return cls(**{f.name: d[f.name] for f in fields(cls)})


# --------------------------------------------------------------------------- fingerprint


def fingerprint_files(base: Path, files: Iterable[Path]) -> str:
    """sha256 over (relative name, size, bytes) of each file in sorted name order.

    Names are included so that swapping two files changes the digest; the size prefix
    keeps name/content boundaries unambiguous. Files are streamed in 1 MiB chunks.
    """
    h = hashlib.sha256()
    named = sorted((Path(f).relative_to(base).as_posix(), Path(f)) for f in files)
    for rel, path in named:
        h.update(rel.encode() + b"\0" + struct.pack(">Q", path.stat().st_size))
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


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
    expected, found = int(np.prod(dims, dtype=np.int64)), len(raw) - header
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
    with open(path, "rb") as fh:
        is_gzip = fh.read(2) == b"\x1f\x8b"
    if not is_gzip:
        return path.read_bytes()
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


# --------------------------------------------------------------------------- dispatcher

# One line per format: new readers (image folders, CSV manifests, MedMNIST .npz) go here.
READERS: dict[str, Callable[..., RawDataset]] = {
    "idx": read_idx,
    "cifar10": partial(read_torchvision, "cifar10"),
    "cifar100": partial(read_torchvision, "cifar100"),
    "svhn": partial(read_torchvision, "svhn"),
    "sklearn_digits": read_sklearn_digits,
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
    "READERS",
    "RawDataset",
    "fingerprint_arrays",
    "fingerprint_files",
    "read_dataset",
    "read_idx",
    "read_sklearn_digits",
    "read_torchvision",
]
