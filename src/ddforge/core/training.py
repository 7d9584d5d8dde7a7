"""Plain supervised training, shared by expert training and by evaluation of synthetic sets."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ddforge.core.augment import DSAConfig, dsa


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Hard labels (int64 [N]) use cross-entropy; soft labels (float [N, K] probabilities) soft CE."""
    if labels.is_floating_point():
        return -(labels * F.log_softmax(logits, dim=1)).sum(1).mean()
    return F.cross_entropy(logits, labels)


def as_targets(labels: torch.Tensor) -> torch.Tensor:
    """Stored labels to training targets: hard ints stay, learned soft labels (logits) become probabilities."""
    return labels.softmax(1) if labels.is_floating_point() else labels


def train_classifier(
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    generator: torch.Generator,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    dsa_config: DSAConfig | None = DSAConfig(),
    decay_at_half: bool = True,
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> nn.Module:
    """SGD over shuffled minibatches with per-sample DSA.

    With `decay_at_half` this is the papers' evaluation protocol: lr ×0.1 at half-way with a fresh
    optimiser (momentum reset). Experts use a constant lr and no momentum.
    """
    device = next(net.parameters()).device
    images, labels = images.to(device), labels.to(device)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    net.train()
    n = images.shape[0]
    for epoch in range(epochs):
        if decay_at_half and epoch == epochs // 2 and epoch > 0:
            opt = torch.optim.SGD(net.parameters(), lr=lr * 0.1, momentum=momentum, weight_decay=weight_decay)
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            x = images[idx]
            if dsa_config is not None:
                x = dsa(x, dsa_config, generator)
            loss = classification_loss(net(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if on_epoch_end is not None:
            on_epoch_end(epoch, net)
    return net


@torch.no_grad()
def predict_logits(net: nn.Module, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    out = torch.cat([net(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)])
    net.train(was_training)
    return out
