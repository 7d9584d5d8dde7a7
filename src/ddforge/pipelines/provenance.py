"""Shared helpers for the Kedro nodes: network spec from data, device choice, stable hashes."""
from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from ddforge.core.networks import NetworkSpec
from ddforge.errors import IncompatibleArtefactError


def stable_hash(*parts: Any) -> str:
    """sha256 of a JSON rendering (sorted keys), for run keys and data fingerprints."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def network_spec(network: dict[str, Any], split: dict[str, Any]) -> NetworkSpec:
    """The configured architecture, sized for the data (channels, classes, resolution)."""
    _, c, h, w = split["images"].shape
    return NetworkSpec(in_channels=c, num_classes=len(split["class_names"]), im_size=(h, w), **network)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def check_buffer(buffer_meta: list[dict], spec: NetworkSpec, data_fingerprint: str, needed_epochs: int) -> None:
    """Refuses a buffer trained on other data, for another network, or too short for the window."""
    if not buffer_meta:
        raise IncompatibleArtefactError("the expert buffer is empty: run `kedro run --pipelines experts` first")
    for meta in buffer_meta:
        name = meta.get("name", "?")
        if meta["network"] != spec.as_dict():
            raise IncompatibleArtefactError(
                f"expert buffer partition {name} was trained for network {meta['network']}, "
                f"but this run uses {spec.as_dict()}; retrain the experts (kedro run --pipelines experts)"
            )
        if meta["data_fingerprint"] != data_fingerprint:
            raise IncompatibleArtefactError(
                f"expert buffer partition {name} was trained on data {meta['data_fingerprint'][:12]}…, "
                f"but the current training split is {data_fingerprint[:12]}…; retrain the experts"
            )
        if meta["epochs"] < needed_epochs:
            raise IncompatibleArtefactError(
                f"expert buffer partition {name} has {meta['epochs']} epochs but max_start_epoch + "
                f"expert_epochs needs {needed_epochs}; train longer experts or shrink the window"
            )
