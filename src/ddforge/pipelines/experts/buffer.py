"""`ExpertBufferDataset`: the expert buffer, one `expert_XXX.pt` per expert in one folder, however many
shards trained it.

It is a `PartitionedDataset` with two differences, both so that shards can write side by side:
- `shard: "k/K"` makes an entry shard k's view of the folder: it loads and saves only the experts
  i with i % K == k.
- A save replaces the experts of its view: it writes the given partitions, then removes the view's
  other files (`overwrite: true` would delete the whole folder first, shards written beside included).
  A partition given as a loader of the very file it would be written to, which is what
  `gather_experts` passes on from the shards, is left as it is: nothing is copied.
With one shard the folder ends up exactly as `PartitionedDataset(overwrite=True)` left it.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from kedro.io.core import DatasetError
from kedro_datasets.partitions import PartitionedDataset

_INDEX = re.compile(r"expert_(\d+)$")


class StoredPartition:
    """A partition's loader that knows its file (PartitionedDataset hands out bare `dataset.load`)."""

    def __init__(self, load: Callable[[], Any], path: str) -> None:
        self._load, self.path = load, path

    def __call__(self) -> Any:
        return self._load()


class ExpertBufferDataset(PartitionedDataset):
    def __init__(self, *, path: str, dataset: Any, filename_suffix: str = ".pt", shard: str | None = None,
                 **kwargs: Any) -> None:
        kwargs.pop("overwrite", None)  # replaced by the view-wise replacement in `save`
        super().__init__(path=path, dataset=dataset, filename_suffix=filename_suffix, overwrite=False, **kwargs)
        self._shard: tuple[int, int] | None = None
        if shard is not None:
            k, _, n = str(shard).partition("/")
            if not (k.isdigit() and n.isdigit() and 0 <= int(k) < int(n)):
                raise DatasetError(f"ExpertBufferDataset: shard must be 'k/K' with 0 <= k < K, got {shard!r}")
            self._shard = (int(k), int(n))

    def _in_view(self, partition_id: str) -> bool:
        if self._shard is None:
            return True
        match = _INDEX.search(partition_id)
        return match is not None and int(match.group(1)) % self._shard[1] == self._shard[0]

    def load(self) -> dict[str, Callable[[], Any]]:
        self._invalidate_caches()
        paths = {self._path_to_partition(p): p for p in self._list_partitions()}
        if self._shard is None and not paths:
            raise DatasetError(f"No partitions found in '{self._path}'")
        partitions = {}
        for partition_id, path in sorted(paths.items()):
            if self._in_view(partition_id):
                kwargs = {**deepcopy(self._dataset_config), self._filepath_arg: self._join_protocol(path)}
                partitions[partition_id] = StoredPartition(self._dataset_type(**kwargs).load,
                                                           self._partition_to_path(partition_id))
        return partitions

    def save(self, data: dict[str, Any]) -> None:
        for partition_id, value in sorted(data.items()):
            if not self._in_view(partition_id):
                raise DatasetError(f"{partition_id} does not belong to expert shard {self._shard}")
            target = self._partition_to_path(partition_id)
            if isinstance(value, StoredPartition) and value.path == target:
                continue  # already where it belongs
            kwargs = {**deepcopy(self._dataset_config), self._filepath_arg: self._join_protocol(target)}
            self._dataset_type(**kwargs).save(value() if callable(value) else value)
        self._invalidate_caches()
        for path in self._list_partitions():
            partition_id = self._path_to_partition(path)
            if partition_id not in data and self._in_view(partition_id):
                self._filesystem.rm(path)
        self._invalidate_caches()

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "shard": None if self._shard is None else "/".join(map(str, self._shard))}
