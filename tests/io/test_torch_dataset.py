"""Tests for ``TorchDataset``: round trips, versioning, atomic saves, corruption errors."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch
from kedro.io import DataCatalog
from kedro.io.core import DatasetError, Version
from kedro_datasets.partitions import PartitionedDataset

from ddforge.errors import DataSourceError
from ddforge.io.torch_dataset import TorchDataset, UnreadableArtefactError


def _sample() -> dict[str, Any]:
    return {
        "weights": {"w": torch.randn(3, 4), "b": torch.arange(4)},
        "trajectory": [torch.ones(2), torch.zeros(2, dtype=torch.int64)],
        "name": "convnet",
        "epochs": 3,
        "lr": 0.01,
        "ids": [1, 2, 3],
    }


def _assert_equal(actual: Any, expected: Any) -> None:
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, torch.Tensor)
        assert actual.dtype == expected.dtype
        assert actual.device.type == "cpu"
        assert torch.equal(actual, expected)
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys()
        for key in expected:
            _assert_equal(actual[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            _assert_equal(a, e)
    else:
        assert actual == expected and type(actual) is type(expected)


def _tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_round_trip_nested(tmp_path: Path) -> None:
    data = _sample()
    ds = TorchDataset(filepath=str(tmp_path / "sub" / "obj.pt"))
    ds.save(data)
    _assert_equal(ds.load(), data)


@pytest.mark.parametrize("value", ["text", 7, 2.5, [1, "a", 3.0]])
def test_round_trip_scalars(tmp_path: Path, value: Any) -> None:
    ds = TorchDataset(filepath=str(tmp_path / "obj.pt"))
    ds.save(value)
    _assert_equal(ds.load(), value)


def test_versioned_save_twice_loads_latest(tmp_path: Path) -> None:
    filepath = str(tmp_path / "buffer.pt")
    ds = TorchDataset(filepath=filepath, version=Version(None, None))
    assert not ds.exists()
    ds.save({"x": torch.tensor([1])})
    time.sleep(0.01)  # versions are millisecond timestamps; keep them distinct
    ds.save({"x": torch.tensor([2])})

    versions = ds.list_versions(full_path=False)
    assert len(versions) == 2
    assert len(list((tmp_path / "buffer.pt").glob("*/buffer.pt"))) == 2
    assert ds.exists()
    assert torch.equal(ds.load()["x"], torch.tensor([2]))

    # A fresh instance (as in a new kedro run) also picks the latest version ...
    fresh = TorchDataset(filepath=filepath, version=Version(None, None))
    assert torch.equal(fresh.load()["x"], torch.tensor([2]))
    # ... and an explicitly pinned version still loads the older one.
    oldest = sorted(versions)[0]
    pinned = TorchDataset(filepath=filepath, version=Version(oldest, None))
    assert torch.equal(pinned.load()["x"], torch.tensor([1]))
    assert _tmp_files(tmp_path) == []


def test_atomic_save_leaves_no_temp_files(tmp_path: Path) -> None:
    ds = TorchDataset(filepath=str(tmp_path / "obj.pt"))
    ds.save(_sample())
    ds.save(_sample())  # overwrite goes through os.replace too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj.pt"]


def test_crash_during_save_keeps_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "obj.pt"
    ds = TorchDataset(filepath=str(path))
    original = {"x": torch.arange(10)}
    ds.save(original)
    before = path.read_bytes()

    def crashing_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"PK\x03\x04partial")
        raise KeyboardInterrupt("simulated crash mid-write")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        ds.save({"x": torch.arange(99)})
    monkeypatch.undo()

    assert path.read_bytes() == before
    _assert_equal(ds.load(), original)
    assert _tmp_files(tmp_path) == []


def test_crash_during_first_save_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crashing_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", crashing_save)
    ds = TorchDataset(filepath=str(tmp_path / "obj.pt"))
    with pytest.raises(DatasetError):
        ds.save({"x": torch.arange(3)})
    assert list(tmp_path.iterdir()) == []
    assert not ds.exists()


def test_truncated_file_raises_data_source_error(tmp_path: Path) -> None:
    path = tmp_path / "obj.pt"
    ds = TorchDataset(filepath=str(path))
    ds.save(_sample())
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])

    with pytest.raises(DataSourceError) as excinfo:
        ds.load()
    message = str(excinfo.value)
    assert str(path) in message
    assert "corrupt" in message and "rerun" in message
    assert excinfo.value.__cause__ is not None
    # Also a DatasetError, so Kedro's wrapper passes it through unchanged.
    assert isinstance(excinfo.value, DatasetError)
    assert isinstance(excinfo.value, UnreadableArtefactError)


def test_garbage_file_raises_data_source_error(tmp_path: Path) -> None:
    path = tmp_path / "obj.pt"
    path.write_bytes(b"not a torch file at all")
    with pytest.raises(DataSourceError, match="obj.pt"):
        TorchDataset(filepath=str(path)).load()


def test_missing_file_raises_data_source_error(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="does not exist"):
        TorchDataset(filepath=str(tmp_path / "nope.pt")).load()


def test_exists(tmp_path: Path) -> None:
    ds = TorchDataset(filepath=str(tmp_path / "obj.pt"))
    assert not ds.exists()
    ds.save([1, 2])
    assert ds.exists()


def test_describe(tmp_path: Path) -> None:
    ds = TorchDataset(filepath=str(tmp_path / "obj.pt"), version=Version(None, None))
    desc = ds._describe()
    assert set(desc) == {"filepath", "protocol", "version"}
    assert desc["protocol"] == "file"
    assert str(desc["filepath"]).endswith("obj.pt")
    assert desc["version"] == Version(None, None)
    assert "TorchDataset" in repr(ds)


def test_release_invalidates_cache(tmp_path: Path) -> None:
    ds = TorchDataset(filepath=str(tmp_path / "obj.pt"), version=Version(None, None))
    ds.save({"a": torch.ones(1)})
    ds.release()
    assert ds.exists()


def test_partitioned_dataset_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "experts"
    pds = PartitionedDataset(
        path=str(root),
        dataset="ddforge.io.torch_dataset.TorchDataset",
        filename_suffix=".pt",
    )
    data = {
        "expert_000": {"params": [torch.randn(2, 2), torch.randn(2)], "seed": 0},
        "expert_001": {"params": [torch.randn(2, 2), torch.randn(2)], "seed": 1},
    }
    pds.save(data)
    assert sorted(p.name for p in root.iterdir()) == ["expert_000.pt", "expert_001.pt"]

    loaded = pds.load()
    assert sorted(loaded) == ["expert_000", "expert_001"]
    for key, loader in loaded.items():
        assert callable(loader)
        _assert_equal(loader(), data[key])
    assert "TorchDataset" in repr(pds)


def test_catalog_from_config_resolves_type(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "plain": {
                "type": "ddforge.io.torch_dataset.TorchDataset",
                "filepath": str(tmp_path / "plain.pt"),
            },
            "versioned": {
                "type": "ddforge.io.torch_dataset.TorchDataset",
                "filepath": str(tmp_path / "versioned.pt"),
                "versioned": True,
            },
            "experts": {
                "type": "partitions.PartitionedDataset",
                "path": str(tmp_path / "experts"),
                "dataset": {"type": "ddforge.io.torch_dataset.TorchDataset"},
                "filename_suffix": ".pt",
            },
        }
    )
    payload = {"t": torch.arange(5), "note": "hi"}
    catalog.save("plain", payload)
    catalog.save("versioned", payload)
    catalog.save("experts", {"expert_000": payload})

    assert isinstance(catalog["plain"], TorchDataset)
    _assert_equal(catalog.load("plain"), payload)
    _assert_equal(catalog.load("versioned"), payload)
    _assert_equal(catalog.load("experts")["expert_000"](), payload)
    assert catalog.exists("versioned")
    assert len(list((tmp_path / "versioned.pt").iterdir())) == 1
    assert _tmp_files(tmp_path) == []
