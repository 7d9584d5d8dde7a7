"""MedMNIST ``.npz`` archives (``{train,val,test}_{images,labels}``), opened without pickle.

Holds the archive and array checks; only the path and class-name checks come from :mod:`.files`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ddforge.errors import DataSourceError
from ddforge.io.readers.base import RawDataset, _fingerprint_with_options, fingerprint_files
from ddforge.io.readers.files import _existing_file, _first_few, _parse_class_names

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
    """The class names, after checking every split's labels are class indices 0..K-1.

    A label past ``class_names`` would otherwise silently become an extra class.
    """
    labels = {s: y for s, (_, y) in split.items() if len(y)}
    if not labels:
        raise DataSourceError(f"{path}: all splits are empty")
    _check_npz_labels(path, labels, len(class_names) if class_names is not None else None)
    if class_names is not None:
        return class_names
    worst = max(labels, key=lambda s: int(labels[s].max()))
    top = int(labels[worst].max())
    if top >= _MAX_DEFAULT_CLASSES:
        raise DataSourceError(
            f"{path}: '{worst}_labels' has label {top}, out of range (more than {_MAX_DEFAULT_CLASSES} "
            f"classes is implausible); pass class_names if this is intended"
        )
    return [str(i) for i in range(top + 1)]


def _check_npz_labels(path: Path, labels: dict[str, np.ndarray], k: int | None) -> None:
    """Refuse labels outside 0..k-1 (only negative ones when ``k`` is None), each value with its image count."""
    found = []
    for s, y in labels.items():
        bad = (y < 0) | (y >= k) if k is not None else y < 0
        if bad.any():
            values, counts = np.unique(y[bad], return_counts=True)
            shown = [f"label {v} in {n} image{'s' if n > 1 else ''}" for v, n in zip(values.tolist(), counts.tolist())]
            found.append(f"'{s}_labels' has {_first_few(shown)}")
    if not found:
        return
    if k is None:
        rule, fix = "class indices 0, 1, 2, ... (no class_names given)", "fix those labels in the file"
    else:
        rule = f"0..{k - 1} (the {k} classes of class_names)"
        fix = "fix those labels in the file, or add their classes to class_names"
    raise DataSourceError(f"{path}: labels must be {rule}, but {'; '.join(found)}; {fix}")
