"""Tests for the MedMNIST .npz reader: RGB and grayscale, label shapes, val into train."""

from __future__ import annotations

import numpy as np
import torch

from ddforge.io.readers import read_dataset, read_medmnist_npz
from tests.io.readers.helpers import write_npz


def test_medmnist_npz_rgb_with_n1_labels_val_appended_to_train(tmp_path):
    arrays = write_npz(tmp_path / "bloodmnist.npz", rgb=True)
    ds = read_medmnist_npz(tmp_path / "bloodmnist.npz")
    assert tuple(ds.train_images.shape) == (7, 3, 6, 6) and tuple(ds.test_images.shape) == (3, 3, 6, 6)
    want = np.concatenate([arrays["train_images"], arrays["val_images"]]).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(ds.train_images.numpy(), want)
    assert int(ds.train_images[1, 2, 4, 5]) == int(arrays["train_images"][1, 4, 5, 2])
    assert ds.train_labels.tolist() == [0, 1, 2, 0, 1, 0, 1] and ds.train_labels.dtype == torch.int64
    assert ds.test_labels.tolist() == arrays["test_labels"][:, 0].tolist()
    assert ds.class_names == ["0", "1", "2"]
    assert ds.source == f"medmnist_npz:{tmp_path / 'bloodmnist.npz'}"


def test_medmnist_npz_gray_flat_labels_and_class_names(tmp_path):
    write_npz(tmp_path / "x.npz", label_shape="N", counts=(4, 0, 2))
    ds = read_dataset({"format": "medmnist_npz", "path": str(tmp_path / "x.npz"), "class_names": ["a", "b", "c", "d"]})
    assert tuple(ds.train_images.shape) == (4, 1, 6, 6) and ds.class_names == ["a", "b", "c", "d"]
    assert read_medmnist_npz(tmp_path / "x.npz").fingerprint != ds.fingerprint
