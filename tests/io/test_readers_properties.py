"""Property tests: whatever bytes are on disk, read_dataset fails only with a DDForgeError.

Damaged downloads, half-copied folders and hand-edited manifests must never surface as a raw
PIL/numpy/zipfile/OSError traceback halfway through a run; a successful read is also fine.
"""

from __future__ import annotations

import csv
import gzip
import io
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ddforge.errors import DDForgeError
from ddforge.io.readers import RawDataset, read_dataset

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read_cleanly(spec: dict[str, Any]) -> None:
    """The property itself: success, or a DDForgeError with a message; anything else propagates."""
    try:
        ds = read_dataset(spec)
    except DDForgeError as e:
        assert str(e).strip(), f"{type(e).__name__} with an empty message"
    else:
        assert isinstance(ds, RawDataset)


def in_tmp(write: Callable[[Path], dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as d:  # not tmp_path: hypothesis reruns the body per example
        read_cleanly(write(Path(d)))


# --------------------------------------------------------------------------- valid originals


def png_bytes(rgb: bool = False, size: int = 8) -> bytes:
    shape = (size, size, 3) if rgb else (size, size)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(size).integers(0, 256, shape, dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def npz_bytes(rgb: bool = False) -> bytes:
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 5, 5, 3) if rgb else (n, 5, 5), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).astype(np.uint8)[:, None]
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


IDX_ORIGINALS = {
    "train-images-idx3-ubyte": struct.pack(">IIII", 0x803, 3, 4, 4) + bytes(range(48)),
    "train-labels-idx1-ubyte": struct.pack(">II", 0x801, 3) + bytes([0, 1, 2]),
    "t10k-images-idx3-ubyte": struct.pack(">IIII", 0x803, 2, 4, 4) + bytes(range(32)),
    "t10k-labels-idx1-ubyte": struct.pack(">II", 0x801, 2) + bytes([1, 0]),
}
PNGS = [png_bytes(), png_bytes(rgb=True), png_bytes(size=5)]
NPZS = [npz_bytes(), npz_bytes(rgb=True)]


# --------------------------------------------------------------------------- mutations


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """Random bytes, a truncation, a few overwritten bytes, or junk appended to ``original``."""
    kind = draw(st.sampled_from(["random", "truncate", "corrupt", "append"]))
    if kind == "random":
        return draw(st.binary(max_size=256))
    if kind == "truncate":
        return original[: draw(st.integers(0, len(original) - 1))]
    if kind == "append":
        return original + draw(st.binary(min_size=1, max_size=64))
    raw = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw)


def any_mutation(originals: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.sampled_from(originals).flatmap(mutated)


# --------------------------------------------------------------------------- idx


@SETTINGS
@given(
    name=st.sampled_from(sorted(IDX_ORIGINALS)),
    gz=st.sampled_from(["none", "payload", "stream"]),
    data=st.data(),
)
def test_idx_damaged_file(name: str, gz: str, data: st.DataObject) -> None:
    """``payload``: damage then gzip (valid gzip, bad idx); ``stream``: damage the gzip bytes."""
    original = IDX_ORIGINALS[name]
    if gz == "stream":
        damaged = data.draw(mutated(gzip.compress(original, mtime=0)))
    else:
        damaged = data.draw(mutated(original))
        damaged = gzip.compress(damaged, mtime=0) if gz == "payload" else damaged

    def write(d: Path) -> dict[str, Any]:
        for other, raw in IDX_ORIGINALS.items():
            (d / other).write_bytes(raw)
        (d / name).unlink()
        (d / (name + (".gz" if gz != "none" else ""))).write_bytes(damaged)
        return {"format": "idx", "search_dirs": [str(d)]}

    in_tmp(write)


# --------------------------------------------------------------------------- image folders


@SETTINGS
@given(
    damaged=any_mutation(PNGS),
    suffix=st.sampled_from([".png", ".jpg", ".tif", ".bmp"]),
    image_size=st.sampled_from([None, 4, [3, 6]]),
    channels=st.sampled_from([None, 1, 3]),
    nested=st.booleans(),
)
def test_image_folder_damaged_image(damaged: bytes, suffix: str, image_size: Any, channels: Any, nested: bool) -> None:
    def write(d: Path) -> dict[str, Any]:
        for cls in ("COVID", "Viral Pneumonia"):
            folder = d / "root" / cls / ("images" if nested else "")
            folder.mkdir(parents=True)
            (folder / "ok.png").write_bytes(PNGS[0])
        (d / "root" / "COVID" / ("images" if nested else "") / f"bad{suffix}").write_bytes(damaged)
        return {"format": "image_folder", "root": str(d / "root"), "image_size": image_size, "channels": channels}

    in_tmp(write)


# --------------------------------------------------------------------------- CSV manifests

CELLS = ["a.png", "b.png", "./a.png", "../a.png", "missing.png", "sub", "", " ", "a.png\x00", "x", "y", "P1", "ü"]
HEADERS = [["path", "label"], ["path", "label", "patient_id"], ["label", "path"], ["file", "label"], ["path"], []]


@st.composite
def manifest_text(draw: st.DrawFn) -> bytes:
    """Either arbitrary bytes, or a plausible CSV built from awkward header and cell choices."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    header = draw(st.sampled_from(HEADERS))
    rows = draw(st.lists(st.lists(st.sampled_from(CELLS), min_size=0, max_size=4), max_size=5))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"])))


@SETTINGS
@given(
    text=manifest_text(),
    image=any_mutation(PNGS) | st.sampled_from(PNGS),
    class_names=st.sampled_from([None, ["x", "y"], ["y"]]),
    image_size=st.sampled_from([None, 4]),
)
def test_csv_manifest_any_content(text: bytes, image: bytes, class_names: Any, image_size: Any) -> None:
    def write(d: Path) -> dict[str, Any]:
        base = d / "ds"
        (base / "sub").mkdir(parents=True)
        (base / "a.png").write_bytes(PNGS[0])
        (base / "b.png").write_bytes(image)
        (d / "a.png").write_bytes(PNGS[1])  # reachable as ../a.png
        (base / "m.csv").write_bytes(text)
        spec = {"format": "csv_manifest", "path": str(base / "m.csv"), "image_size": image_size}
        return {**spec, "class_names": class_names}

    in_tmp(write)


# --------------------------------------------------------------------------- MedMNIST .npz


@SETTINGS
@given(damaged=any_mutation(NPZS), class_names=st.sampled_from([None, ["n", "p"], ["n"]]))
def test_npz_damaged_bytes(damaged: bytes, class_names: Any) -> None:
    def write(d: Path) -> dict[str, Any]:
        (d / "x.npz").write_bytes(damaged)
        return {"format": "medmnist_npz", "path": str(d / "x.npz"), "class_names": class_names}

    in_tmp(write)


KEYS = [f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")]
DTYPES = [np.uint8, np.int64, np.uint16, np.float32, np.bool_, np.int8]
SHAPES = [(), (0,), (3,), (3, 1), (3, 2), (2, 1), (3, 4, 4), (0, 4, 4), (3, 4, 4, 3), (3, 4, 4, 2), (3, 0, 4), (3, 4)]


@st.composite
def npz_arrays(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """Each key absent or an array of awkward dtype/shape; values include negatives and large labels."""
    out = {}
    for key in KEYS + draw(st.lists(st.sampled_from(["extra", "images"]), max_size=1)):
        if draw(st.integers(0, 9)) == 0:
            continue
        shape, dtype = draw(st.sampled_from(SHAPES)), draw(st.sampled_from(DTYPES))
        seed = draw(st.integers(-3, 300))
        out[key] = (np.arange(int(np.prod(shape))) * seed % 301 - 1).reshape(shape).astype(dtype)
    return out


@SETTINGS
@given(arrays=npz_arrays(), class_names=st.sampled_from([None, ["n", "p"]]), compressed=st.booleans())
def test_npz_any_arrays(arrays: dict[str, np.ndarray], class_names: Any, compressed: bool) -> None:
    def write(d: Path) -> dict[str, Any]:
        (np.savez_compressed if compressed else np.savez)(d / "x.npz", **arrays)
        return {"format": "medmnist_npz", "path": str(d / "x.npz"), "class_names": class_names}

    in_tmp(write)
