"""What every distillation method receives, and how its result is packaged.

The synthetic set is one plain dict (saved by the catalog with torch.save), so a GPU box with only
torch installed can load and use it without ddforge or Kedro.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ddforge.core.networks import NetworkSpec


@dataclass
class DistillContext:
    images: torch.Tensor          # real training images, transformed (float [N, C, H, W])
    labels: torch.Tensor          # int64 [N]
    class_names: list[str]
    spec: NetworkSpec
    trajectories: list[torch.Tensor]  # expert flat-parameter trajectories [E+1, P]; empty for DataDAM
    seed: int
    device: torch.device

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
