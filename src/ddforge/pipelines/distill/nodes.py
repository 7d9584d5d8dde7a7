"""Adapts catalog inputs to `ddforge.methods.registry.distill` and back."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ddforge.core.sampling import IPC, resolve_ipc
from ddforge.core.seeding import replicate_seed
from ddforge.methods.base import DistillContext
from ddforge.methods.registry import distill, get_method, resolve_config
from ddforge.pipelines.provenance import check_buffer, network_spec, resolve_device, stable_hash
from ddforge.provenance_manifest import provenance

log = logging.getLogger(__name__)

RESUMABLE_CHANGES = {"iterations", "log_every", "checkpoint_every"}


def load_trajectories(expert_buffer: dict[str, Callable[[], dict]], needed_epochs: int) -> tuple[list, list, list[dict]]:
    """Loads each partition once, keeping only the epochs any window can reach (memory, MTT issue #4),
    plus each expert's final parameters (the trained expert DATM labels with, whatever the window)."""
    trajectories, finals, metas = [], [], []
    for name in sorted(expert_buffer):
        part = expert_buffer[name]()
        metas.append({**part["meta"], "name": name})
        trajectories.append(part["trajectory"][: needed_epochs + 1].clone())
        finals.append(part["trajectory"][-1].clone())
    return trajectories, finals, metas


def make_distill_node(method_name: str) -> Callable[..., dict]:
    method = get_method(method_name)

    def distill_node(
        real_train: dict, network: dict[str, Any], params: dict[str, Any], ipc: IPC, runtime: dict[str, Any],
        seed: int, replicate: int, trajectory_matching: dict[str, Any] | None = None,
        expert_buffer: dict | None = None,
    ) -> dict:
        seed = replicate_seed(seed, replicate)   # the experts keep the run seed; this distillation draws its own
        counts = resolve_ipc(ipc, real_train["class_names"])
        cfg = resolve_config(method_name, params, trajectory_matching, counts)
        spec = network_spec(network, real_train)
        trajectories: list = []
        finals: list = []
        buffer_key = None
        if expert_buffer is not None:
            needed = method.buffer_epochs_needed(cfg)
            trajectories, finals, metas = load_trajectories(expert_buffer, needed)
            check_buffer(metas, spec, real_train["data_fingerprint"], needed)
            buffer_key = [m["trajectory_sha256"] for m in metas]
        device = resolve_device(runtime["device"])
        ctx = DistillContext(
            images=real_train["images"].to(device), labels=real_train["labels"].to(device),
            class_names=real_train["class_names"], spec=spec, trajectories=trajectories, seed=seed, device=device,
            ipc=counts, final_parameters=finals,
        )
        config = cfg.as_dict()
        log.info("%s: config %s", method_name, config)
        # how often to log or checkpoint, and how long to run, do not change the result of an
        # iteration: a rerun with more iterations continues from the checkpoint
        keyed = {k: v for k, v in config.items() if k not in RESUMABLE_CHANGES}
        run_key = stable_hash(method_name, keyed, counts, spec.as_dict(), real_train["data_fingerprint"], buffer_key,
                              seed)
        checkpoint = Path(runtime["checkpoint_dir"]) / method_name / f"{run_key[:16]}.pt"
        started = time.perf_counter()
        synthetic = distill(method_name, cfg, ctx, run_key=run_key, checkpoint_path=checkpoint)
        synthetic["meta"] = {
            "params": params, "config": config, "seed": seed, "replicate": replicate,
            "data_fingerprint": real_train["data_fingerprint"],
            "run_key": run_key, "expert_buffer": buffer_key, "provenance": provenance(),
            # this node's wall time (a resumed run counts only what it did itself)
            "distill_seconds": round(time.perf_counter() - started, 1),
        }
        return synthetic

    distill_node.__name__ = f"distill_{method_name}"
    return distill_node


def loss_history(synthetic_set: dict) -> dict[str, list[dict[str, float]]]:
    """Per-iteration matching loss and learned lr, as MLflow metric histories."""
    method, history = synthetic_set["method"], synthetic_set["history"]
    seconds = synthetic_set.get("meta", {}).get("distill_seconds")
    return {
        f"{method}/matching_loss": [{"value": float(v), "step": i} for i, v in enumerate(history["loss"])],
        f"{method}/syn_lr": [{"value": float(v), "step": i} for i, v in enumerate(history["lr"])],
        f"{method}/nonfinite_steps": {"value": float(history.get("nonfinite_total", 0)), "step": 0},
        f"{method}/applied_updates": {"value": float(sum(history["applied"])), "step": 0},
        f"{method}/iterations": {"value": float(len(history["loss"])), "step": 0},
        **({f"{method}/distill_seconds": {"value": float(seconds), "step": 0}} if seconds is not None else {}),
    }
