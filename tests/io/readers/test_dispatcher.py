"""Tests for read_dataset: routing by format, unknown formats and misspelt keys."""

from __future__ import annotations

import pytest

from ddforge.errors import DataSourceError
from ddforge.io.readers import read_dataset
from tests.io.readers.helpers import (
    assert_matches_cifar,
    assert_matches_idx,
    make_idx_arrays,
    write_cifar10,
    write_idx,
)


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
