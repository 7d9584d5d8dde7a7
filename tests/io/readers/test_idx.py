"""Tests for the idx (MNIST family) reader on tiny idx files, gzipped and plain."""

from __future__ import annotations

import gzip

import pytest

from ddforge.errors import DataSourceError
from ddforge.io.readers import FASHION_MNIST_CLASSES, read_idx
from tests.io.readers.helpers import (
    assert_matches_idx,
    idx_images_bytes,
    idx_labels_bytes,
    make_idx_arrays,
    write_idx,
)


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
