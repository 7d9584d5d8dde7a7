"""Tests for the sklearn digits reader: scaling, stratified split, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddforge.io.readers import read_sklearn_digits


def test_digits_shapes_values_and_stratification():
    from sklearn.datasets import load_digits

    ds = read_sklearn_digits(test_fraction=0.2, seed=0)
    assert len(ds.train_images) + len(ds.test_images) == 1797
    assert ds.train_images.shape[1:] == (1, 8, 8) and ds.train_images.dtype == torch.uint8
    assert ds.train_labels.dtype == torch.int64
    assert 0.18 < len(ds.test_images) / 1797 < 0.22
    all_images = torch.cat([ds.train_images, ds.test_images])
    assert int(all_images.min()) == 0 and int(all_images.max()) == 255
    allowed = {x * 255 // 16 for x in range(17)}
    assert set(all_images.unique().tolist()) <= allowed
    assert ds.class_names == [str(i) for i in range(10)]
    assert set(ds.train_labels.tolist()) == set(range(10)) == set(ds.test_labels.tolist())
    # every image is a scaled original with the original label
    d = load_digits()
    scaled = (d.images.astype(np.int64) * 255 // 16).astype(np.uint8)
    originals = {(img.tobytes(), int(t)) for img, t in zip(scaled, d.target)}
    for img, lab in zip(all_images[:, 0].numpy(), torch.cat([ds.train_labels, ds.test_labels]).tolist()):
        assert (img.tobytes(), lab) in originals
    counts = np.bincount(torch.cat([ds.train_labels, ds.test_labels]).numpy())
    np.testing.assert_array_equal(counts, np.bincount(d.target))


def test_digits_deterministic_per_seed():
    a, b = read_sklearn_digits(seed=3), read_sklearn_digits(seed=3)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    c = read_sklearn_digits(seed=4)
    assert not torch.equal(a.test_images, c.test_images)
    assert a.fingerprint == c.fingerprint  # same raw input, only the split differs
    assert "seed=3" in a.source


def test_digits_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction"):
        read_sklearn_digits(test_fraction=1.0)
