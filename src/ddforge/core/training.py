"""Plain supervised training, shared by expert training and by evaluation of synthetic sets."""
from __future__ import annotations

from collections.abc import Callable

import logging

import torch
import torch.nn.functional as F
from torch import nn

from ddforge.core.augment import DSAConfig, dsa

log = logging.getLogger(__name__)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Hard labels (int64 [N]) use cross-entropy; soft labels (float [N, K] probabilities) soft CE."""
    if labels.is_floating_point():
        return -(labels * F.log_softmax(logits, dim=1)).sum(1).mean()
    return F.cross_entropy(logits, labels)


def as_targets(labels: torch.Tensor) -> torch.Tensor:
    """Stored labels to training targets: hard ints stay, learned soft labels (logits) become probabilities."""
    return labels.softmax(1) if labels.is_floating_point() else labels


def fast_forward(net: nn.Module, compile_model: bool, channels_last: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The network's forward, optionally channels-last and compiled (chosen by benchmarks/bench.py).

    torch.compile needs a C++ compiler on CPU; when compiling fails the eager forward is used and
    the failure is logged once, so a machine without one still trains (only slower).

    Static shapes (`dynamic=False`): a kernel then depends on the batch shape alone. With torch's
    automatic dynamic shapes, one network's partial last batch marked the batch dimension dynamic for
    every later network of the class in the process (the state belongs to the forward's code object),
    and their full batches then ran a dynamic-shape kernel that rounds differently: an expert's
    trajectory depended on what the process had compiled before it (docs/fidelity.md).
    """
    if channels_last:
        net.to(memory_format=torch.channels_last)
    if not compile_model:
        return _as_layout(net, channels_last)
    compiled = torch.compile(net, dynamic=False)
    state = {"forward": _as_layout(compiled, channels_last)}

    def forward(x: torch.Tensor) -> torch.Tensor:
        try:
            return state["forward"](x)
        except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to eager
            if state["forward"] is not state.get("eager"):
                log.warning("torch.compile failed (%s: %s); training eagerly", type(exc).__name__, str(exc)[:200])
                state["eager"] = state["forward"] = _as_layout(net, channels_last)
                return state["forward"](x)
            raise

    return forward


def _as_layout(module: Callable[[torch.Tensor], torch.Tensor], channels_last: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    if not channels_last:
        return module
    return lambda x: module(x.contiguous(memory_format=torch.channels_last))


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
    compile_model: bool = False,
    channels_last: bool = False,
    bf16: bool = False,
) -> nn.Module:
    """SGD over shuffled minibatches with per-sample DSA.

    `bf16` runs the forward under bfloat16 autocast (GPU speed; the loss and the weights stay float32).
    With `decay_at_half` this is the papers' evaluation protocol: lr ×0.1 at half-way with a fresh
    optimiser (momentum reset). Experts use a constant lr and no momentum.
    """
    device = next(net.parameters()).device
    images, labels = images.to(device), labels.to(device)
    forward = fast_forward(net, compile_model, channels_last)
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
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = forward(x)
            loss = classification_loss(logits.float(), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if on_epoch_end is not None:
            on_epoch_end(epoch, net)
    return net


@torch.no_grad()
def recalibrate_batchnorm(net: nn.Module, images: torch.Tensor, batch_size: int = 256) -> bool:
    """Recomputes every batch-norm layer's running statistics on `images` (a cumulative average over
    batches, train-mode forward, no parameter change); returns whether the network has any.

    A network rebuilt from a flat parameter vector (an expert snapshot) has only its parameters: its
    running statistics are a fresh layer's mean 0 / variance 1, which eval mode would then use.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return False
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = net.training
    net.train()
    device = next(net.parameters()).device
    for i in range(0, len(images), batch_size):
        net(images[i : i + batch_size].to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    net.train(was_training)
    return True


@torch.no_grad()
def predict_logits(net: nn.Module, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    out = torch.cat([net(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)])
    net.train(was_training)
    return out
