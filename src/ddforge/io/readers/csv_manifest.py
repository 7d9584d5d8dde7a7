"""CSV manifests listing images as ``path,label[,patient_id]``, paths relative to the manifest.

Holds the CSV parsing and row checks; decoding and path checks come from :mod:`.files`.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ddforge.errors import ConfigError, DataSourceError
from ddforge.io.readers.base import RawDataset, _fingerprint_named, _fingerprint_with_options
from ddforge.io.readers.files import (_existing_file, _first_few, _kind, _load_images, _parse_channels,
    _parse_class_names, _parse_image_size, _train_only, _warn_skipped, log)


@dataclass(frozen=True)
class _ManifestRow:
    row: int  # line number in the file; the header is row 1
    path: str
    label: str
    patient_id: str | None


_MANIFEST_HEADER = "`path,label` or `path,label,patient_id`"


def read_csv_manifest(
    path: str | Path,
    image_size: int | Sequence[int] | None = None,
    channels: int | None = None,
    class_names: Sequence[str] | None = None,
    allow_multilabel_patients: bool = False,
) -> RawDataset:
    """Read images listed in a CSV with header ``path,label[,patient_id]``.

    Paths are relative to the manifest's folder so a dataset folder can be moved as a whole.
    Labels are class names; the class list is the sorted unique labels unless ``class_names``
    is given. ``patient_id`` (optional) fills ``train_groups`` so later splits can keep each
    patient on one side. All images go to train; the test split is empty (preprocess carves one).

    A patient whose images carry different labels is an error: it is usually a labelling slip.
    Set ``allow_multilabel_patients: true`` (under ``source.csv_manifest`` in the parameters) when
    it is real, e.g. scans from visits before and after a diagnosis; it is then a warning.
    """
    manifest = _existing_file(path, "CSV manifest")
    size, chans = _parse_image_size(image_size), _parse_channels(channels)
    if not isinstance(allow_multilabel_patients, bool):
        raise ConfigError(f"allow_multilabel_patients must be true or false, got {allow_multilabel_patients!r}")
    rows, has_groups = _read_manifest(manifest)
    if has_groups:
        _check_patient_labels(manifest, rows, allow_multilabel_patients)
    names = _manifest_classes(manifest, rows, _parse_class_names(class_names))
    files = _manifest_files(manifest, rows)
    images = _load_images(files, size, chans)
    index = {name: i for i, name in enumerate(names)}
    named = [(manifest.name, manifest)] + [(f"rows/{r.path}", f) for r, f in zip(rows, files)]
    digest = _fingerprint_with_options(_fingerprint_named(named), image_size=size, channels=chans, classes=names)
    groups = [r.patient_id for r in rows] if has_groups else None
    return _train_only(images, [index[r.label] for r in rows], names, digest, f"csv_manifest:{manifest}", groups)


def _read_manifest(path: Path) -> tuple[list[_ManifestRow], bool]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        cols = _manifest_columns(path, header)
        rows = [r for rec in reader if (r := _manifest_row(path, reader.line_num, rec, header, cols))]
    except csv.Error as e:
        raise DataSourceError(f"{path}: malformed CSV near line {reader.line_num} ({e})") from e
    if not rows:
        raise DataSourceError(f"{path}: manifest has a header but no rows; list one image per row")
    return rows, "patient_id" in cols


def _read_text(path: Path) -> str:
    try:
        text = path.read_bytes().decode("utf-8-sig")  # -sig: spreadsheet exports often start with a BOM
    except UnicodeDecodeError as e:
        raise DataSourceError(f"{path}: not UTF-8 text ({e}); save the manifest as UTF-8 CSV") from e
    except OSError as e:
        raise DataSourceError(f"{path}: cannot read file ({e.strerror or e})") from e
    if not text.strip():
        raise DataSourceError(
            f"{path}: empty manifest: no header and no rows; the first line must be {_MANIFEST_HEADER}"
        )
    return text


def _manifest_columns(path: Path, header: list[str]) -> dict[str, int]:
    missing = [c for c in ("path", "label") if c not in header]
    if missing:
        hint = "" if set(header) & {"path", "label", "patient_id"} else " (is the header line missing?)"
        raise DataSourceError(
            f"{path}: manifest header {header} lacks column(s) {missing}{hint}; "
            f"the first line must be {_MANIFEST_HEADER}"
        )
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    if dupes:
        raise DataSourceError(f"{path}: manifest header repeats column(s) {dupes}")
    extra = [h for h in header if h not in ("path", "label", "patient_id")]
    _warn_skipped(path, extra, "unknown manifest columns")
    return {c: header.index(c) for c in ("path", "label", "patient_id") if c in header}


def _manifest_row(
    path: Path, line: int, rec: list[str], header: list[str], cols: dict[str, int]
) -> _ManifestRow | None:
    if not any(cell.strip() for cell in rec):
        return None  # blank line
    where = f"{path}, row {line}"
    if len(rec) != len(header):
        raise DataSourceError(f"{where}: expected {len(header)} fields ({','.join(header)}), found {len(rec)}")
    cells = {c: rec[i].strip() for c, i in cols.items()}
    empty = [c for c, v in cells.items() if not v]
    if empty:
        raise DataSourceError(f"{where}: empty {' and '.join(empty)} cell")
    return _ManifestRow(line, cells["path"], cells["label"], cells.get("patient_id"))


def _manifest_classes(path: Path, rows: list[_ManifestRow], class_names: list[str] | None) -> list[str]:
    labels = sorted({r.label for r in rows})
    if class_names is None:
        return labels
    for r in rows:
        if r.label not in class_names:
            raise DataSourceError(f"{path}, row {r.row}: unknown label {r.label!r}; class_names are {class_names}")
    unused = [c for c in class_names if c not in labels]
    if unused:
        raise DataSourceError(f"{path}: no row has label(s) {unused}, although class_names lists them")
    return class_names


def _check_patient_labels(path: Path, rows: list[_ManifestRow], allow: bool) -> None:
    """One label per patient: two are usually a labelling slip, which nothing downstream would notice."""
    by_patient: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        by_patient.setdefault(r.patient_id, {}).setdefault(r.label, []).append(str(r.row))
    mixed = [f"{pid!r} ({_rows_by_label(labels)})" for pid, labels in by_patient.items() if len(labels) > 1]
    if not mixed:
        return
    what = f"{path}: {len(mixed)} patient{'s have' if len(mixed) > 1 else ' has'} images with different labels: "
    if allow:
        log.warning("%s%s; kept, as allow_multilabel_patients is true", what, _first_few(mixed, 3))
        return
    raise DataSourceError(
        f"{what}{_first_few(mixed, 3)}; fix the labels, or set `allow_multilabel_patients: true` under "
        f"source.csv_manifest if one patient's images really differ (e.g. scans from different visits)"
    )


def _rows_by_label(labels: dict[str, list[str]]) -> str:
    """``'COVID' on rows 2, 5; 'Normal' on row 3``."""
    return "; ".join(f"{label!r} on row{'s' if len(n) > 1 else ''} {_first_few(n)}" for label, n in labels.items())


def _manifest_files(manifest: Path, rows: list[_ManifestRow]) -> list[Path]:
    """Resolve each row's path against the manifest's folder; each image may be listed once."""
    seen: dict[str, int] = {}
    files = []
    for r in rows:
        f = manifest.parent / r.path
        where = f"{manifest}, row {r.row}"
        key = os.path.normpath(f)
        if key in seen:
            raise DataSourceError(f"{where}: image {r.path!r} is listed twice (first on row {seen[key]})")
        seen[key] = r.row
        kind = _kind(f)
        if kind == "missing":
            raise DataSourceError(
                f"{where}: image {r.path!r} not found (looked for {f}; paths are relative to the manifest's folder)"
            )
        if kind != "file":
            what = "a directory" if kind == "dir" else "not a regular file"
            raise DataSourceError(f"{where}: image path {r.path!r} is {what}, expected an image file")
        files.append(f)
    return files
