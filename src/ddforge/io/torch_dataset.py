"""``TorchDataset``: a Kedro dataset for anything ``torch.save`` can write.

Expert trajectories, synthetic sets and learned transforms are dicts of tensors
plus a little metadata (str/int/float/lists). Pickle would store them too, but
``torch.load(..., weights_only=True)`` refuses to execute arbitrary code, so a
file dropped into ``data/`` cannot run anything when a pipeline loads it.

Saves to the local filesystem are atomic (temporary file + ``os.replace``):
expert buffers take hours to produce, and a run killed mid-save must never leave
a half-written ``.pt`` that the next run would happily pick up as "already done".
"""

from __future__ import annotations

import io
import os
from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any

import fsspec
import torch
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

from ddforge.core.atomic import atomic_torch_save
from ddforge.errors import DataSourceError

__all__ = ["TorchDataset", "UnreadableArtefactError"]

_LOCAL_PROTOCOLS = frozenset({"file", "local"})


class UnreadableArtefactError(DataSourceError, DatasetError):
    """A stored ``.pt`` file is missing, truncated, corrupt or not weights-only loadable.

    It is a ``DataSourceError`` (the project's error for bad input) and also a Kedro
    ``DatasetError``: Kedro's load wrapper re-raises ``DatasetError`` untouched but
    wraps every other exception in a generic ``DatasetError``, which would hide the
    actionable message (and the ``DataSourceError`` type) from callers.
    """


class TorchDataset(AbstractVersionedDataset[Any, Any]):
    """Loads/saves any ``torch.save``-able object over fsspec, optionally versioned.

    Loading always uses ``weights_only=True`` and ``map_location="cpu"`` so that
    artefacts written on a GPU machine load anywhere and no pickled code runs.

    Catalog example::

        expert_buffer:
          type: ddforge.io.torch_dataset.TorchDataset
          filepath: data/06_models/expert_buffer.pt
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset pointing at ``filepath``.

        Args:
            filepath: Path to the file, optionally prefixed with an fsspec protocol
                (``s3://``...). No prefix means the local filesystem.
            version: Kedro ``Version``; ``load=None`` loads the latest, ``save=None``
                generates a timestamp. Set via ``versioned: true`` in the catalog.
            credentials: Passed to ``fsspec.filesystem``.
            fs_args: Passed to ``fsspec.filesystem``; nested ``open_args_load`` /
                ``open_args_save`` are passed to ``fs.open`` (mode is always binary).
            metadata: Free-form, ignored by Kedro.
        """
        _fs_args = deepcopy(fs_args) or {}
        self._fs_open_args_load = {**_fs_args.pop("open_args_load", {}), "mode": "rb"}
        self._fs_open_args_save = {**_fs_args.pop("open_args_save", {}), "mode": "wb"}
        _credentials = deepcopy(credentials) or {}

        protocol, path = get_protocol_and_path(filepath, version)
        if protocol == "file":
            _fs_args.setdefault("auto_mkdir", True)

        self._protocol = protocol
        self._fs = fsspec.filesystem(self._protocol, **_credentials, **_fs_args)
        self.metadata = metadata

        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "version": self._version,
        }

    def load(self) -> Any:
        """Load the object; unreadable files raise ``UnreadableArtefactError``."""
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        try:
            with self._fs.open(load_path, **self._fs_open_args_load) as fs_file:
                return torch.load(fs_file, weights_only=True, map_location="cpu")
        except FileNotFoundError as exc:
            raise UnreadableArtefactError(
                f"Torch artefact '{load_path}' does not exist. "
                "Run the pipeline that produces it first."
            ) from exc
        except Exception as exc:  # torch raises RuntimeError/EOFError/UnpicklingError...
            raise UnreadableArtefactError(
                f"Torch artefact '{load_path}' is unreadable or corrupt "
                f"({type(exc).__name__}: {exc}). It may be a truncated or interrupted "
                "save, or contain objects that are not weights-only loadable. "
                "Delete it, or rerun the pipeline that produces it."
            ) from exc

    def save(self, data: Any) -> None:
        """Save ``data``; atomically on the local filesystem."""
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        if self._protocol in _LOCAL_PROTOCOLS:
            atomic_torch_save(data, save_path)
        else:
            # Remote object stores write objects whole on close, so serialise to
            # memory first: torch's zip writer then never needs a seekable remote file.
            buffer = io.BytesIO()
            torch.save(data, buffer)
            with self._fs.open(save_path, **self._fs_open_args_save) as fs_file:
                fs_file.write(buffer.getvalue())
        self._invalidate_cache()

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)

    def _release(self) -> None:
        super()._release()
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        """Invalidate fsspec's listing cache so new versions/files are seen."""
        filepath = get_filepath_str(self._filepath, self._protocol)
        self._fs.invalidate_cache(filepath)
