"""The audit of a set's final evaluation networks: what the report needs to be honest about it.

For each trained network: its class probabilities on the test split (95 % intervals from a
stratified bootstrap over test images, pooled over networks, and the share of its most predicted
class) and its per-example losses on real training images (members) and on as many held-out real
images of the same classes (non-members) for the loss-threshold membership-inference attack.
Every set of a run resamples the same test images (same seed and labels), so differences between
sets are paired.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ddforge.core.membership import balanced_members, loss_threshold_attack, per_example_losses
from ddforge.core.seeding import make_generator
from ddforge.core.uncertainty import metric_replicates, per_class_key, stratified_bootstrap_indices, summarise


@dataclass(frozen=True)
class AuditConfig:
    replicates: int = 1000                 # bootstrap replicates for every interval
    level: float = 0.95
    members_per_class: int | None = 500    # cap on members (and as many non-members) per class


@dataclass
class AuditData:
    test_labels: torch.Tensor
    members: tuple[torch.Tensor, torch.Tensor]   # real training images and labels
    nonmember_idx: torch.Tensor                  # held-out: rows of the test split, as many per class
    bootstrap_indices: torch.Tensor              # [B, N] stratified resamples of the test split
    cfg: AuditConfig
    seed: int


def audit_data(train: tuple[torch.Tensor, torch.Tensor], test_labels: torch.Tensor, cfg: AuditConfig,
               seed: int) -> AuditData:
    """Members are real training images, non-members test images (never trained on), balanced per class."""
    train_x, train_y = train
    member_idx, nonmember_idx = balanced_members(train_y, test_labels, cfg.members_per_class,
                                                 make_generator(seed, "membership-members"))
    return AuditData(
        test_labels.cpu(), (train_x[member_idx], train_y[member_idx]), nonmember_idx.cpu(),
        stratified_bootstrap_indices(test_labels.cpu(), cfg.replicates, make_generator(seed, "bootstrap")), cfg, seed,
    )


def network_inspector(data: AuditData) -> Callable[[nn.Module, dict[str, torch.Tensor]], dict]:
    """What `evaluate_training_set` keeps of each trained network for `summarise_audit`; the test
    split's logits come from the evaluation itself, so only the members need a forward pass."""
    def inspect(net: nn.Module, logits: dict[str, torch.Tensor]) -> dict:
        test_logits = logits["test"].cpu()
        rows = data.nonmember_idx
        return {
            "probabilities": test_logits.softmax(1),
            "member_losses": per_example_losses(net, *data.members),
            "nonmember_losses": F.cross_entropy(test_logits[rows].float(), data.test_labels[rows], reduction="none"),
        }
    return inspect


def summarise_audit(inspections: list[dict], data: AuditData) -> dict:
    """Intervals (with the bootstrap samples of accuracy and balanced accuracy, for paired
    differences between sets), each network's most predicted class and its share, and the attack."""
    probabilities = torch.stack([i["probabilities"] for i in inspections])
    labels = data.test_labels
    num_classes = probabilities.shape[2]
    replicates = metric_replicates(probabilities, labels, data.bootstrap_indices,
                                   make_generator(data.seed, "bootstrap-networks"))
    summary = summarise(probabilities, labels, replicates, data.cfg.level)
    ci = {key: summary[key]["ci"] for key in ("accuracy", "balanced_accuracy", "macro_auroc")}
    for name in ("sensitivity", "specificity"):
        ci[name] = [summary[per_class_key(name, c)]["ci"] for c in range(num_classes)]
    predictions = []
    for p in probabilities:
        shares = torch.bincount(p.argmax(1), minlength=num_classes).double() / p.shape[0]
        predictions.append({"top_class": int(shares.argmax()), "top_share": float(shares.max())})
    attack = loss_threshold_attack(
        torch.stack([i["member_losses"] for i in inspections]),
        torch.stack([i["nonmember_losses"] for i in inspections]),
        data.cfg.replicates, make_generator(data.seed, "membership-bootstrap"), data.cfg.level,
    )
    return {
        "test_counts": torch.bincount(labels, minlength=num_classes).tolist(),
        "uncertainty": {"level": data.cfg.level, "replicates": data.cfg.replicates, "ci": ci,
                        "samples": {k: replicates[k].tolist() for k in ("accuracy", "balanced_accuracy")}},
        "predictions": predictions,
        "membership": attack,
    }
