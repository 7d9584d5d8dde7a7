"""Per-class selection of real images (synthetic-set init and the random-real baseline)."""
from __future__ import annotations

import torch

from ddforge.errors import ConfigError


IPC = int | list[int] | dict[str, int]


def resolve_ipc(ipc: IPC, class_names: list[str]) -> list[int]:
    """Images per class as one count per class: an int for all, a list in class order, or a dict by
    class name (imbalanced medical data may want more images of the rarer, harder class)."""
    if isinstance(ipc, int):
        counts = [ipc] * len(class_names)
    elif isinstance(ipc, dict):
        unknown, missing = set(ipc) - set(class_names), set(class_names) - set(ipc)
        if unknown or missing:
            raise ConfigError(f"ipc by class: unknown classes {sorted(unknown)}, missing {sorted(missing)}; "
                              f"classes are {class_names}")
        counts = [ipc[c] for c in class_names]
    else:
        counts = list(ipc)
        if len(counts) != len(class_names):
            raise ConfigError(f"ipc has {len(counts)} entries for {len(class_names)} classes {class_names}")
    if any(not isinstance(n, int) or n < 1 for n in counts):
        raise ConfigError(f"ipc must be positive integers, got {ipc!r}")
    return counts


def describe_ipc(counts: list[int] | int) -> int | list[int]:
    """How a report shows per-class counts: one number when every class has the same (an int is
    what evaluations written before counts were per class hold)."""
    if isinstance(counts, int):
        return counts
    return counts[0] if len(set(counts)) == 1 else counts


def select_per_class(labels: torch.Tensor, counts: list[int], generator: torch.Generator,
                     class_names: list[str] | None = None) -> torch.Tensor:
    """Indices of `counts[c]` random images of every class c, grouped by class in class order."""
    chosen = []
    for c, wanted in enumerate(counts):
        members = (labels == c).nonzero().flatten()
        if members.numel() < wanted:
            name = class_names[c] if class_names else str(c)
            raise ConfigError(
                f"class {name!r} has only {members.numel()} training images but ipc asks for {wanted}; "
                "lower ipc for that class or add images of it"
            )
        chosen.append(members[torch.randperm(members.numel(), generator=generator)[:wanted]])
    return torch.cat(chosen)
