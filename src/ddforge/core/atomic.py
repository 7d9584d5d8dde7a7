"""Write-then-rename, so an interrupted run never leaves a half-written file that loads later."""
from __future__ import annotations

import os
import tempfile
from typing import Any

import torch


def atomic_torch_save(data: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a hidden ``.tmp`` sibling, fsync, then ``os.replace``.

    The temp file lives in the target directory so ``os.replace`` is a same-filesystem
    rename (atomic on POSIX and Windows). Its name starts with ``.`` and ends with
    ``.tmp`` so neither version globbing nor a suffix-filtered ``PartitionedDataset``
    ever mistakes a leftover from a killed process for a real artefact.
    """
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp_file:
            torch.save(data, tmp_file)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Persist the rename itself (POSIX); best effort, not supported everywhere."""
    if os.name != "posix":
        return
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
