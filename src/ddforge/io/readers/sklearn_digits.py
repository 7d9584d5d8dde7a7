"""sklearn's bundled 8x8 digits: a tiny offline dataset for smoke tests and CI.

It comes from memory, not disk, so it is fingerprinted from arrays rather than files.
"""

from __future__ import annotations

import numpy as np
import torch

from ddforge.errors import ConfigError
from ddforge.io.readers.base import RawDataset, fingerprint_arrays


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
