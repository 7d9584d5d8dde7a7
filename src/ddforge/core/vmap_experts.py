"""Several experts trained at once with `torch.func.vmap`: one batched call per step instead of one
per expert, which fills a GPU that a single small ConvNet leaves idle.

Each expert keeps its own init seed and its own generator for batch order and DSA, drawn in the same
order as `train_expert`, so a group reproduces the one-at-a-time trajectories up to float rounding.
Plain SGD only (MTT's experts: no momentum, no weight decay); norms without running statistics.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from ddforge.core.augment import DSAConfig, dsa
from ddforge.core.experts import ExpertConfig
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.errors import ConfigError


def train_experts_vmapped(
    spec: NetworkSpec, images: torch.Tensor, labels: torch.Tensor, cfg: ExpertConfig, *,
    seeds: list[int], generators: list[torch.Generator], device: str | torch.device = "cpu",
) -> list[torch.Tensor]:
    """Trajectories [epochs+1, P] of len(seeds) experts trained side by side."""
    if cfg.momentum or cfg.weight_decay:
        raise ConfigError("vmapped experts support plain SGD only (experts.momentum = weight_decay = 0)")
    if spec.norm == "batchnorm":
        raise ConfigError("vmapped experts need a norm without running statistics (not batchnorm)")
    nets = [build_network(spec, s, device) for s in seeds]
    model = nets[0]
    names = [n for n, _ in model.named_parameters()]
    params = {n: torch.stack([dict(net.named_parameters())[n].detach() for net in nets]) for n in names}

    def loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, p, (x,)), y)

    step_grads = vmap(grad(loss))
    images, labels = images.to(device), labels.to(device)
    dsa_config = DSAConfig() if cfg.dsa else None

    def snapshot() -> torch.Tensor:
        return torch.cat([params[n].reshape(len(seeds), -1) for n in names], dim=1).cpu().clone()

    snapshots = [snapshot()]
    n = images.shape[0]
    for _ in range(cfg.epochs):
        orders = [torch.randperm(n, generator=g).to(device) for g in generators]
        for start in range(0, n, cfg.batch_size):
            batches = [o[start : start + cfg.batch_size] for o in orders]
            xs = [images[b] if dsa_config is None else dsa(images[b], dsa_config, g) for b, g in zip(batches, generators)]
            grads = step_grads(params, torch.stack(xs), torch.stack([labels[b] for b in batches]))
            params = {k: params[k] - cfg.lr * grads[k] for k in names}
        snapshots.append(snapshot())
    stacked = torch.stack(snapshots)  # [epochs+1, experts, P]
    return [stacked[:, e] .clone() for e in range(len(seeds))]
