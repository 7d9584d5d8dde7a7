"""Tests for the image folder reader: layouts, channels, resizing, class selection."""

from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image

from ddforge.io import readers
from ddforge.io.readers import read_dataset, read_image_folder
from tests.io.readers.helpers import write_folder, write_png


def chw(a: np.ndarray) -> np.ndarray:
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def reader_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == readers.__name__ and r.levelno == logging.WARNING]


# --------------------------------------------------------------------------- image_folder


def test_image_folder_flat_roundtrip_sorted_classes_with_space(tmp_path):
    exp = write_folder(tmp_path, classes=("Viral Pneumonia", "COVID", "Normal"), n=2)
    ds = read_image_folder(tmp_path)
    assert ds.class_names == ["COVID", "Normal", "Viral Pneumonia"]
    assert ds.train_labels.tolist() == [0, 0, 1, 1, 2, 2]
    want = np.stack([chw(a) for c in ds.class_names for a in exp[c]])
    np.testing.assert_array_equal(ds.train_images.numpy(), want)
    assert ds.train_images.dtype == torch.uint8 and tuple(ds.train_images.shape) == (6, 1, 8, 8)
    assert tuple(ds.test_images.shape) == (0, 1, 8, 8) and ds.test_labels.dtype == torch.int64
    assert ds.train_groups is None and ds.test_groups is None
    assert len(ds.fingerprint) == 64 and ds.source == f"image_folder:{tmp_path}"


def test_image_folder_nested_layout_ignores_masks_with_warning(tmp_path, caplog):
    exp = write_folder(tmp_path, nested=True)
    for cls in exp:  # masks of another size: reading them would fail the size check
        write_png(tmp_path / cls / "masks" / "m0.png", h=5, w=5)
    caplog.set_level(logging.WARNING)
    ds = read_dataset({"format": "image_folder", "root": str(tmp_path)})
    np.testing.assert_array_equal(ds.train_images[:, 0].numpy(), np.stack(exp["COVID"] + exp["Normal"]))
    assert sum("masks/" in m and "mask folders" in m for m in reader_warnings(caplog)) == 2


def test_image_folder_channels(tmp_path):
    gray = write_folder(tmp_path / "g", n=1)
    ds = read_image_folder(tmp_path / "g")
    assert ds.train_images.shape[1] == 1  # grayscale stays one channel
    as_rgb = read_image_folder(tmp_path / "g", channels=3)
    assert as_rgb.train_images.shape[1] == 3
    for c in range(3):
        np.testing.assert_array_equal(as_rgb.train_images[0, c].numpy(), gray["COVID"][0])
    rgb = write_folder(tmp_path / "c", n=1, rgb=True)
    ds = read_image_folder(tmp_path / "c")
    np.testing.assert_array_equal(ds.train_images[0].numpy(), chw(rgb["COVID"][0]))
    as_gray = read_image_folder(tmp_path / "c", channels=1)
    want = np.asarray(Image.fromarray(rgb["COVID"][0]).convert("L"))
    np.testing.assert_array_equal(as_gray.train_images[0, 0].numpy(), want)


def test_image_folder_resizes_once_with_pil_antialiasing(tmp_path):
    exp = write_folder(tmp_path, n=1, h=20, w=30)
    ds = read_image_folder(tmp_path, image_size=[6, 10])
    assert tuple(ds.train_images.shape) == (2, 1, 6, 10)
    want = np.asarray(Image.fromarray(exp["COVID"][0]).resize((10, 6), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(ds.train_images[0, 0].numpy(), want)
    assert tuple(read_image_folder(tmp_path, image_size=7).train_images.shape) == (2, 1, 7, 7)


def test_image_folder_mixed_sizes_are_fine_with_image_size(tmp_path):
    write_png(tmp_path / "A" / "a.png", h=10, w=12)
    write_png(tmp_path / "B" / "b.png", h=14, w=9, rgb=True)
    ds = read_image_folder(tmp_path, image_size=8, channels=3)
    assert tuple(ds.train_images.shape) == (2, 3, 8, 8)


def test_image_folder_class_names_pick_order_and_change_fingerprint(tmp_path, caplog):
    write_folder(tmp_path, classes=("COVID", "Normal", "Lung_Opacity"), n=1)
    default = read_image_folder(tmp_path)
    caplog.set_level(logging.WARNING)
    ds = read_image_folder(tmp_path, class_names=["Normal", "COVID"])
    assert ds.class_names == ["Normal", "COVID"] and ds.train_labels.tolist() == [0, 1]
    np.testing.assert_array_equal(ds.train_images[0].numpy(), default.train_images[2].numpy())
    assert any("Lung_Opacity" in m and "not in class_names" in m for m in reader_warnings(caplog))
    assert ds.fingerprint != default.fingerprint
    assert read_image_folder(tmp_path, image_size=4).fingerprint != default.fingerprint
    assert read_image_folder(tmp_path).fingerprint == default.fingerprint


def test_image_folder_16_bit_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    write_png(tmp_path / "A" / "x.png", array=a)
    assert Image.open(tmp_path / "A" / "x.png").mode.startswith("I")
    assert read_image_folder(tmp_path).train_images[0, 0, 0].tolist() == [0, 1, 255, 128]


def test_image_folder_extensions_and_hidden_files(tmp_path, caplog):
    write_folder(tmp_path, n=1)
    (tmp_path / "COVID" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tmp_path / "COVID" / "Thumbs.db").write_bytes(b"junk")
    write_png(tmp_path / "COVID" / "UPPER.PNG")
    caplog.set_level(logging.WARNING)
    ds = read_image_folder(tmp_path, extensions=["png"])
    assert len(ds.train_images) == 3
    assert any(".DS_Store" in m and "Thumbs.db" in m for m in reader_warnings(caplog))
