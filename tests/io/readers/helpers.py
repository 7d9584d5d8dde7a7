"""Writers of tiny fixture files in each real on-disk format, shared by the reader and end-to-end tests."""

from __future__ import annotations

import gzip
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ddforge.io.readers import RawDataset

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
