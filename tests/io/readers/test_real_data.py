"""Readers on the real datasets under ../shared/data; skipped where they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ddforge.errors import DataSourceError
from ddforge.io.readers import read_dataset, read_image_folder, read_medmnist_npz

SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"  # <project>/../shared/data


def shared(rel: str) -> Path:
    path = SHARED_DATA / rel
    if not path.exists():
        pytest.skip(f"real data not available at {path}")
    return path


def test_real_covid_cxr_image_folder():
    root = shared("covid-cxr")
    ds = read_dataset({"format": "image_folder", "root": str(root), "image_size": 64})
    assert ds.class_names == ["COVID", "Normal"]
    assert torch.bincount(ds.train_labels).tolist() == [26, 18]
    assert tuple(ds.train_images.shape) == (44, 1, 64, 64) and tuple(ds.test_images.shape) == (0, 1, 64, 64)
    assert 20 < float(ds.train_images.float().mean()) < 235  # real radiographs, not blank
    with pytest.raises(DataSourceError, match=r"covid-cxr/COVID/.*\.png.*different sizes.*image_size"):
        read_image_folder(root)  # native sizes differ: 256 px on the longest side only


def test_real_pneumoniamnist_npz():
    ds = read_medmnist_npz(shared("pneumoniamnist/pneumoniamnist.npz"))
    assert tuple(ds.train_images.shape) == (3882 + 524, 1, 28, 28)
    assert tuple(ds.test_images.shape) == (624, 1, 28, 28)
    assert ds.class_names == ["0", "1"] and set(ds.test_labels.tolist()) == {0, 1}
