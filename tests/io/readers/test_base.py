"""Tests for ddforge.io.readers.base: RawDataset validation, its dict round trip, and the fingerprints."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ddforge.errors import DataSourceError
from ddforge.io import readers
from ddforge.io.readers import RawDataset, base, read_idx
from tests.io.readers.helpers import make_idx_arrays, write_idx


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
    monkeypatch.setattr(base, "_CHUNK", 7)  # force many chunks; digest must not depend on chunking
    f = tmp_path / "f.bin"
    f.write_bytes(bytes(range(256)) * 3)
    small_chunks = readers.fingerprint_files(tmp_path, [f])
    monkeypatch.setattr(base, "_CHUNK", 1 << 20)
    assert readers.fingerprint_files(tmp_path, [f]) == small_chunks
    # file names are part of the digest
    g = tmp_path / "g.bin"
    f.rename(g)
    assert readers.fingerprint_files(tmp_path, [g]) != small_chunks


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
