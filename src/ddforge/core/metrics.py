"""Classification metrics that stay meaningful under class imbalance."""
from __future__ import annotations

import torch

SCALAR_METRICS = ("accuracy", "balanced_accuracy", "macro_auroc")  # one number per model
PER_CLASS_METRICS = ("sensitivity", "specificity")  # one number per class and model


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float | list[float]]:
    pred = logits.argmax(1)
    labels = labels.to(pred.device)
    correct = pred == labels
    recalls, specificities = [], []
    for c in range(num_classes):
        pos = labels == c
        neg = ~pos
        if pos.any():
            recalls.append(correct[pos].float().mean().item())
        else:
            recalls.append(float("nan"))
        specificities.append((pred[neg] != c).float().mean().item() if neg.any() else float("nan"))
    present = [r for r in recalls if r == r]
    return {
        "accuracy": correct.float().mean().item(),
        "balanced_accuracy": sum(present) / max(len(present), 1),
        "sensitivity": recalls,
        "specificity": specificities,
        "macro_auroc": macro_auroc(logits.softmax(1), labels, num_classes),
    }


def binary_auroc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    s = scores.double()
    ordered = s.sort().values
    # mid-rank of each score: tied scores share the mean of the ranks they span
    ranks = (torch.searchsorted(ordered, s) + torch.searchsorted(ordered, s, right=True) + 1).double() / 2
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auroc(probabilities: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """One-vs-rest AUROC averaged over classes present in `labels` (binary: the positive class's AUROC)."""
    values = [binary_auroc(probabilities[:, c], labels == c) for c in range(num_classes)]
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")
