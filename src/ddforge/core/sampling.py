"""Per-class selection of real images (synthetic-set init and the random-real baseline)."""
from __future__ import annotations

import torch

from ddforge.errors import ConfigError


def select_per_class(labels: torch.Tensor, per_class: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of `per_class` random images of every class, grouped by class in class order."""
    chosen = []
    for c in range(num_classes):
        members = (labels == c).nonzero().flatten()
        if members.numel() < per_class:
            raise ConfigError(
                f"class {c} has only {members.numel()} training images but {per_class} per class were asked for; "
                "lower ipc or add images of that class"
            )
        chosen.append(members[torch.randperm(members.numel(), generator=generator)[:per_class]])
    return torch.cat(chosen)
