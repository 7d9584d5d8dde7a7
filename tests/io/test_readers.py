"""Tests for ddforge.io.readers: each reader reads a tiny file written in the real on-disk format."""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from PIL import Image

from ddforge.errors import ConfigError, DataSourceError, DDForgeError
from ddforge.io import readers
from ddforge.io.readers import (
    FASHION_MNIST_CLASSES,
    RawDataset,
    read_csv_manifest,
    read_dataset,
    read_idx,
    read_image_folder,
    read_medmnist_npz,
    read_sklearn_digits,
    read_torchvision,
)

# --------------------------------------------------------------------------- idx fixtures

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_images_bytes(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels_bytes(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


def make_idx_arrays(n_train: int = 5, n_test: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }


def write_idx(d: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, name in IDX_NAMES.items():
        a = arrays[role]
        payload = idx_images_bytes(a) if role.endswith("images") else idx_labels_bytes(a)
        path = d / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(payload, mtime=0) if gz else payload)
        paths[role] = path
    return paths


def assert_matches_idx(ds: RawDataset, arrays: dict[str, np.ndarray]) -> None:
    assert ds.train_images.dtype == torch.uint8 and ds.test_images.dtype == torch.uint8
    assert ds.train_labels.dtype == torch.int64 and ds.test_labels.dtype == torch.int64
    assert tuple(ds.train_images.shape) == (len(arrays["train_images"]), 1, 28, 28)
    assert tuple(ds.test_images.shape) == (len(arrays["test_images"]), 1, 28, 28)
    np.testing.assert_array_equal(ds.train_images[:, 0].numpy(), arrays["train_images"])
    np.testing.assert_array_equal(ds.test_images[:, 0].numpy(), arrays["test_images"])
    np.testing.assert_array_equal(ds.train_labels.numpy(), arrays["train_labels"])
    np.testing.assert_array_equal(ds.test_labels.numpy(), arrays["test_labels"])
    assert len(ds.fingerprint) == 64


# --------------------------------------------------------------------------- idx tests


def test_idx_gz_roundtrip_with_digit_names(tmp_path):
    arrays = make_idx_arrays()
    d = tmp_path / "mnist"
    write_idx(d, arrays, gz=True)
    ds = read_idx([d])
    assert_matches_idx(ds, arrays)
    assert ds.class_names == [str(i) for i in range(10)]
    assert ds.source == f"idx:{d}"


def test_idx_uncompressed_roundtrip(tmp_path):
    arrays = make_idx_arrays(n_train=7, n_test=2, seed=1)
    d = tmp_path / "plain"
    write_idx(d, arrays, gz=False)
    assert_matches_idx(read_idx([str(d)]), arrays)


def test_idx_fashion_in_path_gives_fashion_names(tmp_path):
    d = tmp_path / "fashion-mnist"
    write_idx(d, make_idx_arrays())
    assert read_idx([d]).class_names == FASHION_MNIST_CLASSES
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top" and FASHION_MNIST_CLASSES[-1] == "Ankle boot"


def test_idx_explicit_class_names(tmp_path):
    d = tmp_path / "x"
    write_idx(d, make_idx_arrays())
    names = [f"c{i}" for i in range(10)]
    assert read_idx([d], class_names=names).class_names == names


def test_idx_uses_first_complete_dir(tmp_path):
    incomplete, first, second = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    paths = write_idx(incomplete, make_idx_arrays(seed=5))
    paths["test_labels"].unlink()
    arrays_b = make_idx_arrays(seed=6)
    write_idx(first, arrays_b)
    write_idx(second, make_idx_arrays(seed=7))
    ds = read_idx([tmp_path / "missing", incomplete, first, second])
    assert_matches_idx(ds, arrays_b)
    assert ds.source == f"idx:{first}"


def test_idx_truncated_payload(tmp_path):
    d = tmp_path / "trunc"
    arrays = make_idx_arrays(n_train=4)
    paths = write_idx(d, arrays, gz=True)
    full = idx_images_bytes(arrays["train_images"])
    paths["train_images"].write_bytes(gzip.compress(full[:-100], mtime=0))
    with pytest.raises(DataSourceError) as err:
        read_idx([d])
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg
    assert f"truncated: expected {4 * 28 * 28} bytes, found {4 * 28 * 28 - 100}" in msg


def test_idx_truncated_uncompressed_and_cut_gzip_stream(tmp_path):
    d = tmp_path / "trunc_plain"
    paths = write_idx(d, make_idx_arrays(), gz=False)
    raw = paths["test_images"].read_bytes()
    paths["test_images"].write_bytes(raw[:-1])
    with pytest.raises(DataSourceError, match=r"t10k-images-idx3-ubyte.*truncated"):
        read_idx([d])

    d2 = tmp_path / "trunc_gz"
    paths = write_idx(d2, make_idx_arrays(), gz=True)
    gz = paths["train_labels"].read_bytes()
    paths["train_labels"].write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataSourceError, match=r"train-labels-idx1-ubyte\.gz.*truncated"):
        read_idx([d2])


def test_idx_bad_magic_and_count_mismatch(tmp_path):
    d = tmp_path / "magic"
    arrays = make_idx_arrays()
    paths = write_idx(d, arrays, gz=False)
    # a labels file where an images file belongs
    paths["train_images"].write_bytes(idx_labels_bytes(arrays["train_labels"]))
    with pytest.raises(DataSourceError, match=r"train-images-idx3-ubyte.*magic.*0x00000801"):
        read_idx([d])

    d2 = tmp_path / "count"
    arrays = make_idx_arrays()
    arrays["test_labels"] = arrays["test_labels"][:-1]
    write_idx(d2, arrays)
    with pytest.raises(DataSourceError, match=r"t10k-labels-idx1-ubyte\.gz.*2 labels.*3 images"):
        read_idx([d2])


def test_idx_trailing_bytes_rejected(tmp_path):
    d = tmp_path / "trailing"
    paths = write_idx(d, make_idx_arrays(), gz=False)
    paths["train_labels"].write_bytes(paths["train_labels"].read_bytes() + b"\0")
    with pytest.raises(DataSourceError, match=r"train-labels-idx1-ubyte.*trailing"):
        read_idx([d])


def test_idx_missing_lists_every_dir_and_how_to_get_it(tmp_path):
    partial = tmp_path / "partial"
    paths = write_idx(partial, make_idx_arrays())
    paths["train_images"].unlink()
    dirs = [tmp_path / "nope1", partial, tmp_path / "nope2"]
    with pytest.raises(DataSourceError) as err:
        read_idx(dirs)
    msg = str(err.value)
    for d in dirs:
        assert str(d) in msg
    assert "train_images" in msg  # says what the partial dir lacks
    assert "apt-get install -y dataset-fashion-mnist" in msg
    assert "data/01_raw/fashion-mnist/" in msg


def test_idx_labels_beyond_class_names_rejected(tmp_path):
    d = tmp_path / "fashion-bad"
    arrays = make_idx_arrays()
    arrays["train_labels"][0] = 12
    write_idx(d, arrays)
    with pytest.raises(DataSourceError, match="class names"):
        read_idx([d])


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_equal_for_identical_content_and_changes_with_one_byte(tmp_path):
    arrays = make_idx_arrays()
    a, b = tmp_path / "a", tmp_path / "b"
    write_idx(a, arrays, gz=False)
    paths_b = write_idx(b, arrays, gz=False)
    fp_a = read_idx([a]).fingerprint
    assert fp_a == read_idx([b]).fingerprint

    raw = bytearray(paths_b["test_images"].read_bytes())
    raw[-1] ^= 0x01  # one pixel, one bit
    paths_b["test_images"].write_bytes(bytes(raw))
    assert read_idx([b]).fingerprint != fp_a


def test_fingerprint_files_streams_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "_CHUNK", 7)  # force many chunks; digest must not depend on chunking
    f = tmp_path / "f.bin"
    f.write_bytes(bytes(range(256)) * 3)
    small_chunks = readers.fingerprint_files(tmp_path, [f])
    monkeypatch.setattr(readers, "_CHUNK", 1 << 20)
    assert readers.fingerprint_files(tmp_path, [f]) == small_chunks
    # file names are part of the digest
    g = tmp_path / "g.bin"
    f.rename(g)
    assert readers.fingerprint_files(tmp_path, [g]) != small_chunks


# --------------------------------------------------------------------------- CIFAR fixtures


def cifar_batch(rng: np.random.Generator, n: int, labels_key: str, n_classes: int) -> tuple[dict, np.ndarray]:
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(x) for x in rng.integers(0, n_classes, n)]
    batch = {"batch_label": "fixture", labels_key: labels, "data": data, "filenames": [f"{i}.png" for i in range(n)]}
    if labels_key == "fine_labels":
        batch["coarse_labels"] = [x // 5 for x in labels]
    return batch, data


def dump(path: Path, obj: object, protocol: int = 2) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, per_batch: int = 2, seed: int = 0) -> dict[str, list]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    train_x, train_y = [], []
    for i in range(1, 6):
        batch, data = cifar_batch(rng, per_batch, "labels", 10)
        dump(folder / f"data_batch_{i}", batch, protocol=2 if i % 2 else 4)  # both protocols
        train_x.append(data)
        train_y += batch["labels"]
    test, test_x = cifar_batch(rng, 3, "labels", 10)
    dump(folder / "test_batch", test)
    dump(folder / "batches.meta", {"label_names": CIFAR10_NAMES, "num_cases_per_batch": per_batch, "num_vis": 3072})
    return {"train_x": np.concatenate(train_x), "train_y": train_y, "test_x": test_x, "test_y": test["labels"]}


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


def assert_matches_cifar(ds: RawDataset, exp: dict) -> None:
    assert ds.train_images.dtype == torch.uint8 and ds.train_labels.dtype == torch.int64
    assert tuple(ds.train_images.shape) == (len(exp["train_x"]), 3, 32, 32)
    assert tuple(ds.test_images.shape) == (len(exp["test_x"]), 3, 32, 32)
    # documented layout: each row is 1024 red, then 1024 green, then 1024 blue values, row-major
    np.testing.assert_array_equal(ds.train_images.reshape(len(exp["train_x"]), -1).numpy(), exp["train_x"])
    np.testing.assert_array_equal(ds.test_images.reshape(len(exp["test_x"]), -1).numpy(), exp["test_x"])
    assert int(ds.train_images[0, 1, 0, 0]) == int(exp["train_x"][0, 1024])  # green channel, pixel (0, 0)
    assert int(ds.train_images[0, 2, 31, 31]) == int(exp["train_x"][0, 3071])
    assert ds.train_labels.tolist() == list(exp["train_y"])
    assert ds.test_labels.tolist() == list(exp["test_y"])


# --------------------------------------------------------------------------- CIFAR tests


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


# --------------------------------------------------------------------------- SVHN

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


# --------------------------------------------------------------------------- sklearn digits


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


# --------------------------------------------------------------------------- RawDataset / dispatcher


def test_as_dict_roundtrip_through_torch_save(tmp_path):
    d = tmp_path / "rt"
    write_idx(d, make_idx_arrays())
    ds = read_idx([d])
    path = tmp_path / "raw.pt"
    torch.save(ds.as_dict(), path)
    back = RawDataset.from_dict(torch.load(path, weights_only=True))
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(back, key), getattr(ds, key))
    assert (back.class_names, back.fingerprint, back.source) == (ds.class_names, ds.fingerprint, ds.source)
    with pytest.raises(DataSourceError, match="missing keys.*fingerprint"):
        RawDataset.from_dict({k: v for k, v in ds.as_dict().items() if k != "fingerprint"})


def test_dispatcher_routes_formats(tmp_path):
    d = tmp_path / "disp"
    arrays = make_idx_arrays()
    write_idx(d, arrays)
    assert_matches_idx(read_dataset({"format": "idx", "search_dirs": [str(d)]}), arrays)
    exp = write_cifar10(tmp_path / "c")
    assert_matches_cifar(read_dataset({"format": "cifar10", "root": str(tmp_path / "c"), "download": False}), exp)
    ds = read_dataset({"format": "sklearn_digits", "test_fraction": 0.5, "seed": 1})
    assert abs(len(ds.test_images) - 1797 / 2) < 10


def test_dispatcher_unknown_format_lists_known():
    with pytest.raises(DataSourceError) as err:
        read_dataset({"format": "imagenet"})
    msg = str(err.value)
    assert "'imagenet'" in msg
    for fmt in ("idx", "cifar10", "cifar100", "svhn", "sklearn_digits"):
        assert fmt in msg


def test_dispatcher_bad_key_lists_accepted_keys():
    with pytest.raises(ValueError, match=r"search_dir.*accepted keys.*search_dirs"):
        read_dataset({"format": "idx", "search_dir": "x"})


# --------------------------------------------------------------------------- image fixtures


def pixels(shape: tuple[int, ...], seed: int | str = 0, dtype=np.uint8) -> np.ndarray:
    seed = zlib.crc32(seed.encode()) if isinstance(seed, str) else seed
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def write_png(path: Path, h: int = 8, w: int = 8, rgb: bool = False, array: np.ndarray | None = None) -> np.ndarray:
    """Write a PNG (grayscale unless ``rgb``) and return its pixels; the seed is the file name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    a = array if array is not None else pixels((h, w, 3) if rgb else (h, w), path.name)
    Image.fromarray(a).save(path)
    return a


def write_folder(root: Path, classes=("COVID", "Normal"), n: int = 2, nested: bool = False, **png) -> dict:
    """``root/<cls>/<i>.png`` (or ``root/<cls>/images/<i>.png``); returns {cls: [arrays]}."""
    out = {}
    for cls in classes:
        d = root / cls / "images" if nested else root / cls
        out[cls] = [write_png(d / f"{cls[:1].lower()}{i}.png", **png) for i in range(n)]
    return out


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


# --------------------------------------------------------------------------- csv_manifest


def test_csv_manifest_relative_paths_and_patient_groups(tmp_path):
    base = tmp_path / "ds"
    a = write_png(base / "img" / "p1_a.png")
    b = write_png(base / "img" / "p2_b.png")
    c = write_png(base / "other" / "p1_c.png")
    (base / "labels.csv").write_text(
        "\ufeffpath,label,patient_id\nimg/p1_a.png,Normal,P1\n\nimg/p2_b.png,COVID,P2\nother/p1_c.png,Normal,P1\n"
    )
    ds = read_dataset({"format": "csv_manifest", "path": str(base / "labels.csv")})
    assert ds.class_names == ["COVID", "Normal"]
    assert ds.train_labels.tolist() == [1, 0, 1]  # row order is kept
    np.testing.assert_array_equal(ds.train_images[:, 0].numpy(), np.stack([a, b, c]))
    assert ds.train_groups == ["P1", "P2", "P1"] and ds.test_groups == []
    assert tuple(ds.test_images.shape) == (0, 1, 8, 8)
    assert ds.source == f"csv_manifest:{base / 'labels.csv'}"


def test_csv_manifest_without_groups_class_names_resize_and_fingerprint(tmp_path):
    write_png(tmp_path / "x.png", h=12, w=12)
    write_png(tmp_path / "y.png", h=10, w=16, rgb=True)
    m = tmp_path / "m.csv"
    m.write_text("Path , Label\nx.png,b\ny.png,a\n")
    ds = read_csv_manifest(m, image_size=4, channels=3, class_names=["b", "a"])
    assert ds.class_names == ["b", "a"] and ds.train_labels.tolist() == [0, 1]
    assert tuple(ds.train_images.shape) == (2, 3, 4, 4) and ds.train_groups is None
    fp = ds.fingerprint
    m.write_text("path,label\nx.png,a\ny.png,b\n")  # relabelled: a different dataset
    assert read_csv_manifest(m, image_size=4, channels=3, class_names=["b", "a"]).fingerprint != fp


# --------------------------------------------------------------------------- medmnist_npz


def write_npz(path: Path, rgb: bool = False, hw: int = 6, counts=(5, 2, 3), label_shape="N1", **override) -> dict:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts):
        shape = (n, hw, hw, 3) if rgb else (n, hw, hw)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        labels = (np.arange(n) % 3).astype(np.uint8)
        arrays[f"{split}_labels"] = labels[:, None] if label_shape == "N1" else labels
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays


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


# --------------------------------------------------------------------------- RawDataset changes


def _raw(n_train: int = 2, n_test: int = 0, **kw: Any) -> RawDataset:
    return RawDataset(
        train_images=torch.zeros(n_train, 1, 4, 4, dtype=torch.uint8),
        train_labels=torch.zeros(n_train, dtype=torch.int64),
        test_images=torch.zeros(n_test, 1, 4, 4, dtype=torch.uint8),
        test_labels=torch.zeros(n_test, dtype=torch.int64),
        class_names=["a"], fingerprint="f", source="unit", **kw,
    )  # fmt: skip


def test_rawdataset_empty_test_allowed_empty_train_not(tmp_path):
    assert len(_raw(n_test=0).test_images) == 0
    with pytest.raises(DataSourceError, match="train split has no images"):
        _raw(n_train=0, n_test=2)


def test_rawdataset_groups_validated_and_round_trip(tmp_path):
    with pytest.raises(DataSourceError, match="3 train_groups for 2 images"):
        _raw(train_groups=["p", "q", "r"])
    with pytest.raises(DataSourceError, match="list of str"):
        _raw(train_groups=[1, 2])
    ds = _raw(train_groups=("p", "q"), test_groups=[])
    assert ds.train_groups == ["p", "q"]
    torch.save(ds.as_dict(), tmp_path / "raw.pt")
    back = RawDataset.from_dict(torch.load(tmp_path / "raw.pt", weights_only=True))
    assert back.train_groups == ["p", "q"] and back.test_groups == []
    old = {k: v for k, v in ds.as_dict().items() if not k.endswith("_groups")}  # saved before groups existed
    assert RawDataset.from_dict(old).train_groups is None


# --------------------------------------------------------------------------- real data (../shared/data)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # <project>/../shared/data


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


# --------------------------------------------------------------------------- bad inputs (also docs/bad_inputs.md)
#
# Each case builds a bad input under a fresh folder ``t`` and returns the read_dataset spec.
# The same catalogue drives one test per case and the table in docs/bad_inputs.md, so the
# documented messages are the real ones. Regenerate the table after changing a message:
#   DDFORGE_UPDATE_DOCS=1 .venv/bin/python -m pytest tests/io/test_readers.py -k docs


@dataclass(frozen=True)
class Bad:
    id: str
    fmt: str
    what: str  # the bad input, in words, for the docs table
    build: Callable[[Path], dict]
    words: tuple[str, ...]  # the offending file's name and a word for the problem, all in the message
    result: type | str = DataSourceError  # an exception type, or "warning"


def folder(t: Path, **kw: Any) -> dict:
    write_folder(t / "data", **kw)
    return {"format": "image_folder", "root": str(t / "data")}


def manifest(t: Path, text: str | bytes, images=("a.png", "b.png"), **kw: Any) -> dict:
    for name in images:
        write_png(t / name)
    m = t / "m.csv"
    m.write_bytes(text if isinstance(text, bytes) else text.encode())
    return {"format": "csv_manifest", "path": str(m), **kw}


def npz(t: Path, **override: Any) -> dict:
    write_npz(t / "x.npz", **override)
    return {"format": "medmnist_npz", "path": str(t / "x.npz")}


def then(spec: dict, *effects: Any) -> dict:
    return spec  # the effects already happened while the arguments were evaluated


def cut(path: Path, keep: float = 0.5) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def flip_idat(path: Path) -> Path:
    raw = bytearray(path.read_bytes())
    i = raw.index(b"IDAT") + 6
    raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def mkdirs(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def idx_spec(t: Path, mutate: Callable[[dict[str, Path]], Any]) -> dict:
    mutate(write_idx(t / "mnist", make_idx_arrays(), gz=False))
    return {"format": "idx", "search_dirs": [str(t / "mnist")]}


D = DataSourceError
GOOD_CSV = "path,label\na.png,x\nb.png,y\n"
BAD_INPUTS = [
    # image_folder: errors
    Bad("root-missing", "image_folder", "root folder does not exist",
        lambda t: {"format": "image_folder", "root": str(t / "nope")}, ("nope", "does not exist")),
    Bad("root-is-file", "image_folder", "root is a file, not a folder",
        lambda t: then({"format": "image_folder", "root": str(t / "x.png")}, write_png(t / "x.png")),
        ("x.png", "not a directory")),
    Bad("no-class-folders", "image_folder", "no class folders (images directly in the root)",
        lambda t: then({"format": "image_folder", "root": str(t / "flat")}, write_png(t / "flat" / "a.png")),
        ("flat", "no class folders")),
    Bad("empty-class", "image_folder", "empty class folder",
        lambda t: then(folder(t), mkdirs(t / "data" / "Empty")), ("Empty", "empty class folder")),
    Bad("empty-images-dir", "image_folder", "empty images/ folder (nested layout)",
        lambda t: then(folder(t), mkdirs(t / "data" / "Viral Pneumonia" / "images")),
        ("Viral Pneumonia/images", "empty class folder")),
    Bad("non-image-file", "image_folder", "non-image file in a class folder",
        lambda t: then(folder(t), (t / "data" / "COVID" / "notes.txt").write_text("x")),
        ("notes.txt", "not an image file")),
    Bad("zero-byte-png", "image_folder", "zero-byte image file",
        lambda t: then(folder(t), (t / "data" / "COVID" / "zero.png").write_bytes(b"")),
        ("zero.png", "empty file")),
    Bad("truncated-png", "image_folder", "truncated PNG",
        lambda t: then(folder(t), cut(t / "data" / "Normal" / "n1.png")), ("n1.png", "truncated")),
    Bad("corrupt-png", "image_folder", "PNG with corrupted pixel data",
        lambda t: then(folder(t, h=64, w=64), flip_idat(t / "data" / "Normal" / "n0.png")), ("n0.png", "corrupt")),
    Bad("text-as-png", "image_folder", "text file with a .png extension",
        lambda t: then(folder(t), (t / "data" / "COVID" / "fake.png").write_text("hello")),
        ("fake.png", "not a readable image")),
    Bad("mixed-sizes", "image_folder", "images of different sizes, no image_size",
        lambda t: then(folder(t), write_png(t / "data" / "Normal" / "n9.png", h=9)),
        ("n9.png", "c0.png", "different sizes", "image_size")),
    Bad("mixed-channels", "image_folder", "grayscale and RGB images mixed, no channels",
        lambda t: then(folder(t), write_png(t / "data" / "Normal" / "n9.png", rgb=True)),
        ("n9.png", "mixed channels", "channels")),
    Bad("float-tiff", "image_folder", "32-bit float TIFF",
        lambda t: then(folder(t), Image.fromarray(np.zeros((8, 8), np.float32)).save(t / "data" / "COVID" / "f.tif")),
        ("f.tif", "not supported")),
    Bad("subfolder", "image_folder", "unexpected sub-folder in a class folder",
        lambda t: then(folder(t), write_png(t / "data" / "COVID" / "extra" / "e.png")),
        ("extra", "unexpected sub-folder")),
    Bad("beside-images", "image_folder", "file beside images/ in the nested layout",
        lambda t: then(folder(t, nested=True), (t / "data" / "COVID" / "notes.txt").write_text("x")),
        ("notes.txt", "unexpected entry")),
    Bad("broken-link", "image_folder", "broken symbolic link in a class folder",
        lambda t: then(folder(t), os.symlink(t / "gone.png", t / "data" / "COVID" / "link.png")),
        ("link.png", "not a regular file")),
    Bad("class-name-missing", "image_folder", "class_names lists a class with no folder",
        lambda t: {**folder(t), "class_names": ["COVID", "Normal", "Viral Pneumonia"]},
        ("Viral Pneumonia", "no class folder")),
    Bad("bad-image-size", "image_folder", "image_size is not an int or [H, W]",
        lambda t: {**folder(t), "image_size": [0, 8]}, ("image_size", "positive"), ConfigError),
    Bad("bad-channels", "image_folder", "channels is not 1 or 3",
        lambda t: {**folder(t), "channels": 2}, ("channels", "got 2"), ConfigError),
    # image_folder: warnings
    Bad("hidden-files", "image_folder", "hidden/system files (.DS_Store, Thumbs.db)",
        lambda t: then(folder(t), (t / "data" / "COVID" / ".DS_Store").write_bytes(b"\0"),
                       (t / "data" / "COVID" / "Thumbs.db").write_bytes(b"\0")),
        (".DS_Store", "Thumbs.db", "skipping hidden"), "warning"),
    Bad("masks-folder", "image_folder", "masks/ beside images/ (COVID-19 Radiography layout)",
        lambda t: then(folder(t, nested=True), write_png(t / "data" / "COVID" / "masks" / "m.png")),
        ("masks/", "mask folders"), "warning"),
    Bad("top-level-file", "image_folder", "README.txt at the root, outside class folders",
        lambda t: then(folder(t), (t / "data" / "README.txt").write_text("about")),
        ("README.txt", "top level"), "warning"),
    Bad("unlisted-class", "image_folder", "class folder not in class_names",
        lambda t: {**folder(t, classes=("COVID", "Normal", "Lung_Opacity")), "class_names": ["COVID", "Normal"]},
        ("Lung_Opacity", "not in class_names"), "warning"),
    # csv_manifest
    Bad("csv-missing", "csv_manifest", "manifest does not exist",
        lambda t: {"format": "csv_manifest", "path": str(t / "none.csv")}, ("none.csv", "does not exist")),
    Bad("csv-is-dir", "csv_manifest", "manifest path is a directory",
        lambda t: then({"format": "csv_manifest", "path": str(t / "m.csv")}, mkdirs(t / "m.csv")),
        ("m.csv", "is a directory")),
    Bad("csv-zero-bytes", "csv_manifest", "zero-byte manifest", lambda t: manifest(t, ""), ("m.csv", "empty file")),
    Bad("csv-blank", "csv_manifest", "manifest with only blank lines",
        lambda t: manifest(t, "\n \n"), ("m.csv", "empty manifest")),
    Bad("csv-header-only", "csv_manifest", "header but no rows",
        lambda t: manifest(t, "path,label\n"), ("m.csv", "no rows")),
    Bad("csv-bad-header", "csv_manifest", "header lacks path/label columns",
        lambda t: manifest(t, "file,class\na.png,x\n"), ("m.csv", "lacks column", "label")),
    Bad("csv-no-header", "csv_manifest", "no header line (data on the first line)",
        lambda t: manifest(t, "a.png,x\nb.png,y\n"), ("m.csv", "lacks column", "header line missing")),
    Bad("csv-row-missing-file", "csv_manifest", "row's image file does not exist",
        lambda t: manifest(t, GOOD_CSV + "gone.png,x\n"), ("m.csv", "row 4", "gone.png", "not found")),
    Bad("csv-row-is-dir", "csv_manifest", "row's path is a directory",
        lambda t: then(manifest(t, GOOD_CSV + "sub,x\n"), mkdirs(t / "sub")), ("row 4", "'sub'", "a directory")),
    Bad("csv-unknown-label", "csv_manifest", "label not in class_names",
        lambda t: manifest(t, "path,label\na.png,x\nb.png,Covid\n", class_names=["x", "COVID"]),
        ("m.csv", "row 3", "'Covid'", "unknown label")),
    Bad("csv-unused-class", "csv_manifest", "class_names lists a label no row has",
        lambda t: manifest(t, GOOD_CSV, class_names=["x", "y", "z"]), ("m.csv", "'z'", "no row has label")),
    Bad("csv-field-count", "csv_manifest", "row with a missing field",
        lambda t: manifest(t, "path,label\na.png,x\nb.png\n"), ("m.csv", "row 3", "expected 2 fields")),
    Bad("csv-empty-cell", "csv_manifest", "row with an empty label cell",
        lambda t: manifest(t, "path,label\na.png,x\nb.png, \n"), ("m.csv", "row 3", "empty label")),
    Bad("csv-empty-patient", "csv_manifest", "patient_id column with an empty cell",
        lambda t: manifest(t, "path,label,patient_id\na.png,x,P1\nb.png,y,\n"), ("row 3", "empty patient_id")),
    Bad("csv-duplicate", "csv_manifest", "same image listed twice",
        lambda t: manifest(t, GOOD_CSV + "./a.png,y\n"), ("row 4", "a.png", "listed twice", "row 2")),
    Bad("csv-not-utf8", "csv_manifest", "manifest not UTF-8 (Latin-1 export)",
        lambda t: manifest(t, "path,label\na.png,Pneumonie\nb.png,Gesundheit\u00e9\n".encode("latin-1")),
        ("m.csv", "not UTF-8")),
    Bad("csv-bad-image", "csv_manifest", "listed image is truncated",
        lambda t: then(manifest(t, GOOD_CSV), cut(t / "b.png")), ("b.png", "truncated")),
    Bad("csv-extra-column", "csv_manifest", "extra columns (e.g. a split column)",
        lambda t: manifest(t, "path,label,split\na.png,x,train\nb.png,y,test\n"),
        ("m.csv", "split", "unknown manifest columns"), "warning"),
    # medmnist_npz
    Bad("npz-missing", "medmnist_npz", ".npz does not exist",
        lambda t: {"format": "medmnist_npz", "path": str(t / "none.npz")}, ("none.npz", "does not exist")),
    Bad("npz-is-dir", "medmnist_npz", ".npz path is a directory",
        lambda t: then({"format": "medmnist_npz", "path": str(t / "x.npz")}, mkdirs(t / "x.npz")),
        ("x.npz", "is a directory")),
    Bad("npz-zero-bytes", "medmnist_npz", "zero-byte .npz",
        lambda t: then({"format": "medmnist_npz", "path": str(t / "x.npz")}, (t / "x.npz").write_bytes(b"")),
        ("x.npz", "empty file")),
    Bad("npz-not-zip", "medmnist_npz", "not an .npz at all (text)",
        lambda t: then({"format": "medmnist_npz", "path": str(t / "x.npz")}, (t / "x.npz").write_text("hello")),
        ("x.npz", "not an .npz", "zip signature")),
    Bad("npz-truncated", "medmnist_npz", "truncated .npz (download cut short)",
        lambda t: then(npz(t), cut(t / "x.npz")), ("x.npz", "truncated")),
    Bad("npz-is-npy", "medmnist_npz", "a single .npy array saved as .npz",
        lambda t: then({"format": "medmnist_npz", "path": str(t / "x.npz")},
                       np.save(open(t / "x.npz", "wb"), np.zeros(3))),
        ("x.npz", "single .npy")),
    Bad("npz-missing-keys", "medmnist_npz", "missing keys (no val split)",
        lambda t: npz(t, val_images=None, val_labels=None), ("x.npz", "missing keys", "val_images")),
    Bad("npz-image-shape", "medmnist_npz", "images of wrong shape ([N, H*W])",
        lambda t: npz(t, train_images=np.zeros((5, 36), np.uint8)), ("x.npz", "'train_images'", "wrong shape")),
    Bad("npz-image-dtype", "medmnist_npz", "images of wrong dtype (float32)",
        lambda t: npz(t, test_images=np.zeros((3, 6, 6), np.float32)), ("x.npz", "'test_images'", "wrong dtype")),
    Bad("npz-label-count", "medmnist_npz", "label count differs from image count",
        lambda t: npz(t, val_labels=np.zeros((3, 1), np.uint8)), ("x.npz", "'val_labels'", "3 labels", "2 images")),
    Bad("npz-label-dtype", "medmnist_npz", "float labels",
        lambda t: npz(t, train_labels=np.zeros((5, 1), np.float64)), ("x.npz", "'train_labels'", "wrong dtype")),
    Bad("npz-multilabel", "medmnist_npz", "multi-label labels [N, 14] (ChestMNIST)",
        lambda t: npz(t, train_labels=np.zeros((5, 14), np.uint8)), ("x.npz", "'train_labels'", "multi-label")),
    Bad("npz-negative-label", "medmnist_npz", "negative label",
        lambda t: npz(t, test_labels=np.array([0, -1, 1], np.int64)), ("x.npz", "'test_labels'", "negative")),
    Bad("npz-out-of-range", "medmnist_npz", "label out of range for class_names",
        lambda t: {**npz(t), "class_names": ["normal", "pneumonia"]}, ("x.npz", "label 2", "out of range")),
    Bad("npz-split-geometry", "medmnist_npz", "splits with different image sizes",
        lambda t: npz(t, test_images=np.zeros((3, 7, 7), np.uint8)), ("x.npz", "different image shapes")),
    Bad("npz-object-array", "medmnist_npz", "pickled object array inside the .npz",
        lambda t: npz(t, test_labels=np.array([0, "a", None], dtype=object)), ("x.npz", "'test_labels'", "unreadable")),
    # idx (MNIST family)
    Bad("idx-truncated", "idx", "truncated idx file",
        lambda t: idx_spec(t, lambda p: cut(p["train_images"], 0.9)), ("train-images-idx3-ubyte", "truncated")),
    Bad("idx-magic", "idx", "wrong file under an idx name (bad magic number)",
        lambda t: idx_spec(t, lambda p: p["test_images"].write_bytes(p["test_labels"].read_bytes())),
        ("t10k-images-idx3-ubyte", "magic")),
    # dispatcher
    Bad("unknown-format", "any", "unknown format",
        lambda t: {"format": "dicom"}, ("'dicom'", "Unknown dataset format")),
    Bad("misspelt-key", "any", "misspelt parameter key",
        lambda t: {"format": "image_folder", "rootdir": str(t)}, ("rootdir", "accepted keys", "root"), ConfigError),
]  # fmt: skip


def run_bad_input(case: Bad, t: Path) -> tuple[str, str]:
    """Run one case; returns (result, message) where result is an exception name or 'warning'."""
    t.mkdir(parents=True, exist_ok=True)
    spec = case.build(t)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger(readers.__name__)
    logger.addHandler(handler)
    try:
        read_dataset(spec)
    except DDForgeError as e:
        return type(e).__name__, str(e)
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records]
    hits = [m for m in messages if all(w in m for w in case.words)]
    return "warning", (hits or messages or ["(read succeeded without a warning)"])[0]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_bad_input(case: Bad, tmp_path: Path):
    result, message = run_bad_input(case, tmp_path / "t")
    expected = case.result if isinstance(case.result, str) else case.result.__name__
    assert result == expected, message
    for word in case.words:
        assert word in message, f"{word!r} not in {message!r}"


def test_bad_input_catalogue_is_broad():
    assert len({c.id for c in BAD_INPUTS}) == len(BAD_INPUTS)
    errors = [c for c in BAD_INPUTS if c.result != "warning"]
    assert len(errors) >= 20 and len(BAD_INPUTS) - len(errors) >= 4


DOCS = Path(__file__).resolve().parents[2] / "docs" / "bad_inputs.md"
_BEGIN, _END = "<!-- BEGIN GENERATED TABLE -->", "<!-- END GENERATED TABLE -->"


def _cell(text: str) -> str:
    return "`` " + text.replace("|", "\\|").replace("\n", " ⏎ ") + " ``"


def bad_inputs_table(tmp_path: Path) -> str:
    rows = ["| # | Format | Bad input | Result | Message |", "|---|---|---|---|---|"]
    for i, case in enumerate(BAD_INPUTS, 1):
        t = tmp_path / case.id
        result, message = run_bad_input(case, t)
        message = message.replace(str(t), "<dir>")
        kind = "warning (logged, read goes on)" if result == "warning" else f"error: `{result}`"
        rows.append(f"| {i} | `{case.fmt}` | {case.what} | {kind} | {_cell(message)} |")
    return "\n".join(rows)


def test_docs_bad_inputs_table_matches_real_messages(tmp_path):
    table = bad_inputs_table(tmp_path)
    text = DOCS.read_text(encoding="utf-8")
    start, end = text.index(_BEGIN) + len(_BEGIN), text.index(_END)
    if os.environ.get("DDFORGE_UPDATE_DOCS") == "1":
        DOCS.write_text(text[:start] + "\n" + table + "\n" + text[end:], encoding="utf-8")
        text = DOCS.read_text(encoding="utf-8")
        start, end = text.index(_BEGIN) + len(_BEGIN), text.index(_END)
    assert text[start:end].strip() == table, (
        "docs/bad_inputs.md is out of date; regenerate it with "
        "DDFORGE_UPDATE_DOCS=1 .venv/bin/python -m pytest tests/io/test_readers.py -k docs"
    )
