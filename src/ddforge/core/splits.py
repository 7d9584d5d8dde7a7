"""Train/val/test splits that never put one patient on both sides of a split.

Medical images of one patient are near-duplicates: a patient in train and test inflates accuracy.
With group ids (patient ids) whole groups are held out; without, a per-class stratified split.
"""
from __future__ import annotations

import torch

from ddforge.errors import ConfigError


def stratified_holdout(labels: torch.Tensor, fraction: float, g: torch.Generator,
                       cap_per_class: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep, held) indices; `fraction` of each class held out (at least one image when it has two)."""
    keep, held = [], []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        n_held = int(round(idx.numel() * fraction))
        if fraction > 0 and idx.numel() >= 2:
            n_held = min(max(n_held, 1), idx.numel() - 1)
        if cap_per_class is not None:
            n_held = min(n_held, cap_per_class)
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return torch.cat(keep).sort().values, torch.cat(held).sort().values


def group_holdout(labels: torch.Tensor, groups: list[str], fraction: float,
                  g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep, held) indices with whole groups held out, about `fraction` of the images per class.

    Groups are assigned by their majority class, in random order, until that class's held-out share
    is reached, so a split stays roughly stratified without ever splitting a patient.
    """
    if len(groups) != labels.numel():
        raise ConfigError(f"{len(groups)} patient ids for {labels.numel()} images")
    members: dict[str, list[int]] = {}
    for i, gid in enumerate(groups):
        members.setdefault(gid, []).append(i)
    names = sorted(members)
    order = torch.randperm(len(names), generator=g).tolist()
    per_class_total = torch.bincount(labels, minlength=int(labels.max()) + 1).float()
    held_count = torch.zeros_like(per_class_total)
    held: list[int] = []
    for k in order:
        idx = members[names[k]]
        majority = int(torch.bincount(labels[idx]).argmax())
        if held_count[majority] < fraction * per_class_total[majority]:
            held += idx
            held_count += torch.bincount(labels[idx], minlength=per_class_total.numel()).float()
    held_t = torch.tensor(sorted(held), dtype=torch.long)
    mask = torch.ones(labels.numel(), dtype=torch.bool)
    mask[held_t] = False
    return mask.nonzero().flatten(), held_t


def holdout(labels: torch.Tensor, groups: list[str] | None, fraction: float, g: torch.Generator,
            cap_per_class: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    if groups is not None:
        return group_holdout(labels, groups, fraction, g)
    return stratified_holdout(labels, fraction, g, cap_per_class)
