"""Path checks, image decoding and the train-only result shared by the file-based readers.

Image folders, CSV manifests and MedMNIST all use these, so they live here once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddforge.errors import ConfigError, DataSourceError, DDForgeError
from ddforge.io.readers.base import RawDataset, _show_dir

log = logging.getLogger(__package__)  # "ddforge.io.readers": the logger name docs/bad_inputs.md gives

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


def _first_few(items: Sequence[str], n: int = 5) -> str:
    """Up to ``n`` items, then how many more: a message stays one readable line whatever the count."""
    shown = ", ".join(items[:n])
    return shown if len(items) <= n else f"{shown} and {len(items) - n} more"


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
