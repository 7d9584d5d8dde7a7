"""Tests for read_torchvision: CIFAR pickle batches and SVHN .mat files in torchvision's on-disk layout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ddforge.errors import DataSourceError
from ddforge.io.readers import read_torchvision
from tests.io.readers.helpers import CIFAR10_NAMES, assert_matches_cifar, cifar_batch, dump, write_cifar10


def write_cifar100(root: Path, seed: int = 0) -> dict[str, list]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    train, train_x = cifar_batch(rng, 6, "fine_labels", 100)
    test, test_x = cifar_batch(rng, 4, "fine_labels", 100)
    dump(folder / "train", train, protocol=5)
    dump(folder / "test", test)
    names = [f"fine{i}" for i in range(100)]
    dump(folder / "meta", {"fine_label_names": names, "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    return {"train_x": train_x, "train_y": train["fine_labels"], "test_x": test_x, "test_y": test["fine_labels"]}


def test_cifar10_reads_pickle_batches(tmp_path):
    exp = write_cifar10(tmp_path)
    ds = read_torchvision("cifar10", tmp_path)
    assert_matches_cifar(ds, exp)
    assert ds.class_names == CIFAR10_NAMES
    assert ds.source == f"cifar10:{tmp_path / 'cifar-10-batches-py'}"


def test_cifar100_reads_fine_labels(tmp_path):
    exp = write_cifar100(tmp_path)
    ds = read_torchvision("cifar100", str(tmp_path))
    assert_matches_cifar(ds, exp)
    assert ds.class_names == [f"fine{i}" for i in range(100)]


def test_cifar_fixture_matches_torchvision_when_md5_is_bypassed(tmp_path, monkeypatch):
    """Guards the claim that our parser reads exactly torchvision's on-disk format."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    write_cifar10(tmp_path / "c10")
    write_cifar100(tmp_path / "c100")
    for name, cls, root in [("cifar10", tv_cifar.CIFAR10, "c10"), ("cifar100", tv_cifar.CIFAR100, "c100")]:
        ours = read_torchvision(name, tmp_path / root)
        for train, images, labels in [(True, ours.train_images, ours.train_labels), (False, ours.test_images, ours.test_labels)]:
            tv = cls(tmp_path / root, train=train)
            np.testing.assert_array_equal(images.permute(0, 2, 3, 1).numpy(), tv.data)
            assert labels.tolist() == list(tv.targets)
        assert ours.class_names == tv.classes


def test_cifar_missing_says_where_and_how(tmp_path):
    with pytest.raises(DataSourceError) as err:
        read_torchvision("cifar10", tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and "cifar-10-batches-py" in msg
    assert "download: true" in msg


def test_cifar_download_only_when_asked_and_missing(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    def fake_cifar10(root, download=False, **_):
        calls.append((Path(root), download))
        write_cifar10(Path(root))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_cifar10)
    ds = read_torchvision("cifar10", tmp_path, download=True)
    assert calls == [(tmp_path, True)] and len(ds.train_images) == 10
    read_torchvision("cifar10", tmp_path, download=True)  # present now: no second download
    assert len(calls) == 1


def test_cifar_download_failure_is_a_data_source_error(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*_, **__):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", offline)
    with pytest.raises(DataSourceError, match=r"cifar100: download into .*failed.*network unreachable"):
        read_torchvision("cifar100", tmp_path, download=True)


def test_cifar_pickle_with_foreign_globals_is_refused(tmp_path):
    exp_root = tmp_path
    write_cifar10(exp_root)

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    dump(exp_root / "cifar-10-batches-py" / "test_batch", {"data": Evil(), "labels": []})
    with pytest.raises(DataSourceError, match=r"test_batch.*refusing to load"):
        read_torchvision("cifar10", exp_root)


def test_cifar_bad_batch_shape_names_file(tmp_path):
    write_cifar10(tmp_path)
    dump(tmp_path / "cifar-10-batches-py" / "data_batch_3", {"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]})
    with pytest.raises(DataSourceError, match=r"data_batch_3.*\[N, 3072\]"):
        read_torchvision("cifar10", tmp_path)


def test_read_torchvision_unknown_name(tmp_path):
    with pytest.raises(DataSourceError, match=r"unknown dataset 'mnist'.*cifar10.*svhn"):
        read_torchvision("mnist", tmp_path)


try:
    import scipy.io as sio

    HAVE_SCIPY = True
except ImportError:  # pragma: no cover - scipy ships with scikit-learn
    HAVE_SCIPY = False


def write_svhn(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for split, raw_labels in [("train", [9, 10, 10, 9]), ("test", [9, 10, 10])]:
        n = len(raw_labels)
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = np.array(raw_labels, dtype=np.uint8).reshape(n, 1)  # SVHN stores digit 0 as label 10
        sio.savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
        out[f"{split}_x"], out[f"{split}_y"] = x, y
    return out


@pytest.mark.skipif(not HAVE_SCIPY, reason="scipy not installed")
def test_svhn_reads_mat_files_and_maps_10_to_0(tmp_path):
    exp = write_svhn(tmp_path)
    ds = read_torchvision("svhn", tmp_path)
    assert tuple(ds.train_images.shape) == (4, 3, 32, 32) and ds.train_images.dtype == torch.uint8
    assert tuple(ds.test_images.shape) == (3, 3, 32, 32)
    # [H, W, C, N] on disk -> [N, C, H, W]
    np.testing.assert_array_equal(ds.train_images.numpy(), exp["train_x"].transpose(3, 2, 0, 1))
    assert int(ds.train_images[2, 1, 5, 7]) == int(exp["train_x"][5, 7, 1, 2])
    assert ds.train_labels.tolist() == [9, 0, 0, 9]  # raw y: 9, 10, 10, 9
    assert ds.test_labels.tolist() == [9, 0, 0]
    assert ds.class_names == [str(i) for i in range(10)]
    assert ds.source == f"svhn:{tmp_path}"


@pytest.mark.skipif(not HAVE_SCIPY, reason="scipy not installed")
def test_svhn_fixture_matches_torchvision_when_md5_is_bypassed(tmp_path, monkeypatch):
    import torchvision.datasets.svhn as tv_svhn

    monkeypatch.setattr(tv_svhn, "check_integrity", lambda *a, **k: True)
    write_svhn(tmp_path)
    ours = read_torchvision("svhn", tmp_path)
    tv = tv_svhn.SVHN(tmp_path, split="test")
    np.testing.assert_array_equal(ours.test_images.numpy(), tv.data)
    assert ours.test_labels.tolist() == tv.labels.tolist()


def test_svhn_without_scipy_gives_clear_error(tmp_path, monkeypatch):
    (tmp_path / "train_32x32.mat").write_bytes(b"x")
    (tmp_path / "test_32x32.mat").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # makes `import scipy.io` raise ImportError
    with pytest.raises(DataSourceError, match=r"needs scipy: pip install scipy"):
        read_torchvision("svhn", tmp_path)


def test_svhn_missing_files(tmp_path):
    with pytest.raises(DataSourceError, match=r"svhn.*train_32x32\.mat.*download: true"):
        read_torchvision("svhn", tmp_path)
