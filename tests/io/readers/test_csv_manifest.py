"""Tests for the CSV manifest reader: relative paths, patient groups, one label per patient, fingerprints."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from ddforge.errors import ConfigError, DataSourceError
from ddforge.io.readers import read_csv_manifest, read_dataset
from tests.io.readers.helpers import write_png


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


def _patients_manifest(tmp_path, n_mixed: int = 1) -> Path:
    """P0..P{n-1} each with one 'COVID' and one 'Normal' image; Q with two 'Normal' images."""
    lines = ["path,label,patient_id"]
    for i in range(n_mixed):
        lines += [f"p{i}a.png,COVID,P{i}", f"p{i}b.png,Normal,P{i}"]
    lines += ["qa.png,Normal,Q", "qb.png,Normal,Q"]
    for line in lines[1:]:
        write_png(tmp_path / line.split(",")[0])
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "labels.csv"


def test_a_patient_with_two_labels_is_an_error_naming_patient_labels_and_rows(tmp_path):
    m = _patients_manifest(tmp_path)
    with pytest.raises(DataSourceError) as e:
        read_csv_manifest(m)
    assert str(e.value) == (
        f"{m}: 1 patient has images with different labels: 'P0' ('COVID' on row 2; 'Normal' on row 3); fix the "
        "labels, or set `allow_multilabel_patients: true` under source.csv_manifest if one patient's images "
        "really differ (e.g. scans from different visits)"
    )


def test_many_patients_with_two_labels_are_shown_first_few_and_counted(tmp_path):
    with pytest.raises(DataSourceError, match=r"5 patients have images with different labels: 'P0' \(.*\), "
                                              r"'P1' \(.*\), 'P2' \('COVID' on row 6; 'Normal' on row 7\) and 2 more;"):
        read_csv_manifest(_patients_manifest(tmp_path, 5))


def test_allow_multilabel_patients_turns_the_error_into_a_warning(tmp_path, caplog):
    m = _patients_manifest(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ddforge.io.readers"):
        ds = read_dataset({"format": "csv_manifest", "path": str(m), "allow_multilabel_patients": True})
    assert ds.train_groups == ["P0", "P0", "Q", "Q"] and ds.train_labels.tolist() == [0, 1, 1, 1]
    assert [r.getMessage() for r in caplog.records] == [(
        f"{m}: 1 patient has images with different labels: 'P0' ('COVID' on row 2; 'Normal' on row 3); "
        "kept, as allow_multilabel_patients is true"
    )]
    with pytest.raises(ConfigError, match="allow_multilabel_patients must be true or false, got 'yes'"):
        read_csv_manifest(m, allow_multilabel_patients="yes")
