"""Classification metrics that stay meaningful under class imbalance."""
from __future__ import annotations

import torch


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
    }
