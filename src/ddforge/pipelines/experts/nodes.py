"""Trains N experts, one buffer partition each; finished experts are checkpointed so a killed run resumes."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

from ddforge.core.atomic import atomic_torch_save
from ddforge.core.experts import ExpertConfig, train_expert
from ddforge.core.progress import Progress
from ddforge.core.seeding import derive_seed, make_generator
from ddforge.pipelines.provenance import network_spec, resolve_device, stable_hash

log = logging.getLogger(__name__)


def tensor_sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


def train_experts(
    real_train: dict, real_val: dict, network: dict[str, Any], experts: dict[str, Any], runtime: dict[str, Any], seed: int
) -> dict[str, dict]:
    spec = network_spec(network, real_train)
    cfg = ExpertConfig(**{k: v for k, v in experts.items() if k not in {"num_experts"}})
    device = resolve_device(runtime["device"])
    run_key = stable_hash("experts", spec.as_dict(), experts, real_train["data_fingerprint"], seed)
    ckpt_dir = Path(runtime["checkpoint_dir"]) / "experts" / run_key[:16]
    n = int(experts["num_experts"])
    progress = Progress(log, "experts", n, every=1)
    partitions: dict[str, dict] = {}
    for i in range(n):
        name = f"expert_{i:03d}"
        ckpt = ckpt_dir / f"{name}.pt"
        if ckpt.exists():
            partitions[name] = torch.load(ckpt, weights_only=True)
            log.info("experts: %s already trained (checkpoint %s), skipping", name, ckpt)
            continue
        expert_seed = derive_seed(seed, "expert", i)
        result = train_expert(
            spec, real_train["images"], real_train["labels"], cfg,
            seed=expert_seed, generator=make_generator(seed, "expert-batches", i),
            eval_images=real_val["images"], eval_labels=real_val["labels"], device=device,
        )
        trajectory = result["trajectory"]
        partitions[name] = {
            "trajectory": trajectory,
            "meta": {
                "name": name, "network": spec.as_dict(), "epochs": cfg.epochs, "lr": cfg.lr,
                "batch_size": cfg.batch_size, "momentum": cfg.momentum, "weight_decay": cfg.weight_decay,
                "dsa": cfg.dsa, "optimizer": "sgd", "seed": expert_seed,
                "data_fingerprint": real_train["data_fingerprint"], "num_params": int(trajectory.shape[1]),
                "val_accuracy": result["eval_accuracy"], "trajectory_sha256": tensor_sha256(trajectory),
            },
        }
        atomic_torch_save(partitions[name], ckpt)
        progress.update(i + 1, val_acc=result["eval_accuracy"][-1] if result["eval_accuracy"] else float("nan"))
    return partitions


def summarise_experts(expert_buffer: dict[str, Any]) -> dict[str, float]:
    """Final validation accuracy of the experts (a sanity check logged to MLflow)."""
    accs = [load()["meta"]["val_accuracy"][-1] for load in expert_buffer.values()]
    return {"experts/val_accuracy_mean": {"value": sum(accs) / len(accs), "step": 0}}
