"""The bad-input catalogue: one test per case, and the table in docs/bad_inputs.md kept in step with it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

from kedro.io import DataCatalog, MemoryDataset

from ddforge.errors import ConfigError, DataSourceError, DDForgeError
from ddforge.hooks import ParameterCheckHook, PipelineShapeHook
from ddforge.io.readers import read_dataset
from ddforge.pipelines.ingest.nodes import preprocess
from tests.io.readers.helpers import make_idx_arrays, pixels, write_folder, write_idx, write_npz, write_png

# Each case builds a bad input under a fresh folder ``t`` and returns the read_dataset spec, or,
# for checks outside the readers (parameters, preprocess), a function that runs the real check.
# The same catalogue drives one test per case and the table in docs/bad_inputs.md, so the
# documented messages are the real ones. Regenerate the table after changing a message:
#   DDFORGE_UPDATE_DOCS=1 .venv/bin/python -m pytest tests/io/readers/test_bad_inputs.py -k docs


@dataclass(frozen=True)
class Bad:
    id: str
    fmt: str
    what: str  # the bad input, in words, for the docs table
    build: Callable[[Path], dict | Callable[[], Any]]
    words: tuple[str, ...]  # the offending file's name and a word for the problem, all in the message
    result: type | str = DataSourceError  # an exception type, or "warning"


def folder(t: Path, **kw: Any) -> dict:
    write_folder(t / "data", **kw)
    return {"format": "image_folder", "root": str(t / "data")}


def manifest(t: Path, text: str | bytes, images=("a.png", "b.png"), **kw: Any) -> dict:
    for name in images:
        write_png(t / name)
    m = t / "m.csv"
    m.write_bytes(text if isinstance(text, bytes) else text.encode())
    return {"format": "csv_manifest", "path": str(m), **kw}


def npz(t: Path, **override: Any) -> dict:
    write_npz(t / "x.npz", **override)
    return {"format": "medmnist_npz", "path": str(t / "x.npz")}


def then(spec: dict, *effects: Any) -> dict:
    return spec  # the effects already happened while the arguments were evaluated


def cut(path: Path, keep: float = 0.5) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def flip_idat(path: Path) -> Path:
    raw = bytearray(path.read_bytes())
    i = raw.index(b"IDAT") + 6
    raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def mkdirs(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def idx_spec(t: Path, mutate: Callable[[dict[str, Path]], Any]) -> dict:
    mutate(write_idx(t / "mnist", make_idx_arrays(), gz=False))
    return {"format": "idx", "search_dirs": [str(t / "mnist")]}


def hook_param(value: Any, name: str = "ipc") -> Callable[[], None]:
    """What `kedro run --params ipc=...` (or `replicate=...`) meets first: the hook, before any node runs."""
    catalog = DataCatalog({f"params:{name}": MemoryDataset(value)})
    return lambda: ParameterCheckHook().before_pipeline_run(catalog=catalog)


def evaluation_params(evaluation: dict, **own: dict) -> Callable[[], None]:
    """What `kedro run` meets first for the evaluation blocks (`evaluation`, `<method>.evaluation`): the hook."""
    catalog = DataCatalog({"params:evaluation": MemoryDataset({"full_data": {"lr": 0.01}, **evaluation}),
                           **{f"params:{name}.evaluation": MemoryDataset(block) for name, block in own.items()}})
    return lambda: ParameterCheckHook().before_pipeline_run(catalog=catalog)


def preparation_params(**methods: dict) -> Callable[[], None]:
    """What `kedro run` meets first for `<method>.preprocess`: the hook that shapes the pipelines."""
    params = {"preprocess": {"zca": True, "zca_eps": 0.1, "max_train_per_class": 500},
              **{name: {"preprocess": block} for name, block in methods.items()}}
    return lambda: PipelineShapeHook().after_context_created(SimpleNamespace(params=params))


def duplicated_test_images(t: Path) -> Callable[[], Any]:
    """A MedMNIST file whose test split holds one training image twice, through read + preprocess."""
    train = pixels((5, 6, 6), "train")
    spec = npz(t, train_images=train, test_images=np.stack([train[3], pixels((6, 6), "new"), train[3]]))
    return lambda: preprocess(read_dataset(spec).as_dict(), {"val_fraction": 0.2, "zca": False}, seed=0)


D = DataSourceError
GOOD_CSV = "path,label\na.png,x\nb.png,y\n"
BAD_INPUTS = [
    # image_folder: errors
    Bad("root-missing", "image_folder", "root folder does not exist",
        lambda t: {"format": "image_folder", "root": str(t / "nope")}, ("nope", "does not exist")),
    Bad("root-is-file", "image_folder", "root is a file, not a folder",
        lambda t: then({"format": "image_folder", "root": str(t / "x.png")}, write_png(t / "x.png")),
        ("x.png", "not a directory")),
    Bad("no-class-folders", "image_folder", "no class folders (images directly in the root)",
        lambda t: then({"format": "image_folder", "root": str(t / "flat")}, write_png(t / "flat" / "a.png")),
        ("flat", "no class folders")),
    Bad("empty-class", "image_folder", "empty class folder",
        lambda t: then(folder(t), mkdirs(t / "data" / "Empty")), ("Empty", "empty class folder")),
    Bad("empty-images-dir", "image_folder", "empty images/ folder (nested layout)",
        lambda t: then(folder(t), mkdirs(t / "data" / "Viral Pneumonia" / "images")),
        ("Viral Pneumonia/images", "empty class folder")),
    Bad("non-image-file", "image_folder", "non-image file in a class folder",
        lambda t: then(folder(t), (t / "data" / "COVID" / "notes.txt").write_text("x")),
        ("notes.txt", "not an image file")),
    Bad("zero-byte-png", "image_folder", "zero-byte image file",
        lambda t: then(folder(t), (t / "data" / "COVID" / "zero.png").write_bytes(b"")),
        ("zero.png", "empty file")),
    Bad("truncated-png", "image_folder", "truncated PNG",
        lambda t: then(folder(t), cut(t / "data" / "Normal" / "n1.png")), ("n1.png", "truncated")),
    Bad("corrupt-png", "image_folder", "PNG with corrupted pixel data",
        lambda t: then(folder(t, h=64, w=64), flip_idat(t / "data" / "Normal" / "n0.png")), ("n0.png", "corrupt")),
    Bad("text-as-png", "image_folder", "text file with a .png extension",
        lambda t: then(folder(t), (t / "data" / "COVID" / "fake.png").write_text("hello")),
        ("fake.png", "not a readable image")),
    Bad("mixed-sizes", "image_folder", "images of different sizes, no image_size",
        lambda t: then(folder(t), write_png(t / "data" / "Normal" / "n9.png", h=9)),
        ("n9.png", "c0.png", "different sizes", "image_size")),
    Bad("mixed-channels", "image_folder", "grayscale and RGB images mixed, no channels",
        lambda t: then(folder(t), write_png(t / "data" / "Normal" / "n9.png", rgb=True)),
        ("n9.png", "mixed channels", "channels")),
    Bad("float-tiff", "image_folder", "32-bit float TIFF",
        lambda t: then(folder(t), Image.fromarray(np.zeros((8, 8), np.float32)).save(t / "data" / "COVID" / "f.tif")),
        ("f.tif", "not supported")),
    Bad("subfolder", "image_folder", "unexpected sub-folder in a class folder",
        lambda t: then(folder(t), write_png(t / "data" / "COVID" / "extra" / "e.png")),
        ("extra", "unexpected sub-folder")),
    Bad("beside-images", "image_folder", "file beside images/ in the nested layout",
        lambda t: then(folder(t, nested=True), (t / "data" / "COVID" / "notes.txt").write_text("x")),
        ("notes.txt", "unexpected entry")),
    Bad("broken-link", "image_folder", "broken symbolic link in a class folder",
        lambda t: then(folder(t), os.symlink(t / "gone.png", t / "data" / "COVID" / "link.png")),
        ("link.png", "not a regular file")),
    Bad("class-name-missing", "image_folder", "class_names lists a class with no folder",
        lambda t: {**folder(t), "class_names": ["COVID", "Normal", "Viral Pneumonia"]},
        ("Viral Pneumonia", "no class folder")),
    Bad("bad-image-size", "image_folder", "image_size is not an int or [H, W]",
        lambda t: {**folder(t), "image_size": [0, 8]}, ("image_size", "positive"), ConfigError),
    Bad("bad-channels", "image_folder", "channels is not 1 or 3",
        lambda t: {**folder(t), "channels": 2}, ("channels", "got 2"), ConfigError),
    # image_folder: warnings
    Bad("hidden-files", "image_folder", "hidden/system files (.DS_Store, Thumbs.db)",
        lambda t: then(folder(t), (t / "data" / "COVID" / ".DS_Store").write_bytes(b"\0"),
                       (t / "data" / "COVID" / "Thumbs.db").write_bytes(b"\0")),
        (".DS_Store", "Thumbs.db", "skipping hidden"), "warning"),
    Bad("masks-folder", "image_folder", "masks/ beside images/ (COVID-19 Radiography layout)",
        lambda t: then(folder(t, nested=True), write_png(t / "data" / "COVID" / "masks" / "m.png")),
        ("masks/", "mask folders"), "warning"),
    Bad("top-level-file", "image_folder", "README.txt at the root, outside class folders",
        lambda t: then(folder(t), (t / "data" / "README.txt").write_text("about")),
        ("README.txt", "top level"), "warning"),
    Bad("unlisted-class", "image_folder", "class folder not in class_names",
        lambda t: {**folder(t, classes=("COVID", "Normal", "Lung_Opacity")), "class_names": ["COVID", "Normal"]},
        ("Lung_Opacity", "not in class_names"), "warning"),
    # csv_manifest
    Bad("csv-missing", "csv_manifest", "manifest does not exist",
        lambda t: {"format": "csv_manifest", "path": str(t / "none.csv")}, ("none.csv", "does not exist")),
    Bad("csv-is-dir", "csv_manifest", "manifest path is a directory",
        lambda t: then({"format": "csv_manifest", "path": str(t / "m.csv")}, mkdirs(t / "m.csv")),
        ("m.csv", "is a directory")),
    Bad("csv-zero-bytes", "csv_manifest", "zero-byte manifest", lambda t: manifest(t, ""), ("m.csv", "empty file")),
    Bad("csv-blank", "csv_manifest", "manifest with only blank lines",
        lambda t: manifest(t, "\n \n"), ("m.csv", "empty manifest")),
    Bad("csv-header-only", "csv_manifest", "header but no rows",
        lambda t: manifest(t, "path,label\n"), ("m.csv", "no rows")),
    Bad("csv-bad-header", "csv_manifest", "header lacks path/label columns",
        lambda t: manifest(t, "file,class\na.png,x\n"), ("m.csv", "lacks column", "label")),
    Bad("csv-no-header", "csv_manifest", "no header line (data on the first line)",
        lambda t: manifest(t, "a.png,x\nb.png,y\n"), ("m.csv", "lacks column", "header line missing")),
    Bad("csv-row-missing-file", "csv_manifest", "row's image file does not exist",
        lambda t: manifest(t, GOOD_CSV + "gone.png,x\n"), ("m.csv", "row 4", "gone.png", "not found")),
    Bad("csv-row-is-dir", "csv_manifest", "row's path is a directory",
        lambda t: then(manifest(t, GOOD_CSV + "sub,x\n"), mkdirs(t / "sub")), ("row 4", "'sub'", "a directory")),
    Bad("csv-unknown-label", "csv_manifest", "label not in class_names",
        lambda t: manifest(t, "path,label\na.png,x\nb.png,Covid\n", class_names=["x", "COVID"]),
        ("m.csv", "row 3", "'Covid'", "unknown label")),
    Bad("csv-unused-class", "csv_manifest", "class_names lists a label no row has",
        lambda t: manifest(t, GOOD_CSV, class_names=["x", "y", "z"]), ("m.csv", "'z'", "no row has label")),
    Bad("csv-field-count", "csv_manifest", "row with a missing field",
        lambda t: manifest(t, "path,label\na.png,x\nb.png\n"), ("m.csv", "row 3", "expected 2 fields")),
    Bad("csv-empty-cell", "csv_manifest", "row with an empty label cell",
        lambda t: manifest(t, "path,label\na.png,x\nb.png, \n"), ("m.csv", "row 3", "empty label")),
    Bad("csv-empty-patient", "csv_manifest", "patient_id column with an empty cell",
        lambda t: manifest(t, "path,label,patient_id\na.png,x,P1\nb.png,y,\n"), ("row 3", "empty patient_id")),
    Bad("csv-duplicate", "csv_manifest", "same image listed twice",
        lambda t: manifest(t, GOOD_CSV + "./a.png,y\n"), ("row 4", "a.png", "listed twice", "row 2")),
    Bad("csv-not-utf8", "csv_manifest", "manifest not UTF-8 (Latin-1 export)",
        lambda t: manifest(t, "path,label\na.png,Pneumonie\nb.png,Gesundheit\u00e9\n".encode("latin-1")),
        ("m.csv", "not UTF-8")),
    Bad("csv-bad-image", "csv_manifest", "listed image is truncated",
        lambda t: then(manifest(t, GOOD_CSV), cut(t / "b.png")), ("b.png", "truncated")),
    Bad("csv-patient-two-labels", "csv_manifest", "one patient's images with different labels",
        lambda t: manifest(t, "path,label,patient_id\na.png,x,P1\nb.png,y,P1\nc.png,x,P2\n",
                           images=("a.png", "b.png", "c.png")),
        ("m.csv", "'P1'", "different labels", "'x' on row 2", "'y' on row 3", "allow_multilabel_patients")),
    Bad("csv-extra-column", "csv_manifest", "extra columns (e.g. a split column)",
        lambda t: manifest(t, "path,label,split\na.png,x,train\nb.png,y,test\n"),
        ("m.csv", "split", "unknown manifest columns"), "warning"),
    Bad("csv-patient-two-labels-allowed", "csv_manifest",
        "one patient's images with different labels, `allow_multilabel_patients: true`",
        lambda t: manifest(t, "path,label,patient_id\na.png,x,P1\nb.png,y,P1\n", allow_multilabel_patients=True),
        ("m.csv", "'P1'", "different labels", "'x' on row 2", "'y' on row 3", "kept"), "warning"),
    # medmnist_npz
    Bad("npz-missing", "medmnist_npz", ".npz does not exist",
        lambda t: {"format": "medmnist_npz", "path": str(t / "none.npz")}, ("none.npz", "does not exist")),
    Bad("npz-is-dir", "medmnist_npz", ".npz path is a directory",
        lambda t: then({"format": "medmnist_npz", "path": str(t / "x.npz")}, mkdirs(t / "x.npz")),
        ("x.npz", "is a directory")),
    Bad("npz-zero-bytes", "medmnist_npz", "zero-byte .npz",
        lambda t: then({"format": "medmnist_npz", "path": str(t / "x.npz")}, (t / "x.npz").write_bytes(b"")),
        ("x.npz", "empty file")),
    Bad("npz-not-zip", "medmnist_npz", "not an .npz at all (text)",
        lambda t: then({"format": "medmnist_npz", "path": str(t / "x.npz")}, (t / "x.npz").write_text("hello")),
        ("x.npz", "not an .npz", "zip signature")),
    Bad("npz-truncated", "medmnist_npz", "truncated .npz (download cut short)",
        lambda t: then(npz(t), cut(t / "x.npz")), ("x.npz", "truncated")),
    Bad("npz-is-npy", "medmnist_npz", "a single .npy array saved as .npz",
        lambda t: then({"format": "medmnist_npz", "path": str(t / "x.npz")},
                       np.save(open(t / "x.npz", "wb"), np.zeros(3))),
        ("x.npz", "single .npy")),
    Bad("npz-missing-keys", "medmnist_npz", "missing keys (no val split)",
        lambda t: npz(t, val_images=None, val_labels=None), ("x.npz", "missing keys", "val_images")),
    Bad("npz-image-shape", "medmnist_npz", "images of wrong shape ([N, H*W])",
        lambda t: npz(t, train_images=np.zeros((5, 36), np.uint8)), ("x.npz", "'train_images'", "wrong shape")),
    Bad("npz-image-dtype", "medmnist_npz", "images of wrong dtype (float32)",
        lambda t: npz(t, test_images=np.zeros((3, 6, 6), np.float32)), ("x.npz", "'test_images'", "wrong dtype")),
    Bad("npz-label-count", "medmnist_npz", "label count differs from image count",
        lambda t: npz(t, val_labels=np.zeros((3, 1), np.uint8)), ("x.npz", "'val_labels'", "3 labels", "2 images")),
    Bad("npz-label-dtype", "medmnist_npz", "float labels",
        lambda t: npz(t, train_labels=np.zeros((5, 1), np.float64)), ("x.npz", "'train_labels'", "wrong dtype")),
    Bad("npz-multilabel", "medmnist_npz", "multi-label labels [N, 14] (ChestMNIST)",
        lambda t: npz(t, train_labels=np.zeros((5, 14), np.uint8)), ("x.npz", "'train_labels'", "multi-label")),
    Bad("npz-negative-label", "medmnist_npz", "negative label",
        lambda t: npz(t, test_labels=np.array([0, -1, 1], np.int64)),
        ("x.npz", "'test_labels'", "label -1 in 1 image", "0, 1, 2")),
    Bad("npz-out-of-range", "medmnist_npz", "labels past class_names (a label 7 in a 2-class file)",
        lambda t: {**npz(t, train_labels=np.array([0, 7, 1, 7, 0], np.uint8)), "class_names": ["normal", "pneumonia"]},
        ("x.npz", "'train_labels' has label 7 in 2 images", "'test_labels' has label 2 in 1 image",
         "2 classes", "fix those labels")),
    Bad("npz-split-geometry", "medmnist_npz", "splits with different image sizes",
        lambda t: npz(t, test_images=np.zeros((3, 7, 7), np.uint8)), ("x.npz", "different image shapes")),
    Bad("npz-object-array", "medmnist_npz", "pickled object array inside the .npz",
        lambda t: npz(t, test_labels=np.array([0, "a", None], dtype=object)), ("x.npz", "'test_labels'", "unreadable")),
    # idx (MNIST family)
    Bad("idx-truncated", "idx", "truncated idx file",
        lambda t: idx_spec(t, lambda p: cut(p["train_images"], 0.9)), ("train-images-idx3-ubyte", "truncated")),
    Bad("idx-magic", "idx", "wrong file under an idx name (bad magic number)",
        lambda t: idx_spec(t, lambda p: p["test_images"].write_bytes(p["test_labels"].read_bytes())),
        ("t10k-images-idx3-ubyte", "magic")),
    # dispatcher
    Bad("unknown-format", "any", "unknown format",
        lambda t: {"format": "dicom"}, ("'dicom'", "Unknown dataset format")),
    Bad("misspelt-key", "any", "misspelt parameter key",
        lambda t: {"format": "image_folder", "rootdir": str(t)}, ("rootdir", "accepted keys", "root"), ConfigError),
    # parameters, checked by a hook before any node runs (from parameters*.yml or `kedro run --params`)
    Bad("ipc-string", "ipc", "`--params ipc=abc`", lambda t: hook_param("abc"), ("got the string 'abc'",), ConfigError),
    Bad("ipc-float", "ipc", "`--params ipc=1.5`", lambda t: hook_param(1.5), ("got the float 1.5",), ConfigError),
    Bad("ipc-bool", "ipc", "`--params ipc=true`", lambda t: hook_param(True), ("got the boolean True",), ConfigError),
    Bad("ipc-zero-in-list", "ipc", "`ipc: [2, 0]` in parameters.yml", lambda t: hook_param([2, 0]),
        ("the list [2, 0]", "item 1 is the integer 0"), ConfigError),
    Bad("ipc-bad-count-by-class", "ipc", "`ipc: {COVID: two}` in parameters.yml", lambda t: hook_param({"COVID": "two"}),
        ("'COVID' is the string 'two'",), ConfigError),
    Bad("full-data-key", "evaluation", "misspelt key in `evaluation.full_data` (`--params evaluation.full_data.epoch=5`)",
        lambda t: evaluation_params({"full_data": {"lr": 0.01, "epoch": 5}}),
        ("evaluation.full_data", "unknown keys ['epoch']", "'epochs'"), ConfigError),
    Bad("method-evaluation-key", "evaluation", "unknown key in a method's `<method>.evaluation` block",
        lambda t: evaluation_params({}, datadam={"network": "resnet"}), ("datadam.evaluation", "['network']"),
        ConfigError),
    Bad("replicate-negative", "replicate", "`--params replicate=-1`", lambda t: hook_param(-1, "replicate"),
        ("replicate must be a non-negative integer", "got int -1"), ConfigError),
    Bad("replicate-string", "replicate", "`--params replicate=first`", lambda t: hook_param("first", "replicate"),
        ("replicate must be a non-negative integer", "got str 'first'"), ConfigError),
    Bad("method-preparation-trajectory", "preprocess", "a trajectory method on its own preparation "
        "(`--params mtt.preprocess.zca=false` while `preprocess.zca: true`)",
        lambda t: preparation_params(mtt={"zca": False}),
        ("mtt.preprocess sets zca=False", "experts' trajectories", "set `preprocess` instead"), ConfigError),
    Bad("method-preparation-key", "preprocess", "a split key in a method's `<method>.preprocess` block",
        lambda t: preparation_params(datadam={"max_train_per_class": 50}),
        ("datadam.preprocess: unknown keys ['max_train_per_class']", "zca_eps"), ConfigError),
    # preprocess (ingest), after resizing
    Bad("test-duplicates-train", "preprocess", "test images pixel-identical to training images",
        duplicated_test_images, ("x.npz", "2 of 3 test images", "(1 distinct)", "deduplicate"), "warning"),
]  # fmt: skip


def run_bad_input(case: Bad, t: Path) -> tuple[str, str]:
    """Run one case; returns (result, message) where result is an exception name or 'warning'."""
    t.mkdir(parents=True, exist_ok=True)
    spec = case.build(t)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("ddforge")  # the readers' and the ingest nodes' loggers both propagate here
    logger.addHandler(handler)
    try:
        spec() if callable(spec) else read_dataset(spec)
    except DDForgeError as e:
        return type(e).__name__, str(e)
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records]
    hits = [m for m in messages if all(w in m for w in case.words)]
    return "warning", (hits or messages or ["(read succeeded without a warning)"])[0]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_bad_input(case: Bad, tmp_path: Path):
    result, message = run_bad_input(case, tmp_path / "t")
    expected = case.result if isinstance(case.result, str) else case.result.__name__
    assert result == expected, message
    for word in case.words:
        assert word in message, f"{word!r} not in {message!r}"


def test_bad_input_catalogue_is_broad():
    assert len({c.id for c in BAD_INPUTS}) == len(BAD_INPUTS)
    errors = [c for c in BAD_INPUTS if c.result != "warning"]
    assert len(errors) >= 20 and len(BAD_INPUTS) - len(errors) >= 4


DOCS = Path(__file__).resolve().parents[3] / "docs" / "bad_inputs.md"
_BEGIN, _END = "<!-- BEGIN GENERATED TABLE -->", "<!-- END GENERATED TABLE -->"


def _cell(text: str) -> str:
    return "`` " + text.replace("|", "\\|").replace("\n", " ⏎ ") + " ``"


def bad_inputs_table(tmp_path: Path) -> str:
    rows = ["| # | Format | Bad input | Result | Message |", "|---|---|---|---|---|"]
    for i, case in enumerate(BAD_INPUTS, 1):
        t = tmp_path / case.id
        result, message = run_bad_input(case, t)
        message = message.replace(str(t), "<dir>")
        kind = "warning (logged, the run goes on)" if result == "warning" else f"error: `{result}`"
        rows.append(f"| {i} | `{case.fmt}` | {case.what} | {kind} | {_cell(message)} |")
    return "\n".join(rows)


def test_docs_bad_inputs_table_matches_real_messages(tmp_path):
    table = bad_inputs_table(tmp_path)
    text = DOCS.read_text(encoding="utf-8")
    start, end = text.index(_BEGIN) + len(_BEGIN), text.index(_END)
    if os.environ.get("DDFORGE_UPDATE_DOCS") == "1":
        DOCS.write_text(text[:start] + "\n" + table + "\n" + text[end:], encoding="utf-8")
        text = DOCS.read_text(encoding="utf-8")
        start, end = text.index(_BEGIN) + len(_BEGIN), text.index(_END)
    assert text[start:end].strip() == table, (
        "docs/bad_inputs.md is out of date; regenerate it with "
        "DDFORGE_UPDATE_DOCS=1 .venv/bin/python -m pytest tests/io/readers/test_bad_inputs.py -k docs"
    )
