"""CIFAR-10, CIFAR-100 and SVHN from torchvision's on-disk layout (pickled batches, .mat files).

Kept together: they share torchvision's download path and nothing else with the other readers.
"""

from __future__ import annotations

import importlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddforge.errors import DataSourceError
from ddforge.io.readers.base import RawDataset, _show_dir, fingerprint_files

DIGIT_CLASSES = [str(i) for i in range(10)]


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
