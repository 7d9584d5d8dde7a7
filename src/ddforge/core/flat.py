"""Flat-parameter view of a network: the representation expert trajectories are stored in.

Trajectory matching needs the student's parameters as one differentiable vector θ, so that
θ_{n+1} = θ_n − α ∇ℓ(θ_n) keeps its graph back to the synthetic images. `torch.func.functional_call`
runs the unchanged module with tensors sliced from θ.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call


@dataclass(frozen=True)
class FlatLayout:
    """Names, shapes and offsets of each parameter inside the flat vector (registration order)."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    offsets: tuple[int, ...]
    numels: tuple[int, ...]

    @classmethod
    def of(cls, module: nn.Module) -> FlatLayout:
        names, shapes, offsets, numels, offset = [], [], [], [], 0
        for name, p in module.named_parameters():
            names.append(name)
            shapes.append(p.shape)
            offsets.append(offset)
            numels.append(p.numel())
            offset += p.numel()
        return cls(tuple(names), tuple(shapes), tuple(offsets), tuple(numels))

    @property
    def size(self) -> int:
        return sum(self.numels)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        # one split, not a slice per parameter: the unrolled inner loop's graph then holds one
        # SplitBackward node per step instead of one SliceBackward per parameter tensor
        parts = torch.split(flat, self.numels)
        return {n: part.view(s) for n, s, part in zip(self.names, self.shapes, parts)}

    def expand_per_tensor(self, per_tensor: torch.Tensor) -> torch.Tensor:
        """Broadcast one value per parameter tensor to one value per element (differentiably)."""
        counts = torch.tensor(self.numels, device=per_tensor.device)
        return torch.repeat_interleave(per_tensor, counts)

    def mean_per_tensor(self, flat: torch.Tensor) -> torch.Tensor:
        """The mean of each parameter tensor's elements of a flat vector (differentiably)."""
        return torch.stack([part.mean() for part in torch.split(flat, self.numels)])


def flatten_parameters(module: nn.Module) -> torch.Tensor:
    """A detached copy (never a view of live weights: snapshots must not change afterwards)."""
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()]).clone()


def load_flat(module: nn.Module, flat: torch.Tensor) -> None:
    layout = FlatLayout.of(module)
    with torch.no_grad():
        for p, v in zip(module.parameters(), layout.unflatten(flat).values()):
            p.copy_(v)


def functional_forward(
    module: nn.Module, layout: FlatLayout, flat: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    return functional_call(module, layout.unflatten(flat), (x,))
