"""Ingest nodes: reader options from the parameters, and test images that are copies of training images."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from ddforge.errors import DataSourceError
from ddforge.io.readers import RawDataset
from ddforge.pipelines.ingest.nodes import count_duplicates, load_raw_dataset, preprocess
from tests.io.readers.helpers import pixels, write_png

PRE = {"val_fraction": 0.2, "zca": False}
LOGGER = "ddforge.pipelines.ingest.nodes"


def _raw(train: np.ndarray, test: np.ndarray, source: str = "fixture") -> dict:
    return RawDataset(
        train_images=torch.from_numpy(train), train_labels=torch.arange(len(train)) % 2,
        test_images=torch.from_numpy(test), test_labels=torch.arange(len(test)) % 2,
        class_names=["COVID", "Normal"], fingerprint="0" * 64, source=source,
    ).as_dict()


def test_test_images_identical_to_training_images_are_counted_and_warned(caplog):
    train = pixels((20, 1, 8, 8), "train")
    test = np.stack([train[0], train[0], pixels((1, 8, 8), "new"), train[7]])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        real_train, real_val, real_test, _ = preprocess(_raw(train, test, "medmnist_npz:x.npz"), PRE, seed=0)
    assert real_test["duplicates_in_train"] == 3
    assert [r.getMessage() for r in caplog.records] == [(
        "medmnist_npz:x.npz: 3 of 4 test images are pixel-identical to training images (2 distinct); every test "
        "figure is inflated: deduplicate the source, or give patient ids in a CSV manifest"
    )]
    assert "duplicates_in_train" not in real_train and "duplicates_in_train" not in real_val


def test_a_carved_test_split_is_checked_against_the_rest_after_resizing(caplog):
    once = pixels((10, 1, 8, 8), "once")
    train = np.concatenate([once, once])  # a folder merged twice: every image has a copy
    empty = train[:0]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        *_, real_test, _ = preprocess(_raw(train, empty), {**PRE, "image_size": 4, "test_fraction": 0.3}, seed=0)
    n = len(real_test["labels"])
    assert tuple(real_test["images"].shape[2:]) == (4, 4)
    assert 0 < real_test["duplicates_in_train"] <= n
    assert f"{real_test['duplicates_in_train']} of {n} test images are pixel-identical" in caplog.text


def test_distinct_images_give_no_warning_and_a_zero_count(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        *_, real_test, _ = preprocess(_raw(pixels((20, 1, 8, 8), "a"), pixels((6, 1, 8, 8), "b")), PRE, seed=0)
    assert real_test["duplicates_in_train"] == 0 and not caplog.records
    assert count_duplicates(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.zeros(0, 1, 2, 2, dtype=torch.uint8)) \
        == (0, 0)


def test_allow_multilabel_patients_reaches_the_reader_from_the_parameters(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        write_png(tmp_path / name)
    (tmp_path / "m.csv").write_text("path,label,patient_id\na.png,COVID,P1\nb.png,Normal,P1\nc.png,Normal,P2\n")
    source = {"format": "csv_manifest", "csv_manifest": {"path": str(tmp_path / "m.csv")}}
    with pytest.raises(DataSourceError, match="'P1'"):
        load_raw_dataset(source, {})
    source["csv_manifest"]["allow_multilabel_patients"] = True
    assert load_raw_dataset(source, {})["train_groups"] == ["P1", "P1", "P2"]
