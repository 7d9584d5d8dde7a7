"""Trains N experts, one buffer partition each; finished experts are checkpointed so a killed run resumes.

`experts.shards: K` splits the work into K nodes that can run at the same time (in separate processes
or machines): shard k trains the experts i with i % K == k. Every expert's seed and batch order come
from its index alone, so the buffer is the same whatever K; `gather_experts` hands the shards on as
one buffer."""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
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


# how the work is split or grouped does not change any expert, and neither does how many there are
# (expert i depends on i alone): not part of the run key, so checkpoints made with one sharding are
# reused by another, and a buffer grown from 4 to 20 experts trains only the 16 new ones
NOT_KEYED = {"vmap_group", "shards", "num_experts"}


def expert_name(i: int) -> str:
    return f"expert_{i:03d}"


def num_shards(experts: dict[str, Any]) -> int:
    shards = experts.get("shards", 1)
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"experts.shards must be a whole number >= 1, got {shards!r}")
    return shards


def shard_experts(num_experts: int, shard: int, shards: int) -> list[int]:
    """The experts shard k of K trains: i % K == k."""
    return [i for i in range(num_experts) if i % shards == shard]


def train_experts(
    real_train: dict, real_val: dict, network: dict[str, Any], experts: dict[str, Any], runtime: dict[str, Any],
    seed: int, shard: int = 0,
) -> dict[str, dict]:
    """Trains the experts of `shard` (of `experts.shards`; all of them with one shard)."""
    spec = network_spec(network, real_train)
    cfg = ExpertConfig(**{k: v for k, v in experts.items() if k not in {"num_experts", "shards"}})
    device = resolve_device(runtime["device"])
    run_key = stable_hash("experts", spec.as_dict(), {k: v for k, v in experts.items() if k not in NOT_KEYED},
                          real_train["data_fingerprint"], seed)
    ckpt_dir = Path(runtime["checkpoint_dir"]) / "experts" / run_key[:16]
    shards = num_shards(experts)
    ids = shard_experts(int(experts["num_experts"]), shard, shards)
    names = {i: expert_name(i) for i in ids}
    label = "experts" if shards == 1 else f"experts[shard {shard}/{shards}]"
    progress = Progress(log, label, len(ids), every=1)
    partitions: dict[str, dict] = {}
    for name in names.values():
        if (ckpt_dir / f"{name}.pt").exists():
            partitions[name] = torch.load(ckpt_dir / f"{name}.pt", weights_only=True)
            log.info("experts: %s already trained (checkpoint %s), skipping", name, ckpt_dir / f"{name}.pt")
    pending = [i for i, name in names.items() if name not in partitions]
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
    return {name: partitions[name] for name in names.values()}


def make_shard_node(shard: int) -> Callable[..., dict[str, dict]]:
    """`train_experts` for one shard, as a named node function."""

    def train_experts_shard(real_train: dict, real_val: dict, network: dict[str, Any], experts: dict[str, Any],
                            runtime: dict[str, Any], seed: int) -> dict[str, dict]:
        return train_experts(real_train, real_val, network, experts, runtime, seed, shard=shard)

    train_experts_shard.__name__ = f"train_experts_shard_{shard}"
    return train_experts_shard


def gather_experts(experts: dict[str, Any], *shards: dict[str, Callable[[], dict]]) -> dict[str, Callable[[], dict]]:
    """The shards' partitions as one buffer (loaders of the files the shards wrote; nothing is copied).
    Refuses a buffer with an expert missing or twice."""
    expected = [expert_name(i) for i in range(int(experts["num_experts"]))]
    gathered: dict[str, Callable[[], dict]] = {}
    for k, shard in enumerate(shards):
        own = {expert_name(i) for i in shard_experts(len(expected), k, len(shards))}
        if set(shard) != own:
            raise ValueError(f"expert shard {k} of {len(shards)} holds {sorted(shard)}, expected {sorted(own)}")
        gathered.update(shard)
    if sorted(gathered) != expected:
        raise ValueError(f"expert shards hold {sorted(gathered)}, expected {expected}")
    return {name: gathered[name] for name in expected}


def summarise_experts(expert_buffer: dict[str, Any]) -> dict[str, float]:
    """Final validation accuracy of the experts (a sanity check logged to MLflow)."""
    accs = [load()["meta"]["val_accuracy"][-1] for load in expert_buffer.values()]
    return {"experts/val_accuracy_mean": {"value": sum(accs) / len(accs), "step": 0}}
