"""Image folders: ``<root>/<Class>/*.png`` or ``<root>/<Class>/images/*.png`` (COVID-19 Radiography).

Holds the folder-layout rules; decoding and path checks come from :mod:`.files`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ddforge.errors import ConfigError, DataSourceError
from ddforge.io.readers.base import RawDataset, _fingerprint_with_options, fingerprint_files
from ddforge.io.readers.files import (IMAGE_EXTENSIONS, _existing_dir, _is_hidden, _kind, _list_dir, _load_images,
    _parse_channels, _parse_class_names, _parse_image_size, _train_only, _warn_skipped)


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
