"""Tests for the CSV manifest reader: relative paths, patient groups, fingerprints."""

from __future__ import annotations

import numpy as np

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
