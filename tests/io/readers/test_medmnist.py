"""Tests for the MedMNIST .npz reader: RGB and grayscale, label shapes, val into train, label range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddforge.errors import DataSourceError
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


def test_labels_past_class_names_are_refused_with_each_value_and_its_image_count(tmp_path):
    path = tmp_path / "pneumoniamnist.npz"
    write_npz(path, train_labels=np.array([0, 7, 1, 7, 9], np.uint8), test_labels=np.array([1, 0, 1], np.uint8))
    with pytest.raises(DataSourceError) as e:
        read_medmnist_npz(path, class_names=["normal", "pneumonia"])
    msg = str(e.value)
    assert msg.startswith(f"{path}: labels must be 0..1 (the 2 classes of class_names)")
    assert "'train_labels' has label 7 in 2 images, label 9 in 1 image;" in msg
    assert "'val_labels'" not in msg and "'test_labels'" not in msg  # their labels are fine
    assert msg.endswith("fix those labels in the file, or add their classes to class_names")


def test_many_bad_label_values_are_shown_first_few_and_counted(tmp_path):
    write_npz(tmp_path / "x.npz", counts=(9, 2, 3), train_labels=np.arange(9, dtype=np.int64) + 1)
    with pytest.raises(DataSourceError, match=r"'train_labels' has label 2 in 1 image, label 3 in 1 image, "
                                              r"label 4 in 1 image, label 5 in 1 image, label 6 in 1 image "
                                              r"and 3 more; 'test_labels' has label 2 in 1 image;"):
        read_medmnist_npz(tmp_path / "x.npz", class_names=["a", "b"])


def test_without_class_names_labels_set_the_class_count_but_negative_ones_are_refused(tmp_path):
    write_npz(tmp_path / "ok.npz", train_labels=np.array([0, 7, 1, 7, 0], np.uint8))
    assert read_medmnist_npz(tmp_path / "ok.npz").class_names == [str(i) for i in range(8)]  # today's behaviour
    write_npz(tmp_path / "neg.npz", val_labels=np.array([-3, -3], np.int16), test_labels=np.array([0, -1, 2], np.int64))
    with pytest.raises(DataSourceError) as e:
        read_medmnist_npz(tmp_path / "neg.npz")
    assert str(e.value) == (
        f"{tmp_path / 'neg.npz'}: labels must be class indices 0, 1, 2, ... (no class_names given), but "
        "'val_labels' has label -3 in 2 images; 'test_labels' has label -1 in 1 image; fix those labels in the file"
    )
