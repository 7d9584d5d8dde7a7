"""The papers' evaluation protocol: K fresh networks trained on a (synthetic) set, tested on real data."""
from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ddforge.core.augment import DSAConfig
from ddforge.core.metrics import SCALAR_METRICS, classification_metrics
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.core.progress import Progress
from ddforge.core.seeding import derive_seed, make_generator
from ddforge.core.training import predict_logits, train_classifier


@dataclass(frozen=True)
class EvalConfig:
    num_models: int = 3
    epochs: int = 300
    batch_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 5e-4
    dsa: bool = True
    compile: bool = False
    channels_last: bool = False
    bf16: bool = False           # bfloat16 autocast of the forward (tested within tolerance of float32)


log = logging.getLogger(__name__)

Stage = tuple[torch.Tensor, torch.Tensor, float]  # images, training targets, lr


def train_curriculum(net: nn.Module, stages: list[Stage], cfg: EvalConfig, generator: torch.Generator) -> nn.Module:
    """Trains one network on each stage in turn with the evaluation protocol (SeqMatch trains on
    S_1, then S_1∪S_2, ... each with its own learned lr); a single stage is the usual protocol."""
    for images, targets, lr in stages:
        train_classifier(
            net, images, targets,
            epochs=cfg.epochs, lr=lr, batch_size=cfg.batch_size, generator=generator,
            momentum=cfg.momentum, weight_decay=cfg.weight_decay,
            dsa_config=DSAConfig() if cfg.dsa else None,
            compile_model=cfg.compile, channels_last=cfg.channels_last, bf16=cfg.bf16,
        )
    return net


def evaluate_training_set(
    spec: NetworkSpec,
    stages: list[Stage],
    cfg: EvalConfig,
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    seed: int,
    device: str | torch.device = "cpu",
    inspect: Callable[[nn.Module, dict[str, torch.Tensor]], dict] | None = None,
    label: str = "evaluation",
) -> dict:
    """Trains `cfg.num_models` fresh networks on `stages` and scores each split.

    Returns, per split, the mean and std of accuracy and balanced accuracy over models, and each
    model's figures. Network init and batch order come from `seed`, so results are reproducible.
    `inspect`, if given, is called on every trained network with its logits per split; its results
    come back under "inspections" (the final checkpoint's audit: test probabilities, membership).
    Each trained network is logged with an ETA (a full-data evaluation takes many minutes on a CPU).
    """
    per_split: dict[str, list[dict]] = {name: [] for name in splits}
    inspections = []
    progress = Progress(log, f"{label}: networks", cfg.num_models, every=1)
    for k in range(cfg.num_models):
        net = build_network(spec, derive_seed(seed, "eval-net", k), device)
        train_curriculum(net, stages, cfg, make_generator(seed, "eval-batches", k))
        logits = {name: predict_logits(net, x) for name, (x, _) in splits.items()}
        for name, (_, y) in splits.items():
            per_split[name].append(classification_metrics(logits[name], y, spec.num_classes))
        if inspect is not None:
            inspections.append(inspect(net, logits))
        last = next(iter(splits))
        progress.update(k + 1, **{f"{last}_acc": per_split[last][-1]["accuracy"]})
    out: dict = {name: summarise(models) for name, models in per_split.items()}
    return {**out, "inspections": inspections} if inspect is not None else out


def summarise(models: list[dict]) -> dict:
    out: dict = {"models": models}
    for key in SCALAR_METRICS:
        values = [m[key] for m in models]
        out[key] = {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0}
    return out
