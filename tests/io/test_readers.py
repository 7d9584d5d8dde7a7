"""Tests for ddforge.io.readers: each reader reads a tiny file written in the real on-disk format."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ddforge.errors import DataSourceError
from ddforge.io import readers
from ddforge.io.readers import (
    FASHION_MNIST_CLASSES,
    RawDataset,
    read_dataset,
    read_idx,
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
