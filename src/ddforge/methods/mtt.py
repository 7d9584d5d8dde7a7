"""MTT (Cazenavette et al., CVPR 2022): trajectory matching with learnable images and step size.

Everything MTT needs is the shared `TrajectoryMatcher`; this module only builds it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ddforge.core.matching import MatchingConfig, TrajectoryMatcher
from ddforge.core.networks import build_network
from ddforge.core.sampling import select_per_class
from ddforge.core.seeding import derive_seed, make_generator
from ddforge.errors import ConfigError
from ddforge.methods.base import DistillContext


@dataclass
class InitConfig:
    ipc: int | list[int] = 1   # one count for all classes, or one per class (resolved by the node)
    pix_init: str = "real"     # real | noise


def initial_images(ctx: DistillContext, init: InitConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """`ipc` real images per class (or N(0,1) noise), with hard labels in class order."""
    g = make_generator(ctx.seed, "init")
    idx = select_per_class(ctx.labels, init.ipc, ctx.num_classes, g, ctx.class_names)
    labels = ctx.labels[idx].clone()
    images = ctx.images[idx].clone()
    if init.pix_init == "noise":
        images = torch.randn(images.shape, generator=g)
    elif init.pix_init != "real":
        raise ConfigError(f"pix_init must be 'real' or 'noise', got {init.pix_init!r}")
    return images.to(ctx.device), labels.to(ctx.device)


def build(ctx: DistillContext, cfg: MatchingConfig, init: InitConfig, extra: dict) -> TrajectoryMatcher:
    images, labels = initial_images(ctx, init)
    net = build_network(ctx.spec, derive_seed(ctx.seed, "student"), ctx.device)
    return TrajectoryMatcher(cfg, net, ctx.trajectories, images, labels, make_generator(ctx.seed, "matching"))
