"""Readers that turn raw on-disk datasets into one common, validated in-memory form.

Every reader returns a :class:`RawDataset`: uint8 images ``[N, C, H, W]``, int64 labels,
class names, a sha256 fingerprint of the raw input bytes (so downstream artefacts can be
tied to the exact data they were made from) and a ``source`` string for provenance.

Sources without an official test split (image folders, CSV manifests) return everything as
train and an empty test split; the preprocess stage carves its own. Bad input of any kind
fails here, before training, with one :class:`DataSourceError` naming the file and the
problem (see ``docs/bad_inputs.md``); harmless oddities are logged as warnings.

The package is deliberately free of Kedro: readers are plain functions, testable on tiny
fixture files, and the Kedro layer only calls :func:`read_dataset` with a parameters dict.
There is one module per format family; shared code lives in :mod:`.base` (``RawDataset``,
fingerprints) and :mod:`.files` (path checks, image decoding). This module is the dispatcher.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

from ddforge.errors import ConfigError, DataSourceError
from ddforge.io.readers.base import RawDataset, fingerprint_arrays, fingerprint_files
from ddforge.io.readers.cifar_svhn import DIGIT_CLASSES, read_torchvision
from ddforge.io.readers.csv_manifest import read_csv_manifest
from ddforge.io.readers.files import IMAGE_EXTENSIONS
from ddforge.io.readers.idx import FASHION_MNIST_CLASSES, read_idx
from ddforge.io.readers.image_folder import read_image_folder
from ddforge.io.readers.medmnist import read_medmnist_npz
from ddforge.io.readers.sklearn_digits import read_sklearn_digits

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
