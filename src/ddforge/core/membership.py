"""Does a model trained on the shared set reveal which real images it was trained on?

Loss-threshold membership inference (Yeom et al. 2018; reported as in Carlini et al. 2022): the
attacker guesses "member" when a model's loss on an image is low. Members are real training
images, non-members held-out real images of the same classes in equal numbers. An attack AUROC
whose interval contains 0.5 and a true-positive rate near the false-positive rate at 1 % FPR are
evidence that the model does not single out its training patients; an AUROC well above 0.5, or a
TPR far above 1 % at 1 % FPR, means some members are confidently identifiable.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ddforge.core.metrics import binary_auroc
from ddforge.core.training import predict_logits
from ddforge.core.uncertainty import (
    percentile_interval,
    pooled_replicates,
    stratified_bootstrap_indices,
    weighted_binary_auroc,
    weighted_class_counts,
)


def per_example_losses(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """[N] float32 cross-entropy of each image under `net` (eval mode, no grad), on the CPU.

    The forward runs on the network's device in batches; the training mode is restored afterwards.
    """
    logits = predict_logits(net, images, batch_size=batch_size)
    return F.cross_entropy(logits, labels.cpu(), reduction="none")


def balanced_members(
    member_labels: torch.Tensor, nonmember_labels: torch.Tensor, max_per_class: int | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices into the member and non-member sets: per class, equally many of each, drawn at random.

    Per class the count is the smaller of the two available counts (capped at `max_per_class`), so
    the attack cannot win by guessing class frequencies. Classes in class order, draws in random order.
    """
    member_labels, nonmember_labels = member_labels.cpu(), nonmember_labels.cpu()
    picked: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
    for c in torch.unique(torch.cat([member_labels, nonmember_labels])):
        pools = [(member_labels == c).nonzero().flatten(), (nonmember_labels == c).nonzero().flatten()]
        count = min(len(p) for p in pools)
        if max_per_class is not None:
            count = min(count, max_per_class)
        for out, pool in zip(picked, pools):
            out.append(pool[torch.randperm(len(pool), generator=generator)[:count]])
    empty = torch.zeros(0, dtype=torch.long)
    return torch.cat(picked[0]) if picked[0] else empty, torch.cat(picked[1]) if picked[1] else empty


def weighted_tpr_at_fpr(scores: torch.Tensor, positive: torch.Tensor, weights: torch.Tensor, max_fpr: float) -> torch.Tensor:
    """[R] largest true-positive rate of any threshold whose false-positive rate is ≤ `max_fpr`.

    Thresholds lie between distinct scores: tied examples are all flagged or none (a tie with a
    negative cannot be split to gain a positive). Row r weighs example i `weights[r, i]` times.
    """
    pos, neg = weighted_class_counts(scores, positive, weights, descending=True)  # highest scores first
    tpr = pos.cumsum(1) / pos.sum(1, keepdim=True)
    fpr = neg.cumsum(1) / neg.sum(1, keepdim=True)
    return torch.where(fpr <= max_fpr, tpr, torch.zeros_like(tpr)).amax(1)


def loss_threshold_attack(
    member_losses: torch.Tensor,
    nonmember_losses: torch.Tensor,
    replicates: int,
    generator: torch.Generator,
    level: float = 0.95,
    max_fpr: float = 0.01,
) -> dict:
    """Attack with score −loss on M networks' losses: members [M, n], non-members [M, n'].

    Points are averaged over the M networks; intervals come from a bootstrap that resamples members
    and non-members with replacement and draws one network per replicate. Returns
    {"auroc": {"point", "ci": [lo, hi]}, "auroc_excludes_chance": bool (interval excludes 0.5),
     "tpr_at_fpr": {"point", "ci": [lo, hi]}, "max_fpr", "n_members", "n_nonmembers",
     "n_networks", "replicates", "level"}.
    """
    scores = -torch.cat([member_losses, nonmember_losses], 1).detach().cpu().double()
    n_members, n_nonmembers = member_losses.shape[1], nonmember_losses.shape[1]
    positive = torch.arange(n_members + n_nonmembers) < n_members

    def evaluate(m: int, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "auroc": weighted_binary_auroc(scores[m], positive, weights),
            "tpr_at_fpr": weighted_tpr_at_fpr(scores[m], positive, weights, max_fpr),
        }

    indices = stratified_bootstrap_indices(positive.long(), replicates, generator)
    boot = pooled_replicates(scores.shape[0], indices, positive.shape[0], generator, evaluate)
    ones = torch.ones(1, positive.shape[0], dtype=torch.float64)
    points = {
        "auroc": sum(binary_auroc(s, positive) for s in scores) / scores.shape[0],
        "tpr_at_fpr": float(torch.cat([weighted_tpr_at_fpr(s, positive, ones, max_fpr) for s in scores]).mean()),
    }
    out: dict = {key: {"point": points[key], "ci": list(percentile_interval(boot[key], level))} for key in points}
    lo, hi = out["auroc"]["ci"]
    return {
        **out,
        "auroc_excludes_chance": bool(lo > 0.5 or hi < 0.5),
        "max_fpr": max_fpr,
        "n_members": n_members,
        "n_nonmembers": n_nonmembers,
        "n_networks": scores.shape[0],
        "replicates": replicates,
        "level": level,
    }
