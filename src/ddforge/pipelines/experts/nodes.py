"""Trains N experts, one buffer partition each; finished experts are checkpointed so a killed run resumes."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

from ddforge.core.atomic import atomic_torch_save
from ddforge.core.experts import ExpertConfig, calibration_sample, snapshot_logits, train_expert
from ddforge.core.progress import Progress
from ddforge.core.seeding import derive_seed, make_generator
from ddforge.core.vmap_experts import train_experts_vmapped
from ddforge.pipelines.provenance import network_spec, resolve_device, stable_hash

log = logging.getLogger(__name__)


def tensor_sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


def _val_accuracy(spec, trajectory: torch.Tensor, real_val: dict, calibration: torch.Tensor,
                  device: torch.device) -> list[float]:
    """Held-out accuracy after every epoch, from the snapshots (for experts trained side by side)."""
    return [(snapshot_logits(spec, theta, real_val["images"], device, calibration).argmax(1) == real_val["labels"])
            .float().mean().item() for theta in trajectory[1:]]


def train_experts(
    real_train: dict, real_val: dict, network: dict[str, Any], experts: dict[str, Any], runtime: dict[str, Any], seed: int
) -> dict[str, dict]:
    spec = network_spec(network, real_train)
    cfg = ExpertConfig(**{k: v for k, v in experts.items() if k not in {"num_experts"}})
    device = resolve_device(runtime["device"])
    run_key = stable_hash("experts", spec.as_dict(), {k: v for k, v in experts.items() if k != "vmap_group"},
                          real_train["data_fingerprint"], seed)
    ckpt_dir = Path(runtime["checkpoint_dir"]) / "experts" / run_key[:16]
    n = int(experts["num_experts"])
    names = [f"expert_{i:03d}" for i in range(n)]
    progress = Progress(log, "experts", n, every=1)
    partitions: dict[str, dict] = {}
    for name in names:
        if (ckpt_dir / f"{name}.pt").exists():
            partitions[name] = torch.load(ckpt_dir / f"{name}.pt", weights_only=True)
            log.info("experts: %s already trained (checkpoint %s), skipping", name, ckpt_dir / f"{name}.pt")
    pending = [i for i, name in enumerate(names) if name not in partitions]
    group = max(1, int(cfg.vmap_group))
    for g0 in range(0, len(pending), group):
        ids = pending[g0 : g0 + group]
        seeds = [derive_seed(seed, "expert", i) for i in ids]
        generators = [make_generator(seed, "expert-batches", i) for i in ids]
        if group == 1:
            result = train_expert(spec, real_train["images"], real_train["labels"], cfg, seed=seeds[0],
                                  generator=generators[0], eval_images=real_val["images"],
                                  eval_labels=real_val["labels"], device=device)
            trained = [(result["trajectory"], result["eval_accuracy"])]
        else:
            trajectories = train_experts_vmapped(spec, real_train["images"], real_train["labels"], cfg,
                                                 seeds=seeds, generators=generators, device=device)
            calibration = calibration_sample(real_train["images"], make_generator(seed, "bn-calibration"))
            trained = [(t, _val_accuracy(spec, t, real_val, calibration, device)) for t in trajectories]
        for i, expert_seed, (trajectory, val_accuracy) in zip(ids, seeds, trained):
            name = names[i]
            partitions[name] = {
                "trajectory": trajectory,
                "meta": {
                    "name": name, "network": spec.as_dict(), "epochs": cfg.epochs, "lr": cfg.lr,
                    "batch_size": cfg.batch_size, "momentum": cfg.momentum, "weight_decay": cfg.weight_decay,
                    "dsa": cfg.dsa, "optimizer": "sgd", "seed": expert_seed,
                    "data_fingerprint": real_train["data_fingerprint"], "num_params": int(trajectory.shape[1]),
                    "val_accuracy": val_accuracy, "trajectory_sha256": tensor_sha256(trajectory),
                },
            }
            atomic_torch_save(partitions[name], ckpt_dir / f"{name}.pt")
        progress.update(len(partitions), val_acc=trained[-1][1][-1] if trained[-1][1] else float("nan"))
    return {name: partitions[name] for name in names}


def summarise_experts(expert_buffer: dict[str, Any]) -> dict[str, float]:
    """Final validation accuracy of the experts (a sanity check logged to MLflow)."""
    accs = [load()["meta"]["val_accuracy"][-1] for load in expert_buffer.values()]
    return {"experts/val_accuracy_mean": {"value": sum(accs) / len(accs), "step": 0}}
