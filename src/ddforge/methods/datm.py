"""DATM (Guo et al., ICLR 2024): difficulty-aligned trajectory matching (methods.md §3).

On top of MTT: the start-epoch window's upper bound grows during distillation (later, harder
trajectory segments for larger IPC), images are initialised from real samples the experts
classify correctly, labels are soft and learned (initialised from the experts' logits), and an
iteration whose matching loss exceeds a threshold updates nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ddforge.core.experts import calibration_sample, snapshot_logits
from ddforge.core.matching import Learnable, MatchingConfig, TrajectoryMatcher
from ddforge.errors import ConfigError
from ddforge.methods.base import DistillContext, Method, MethodConfig, initial_images

log = logging.getLogger(__name__)


@dataclass
class ExtraConfig:
    sequential_generation: bool = True
    current_max_start_epoch: int = 2   # the window's initial upper bound ...
    expansion_end_epoch: int = 150     # ... grows to max_start_epoch by this iteration
    lr_y: float = 2.0
    momentum_y: float = 0.9
    threshold: float = 1.0
    label_expert_epoch: int = -1       # expert epoch that picks images and initialises labels (-1: final)


def _preset(n, m, lo, cur, hi, expand, seq, lr_img, lr_lr, lr_y, thr, batch, init="samples_predicted_correctly"):
    return {"syn_steps": n, "expert_epochs": m, "min_start_epoch": lo, "max_start_epoch": hi,
            "current_max_start_epoch": cur if cur is not None else hi, "expansion_end_epoch": expand or 1,
            "sequential_generation": seq, "lr_img": lr_img, "lr_lr": lr_lr, "lr_y": lr_y, "threshold": thr,
            "batch_syn": batch, "pix_init": init, "lr_teacher": 0.01, "iterations": 10000}


# The released per-IPC configs (methods.md §3.3, revised 2024-04-26 to match the paper). They also
# assume ZCA (preprocess.zca: true), 100-epoch experts, and ConvNetD4 for Tiny ImageNet.
PRESETS: dict[str, dict] = {
    "cifar10_ipc1": _preset(80, 2, 0, None, 4, None, False, 100, 1e-7, 5, 1.1, 10),
    "cifar10_ipc10": _preset(80, 2, 0, 10, 20, 1000, True, 100, 1e-5, 2, 1.0, 100),
    "cifar10_ipc50": _preset(80, 2, 0, 20, 40, 2000, True, 1000, 1e-5, 2, 1.0, 500),
    "cifar10_ipc500": _preset(40, 2, 40, None, 60, None, False, 50, 1e-5, 10, 1.0, 1000),
    "cifar10_ipc1000": _preset(100, 2, 40, None, 60, None, False, 50, 1e-5, 10, 1.0, 1000),
    "cifar100_ipc1": _preset(40, 3, 0, 10, 20, 1000, True, 1000, 1e-5, 10, 1.0, 1000),
    "cifar100_ipc10": _preset(80, 2, 0, 30, 50, 2000, True, 1000, 1e-5, 10, 1.0, 1000),
    "cifar100_ipc50": _preset(80, 2, 20, None, 70, None, False, 1000, 1e-5, 10, 1.0, 1000, init="real"),
    "cifar100_ipc100": _preset(80, 2, 30, None, 70, None, False, 50, 1e-5, 10, 1.0, 1000),
    "tiny_ipc1": _preset(40, 2, 0, 15, 20, 2000, True, 10000, 1e-4, 10, 1.0, 1000),
    "tiny_ipc10": _preset(40, 2, 10, None, 50, None, False, 100, 1e-4, 10, 1.0, 500),
    "tiny_ipc50": _preset(20, 2, 40, None, 70, None, False, 100, 1e-4, 10, 1.0, 1000),
}


def window_upper_bound(iteration: int, cfg: MatchingConfig, extra: ExtraConfig) -> int:
    """Grows linearly from current_max_start_epoch to max_start_epoch over expansion_end_epoch iterations."""
    if not extra.sequential_generation:
        return cfg.max_start_epoch
    span = cfg.max_start_epoch - extra.current_max_start_epoch
    grown = extra.current_max_start_epoch + (span * iteration) // max(extra.expansion_end_epoch, 1)
    return max(cfg.min_start_epoch + 1, min(cfg.max_start_epoch, grown))


def expert_logits(ctx: DistillContext, expert: int, images: torch.Tensor, epoch: int = -1) -> torch.Tensor:
    """Logits of one expert at `epoch` (-1: its final epoch, the trained expert; not the last epoch of
    the trajectory slice kept for matching), on the images' device."""
    theta = ctx.final_parameters[expert] if epoch == -1 else ctx.trajectories[expert][epoch]
    # only batch norm needs real images for its statistics (a shuffle of the whole training set otherwise)
    calibration = calibration_sample(ctx.images, ctx.generator("bn-calibration")) if ctx.spec.norm == "batchnorm" \
        else None
    return snapshot_logits(ctx.spec, theta, images, ctx.device, calibration).to(images.device)


def correctly_classified_init(ctx: DistillContext, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, `ctx.ipc` random real images the first expert classifies correctly; further experts
    are asked when it does not get enough right, and random members top up as a last resort."""
    g = ctx.generator("init")
    chosen = []
    for c, ipc in enumerate(ctx.ipc):
        pool = (ctx.labels == c).nonzero().flatten()
        pool = pool[torch.randperm(pool.numel(), generator=g).to(pool.device)]
        if pool.numel() < ipc:
            raise ConfigError(f"class {ctx.class_names[c]!r} has {pool.numel()} training images, fewer than ipc={ipc}")
        got = pool[:0]
        for expert in range(len(ctx.final_parameters)):
            rest = pool[~torch.isin(pool, got)]
            correct = rest[expert_logits(ctx, expert, ctx.images[rest], epoch).argmax(1) == c]
            got = torch.cat([got, correct[: ipc - got.numel()]])
            if got.numel() == ipc:
                break
        if got.numel() < ipc:
            log.warning("datm: class %s has only %d correctly classified images; topping up", ctx.class_names[c], got.numel())
            got = torch.cat([got, pool[~torch.isin(pool, got)][: ipc - got.numel()]])
        chosen.append(got)
    idx = torch.cat(chosen)
    return ctx.images[idx].clone(), ctx.labels[idx].clone()


def soft_label_init(ctx: DistillContext, images: torch.Tensor, labels: torch.Tensor, epoch: int = -1,
                    filtered: bool = True) -> torch.Tensor:
    """Initial label logits: the mean logits of the experts that classify each image correctly (all
    experts where none does); unfiltered (`pix_init: real`), the first expert's logits as they are."""
    if not filtered:
        return expert_logits(ctx, 0, images, epoch)
    logits = torch.stack([expert_logits(ctx, e, images, epoch) for e in range(len(ctx.final_parameters))])  # [E, N, K]
    correct = (logits.argmax(2) == labels.unsqueeze(0)).float()  # [E, N]
    weights = torch.where(correct.sum(0, keepdim=True) > 0, correct, torch.ones_like(correct))
    return (weights.unsqueeze(2) * logits).sum(0) / weights.sum(0).unsqueeze(1)


class DATMMatcher(TrajectoryMatcher):
    def __init__(self, *args, extra: ExtraConfig, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.extra = extra
        self.labels.requires_grad_(True)   # learnable soft labels (logits)

    def learnables(self) -> list[Learnable]:
        return super().learnables() + [Learnable("label_logits", self.labels, self.extra.lr_y, self.extra.momentum_y)]

    def start_epoch_range(self, iteration: int) -> tuple[int, int]:
        return self.cfg.min_start_epoch, window_upper_bound(iteration, self.cfg, self.extra)

    def targets(self) -> torch.Tensor:
        return self.labels.softmax(1)

    def accept(self, loss: torch.Tensor) -> bool:
        return bool(loss <= self.extra.threshold)


class DATM(Method):
    name = "datm"
    ExtraConfig = ExtraConfig
    PRESETS = PRESETS
    defaults = {"pix_init": "samples_predicted_correctly"}

    def buffer_epochs_needed(self, cfg: MethodConfig) -> int:
        """The matching window, and a labelling epoch other than the final one if one is set."""
        return max(super().buffer_epochs_needed(cfg), cfg.extra.label_expert_epoch)

    def build(self, ctx: DistillContext, cfg: MethodConfig) -> DATMMatcher:
        epoch = cfg.extra.label_expert_epoch
        if cfg.init.pix_init == "samples_predicted_correctly":
            images, labels = correctly_classified_init(ctx, epoch)
        else:
            images, labels = initial_images(ctx, cfg.init)
        # released code: random real images are labelled by one expert, unfiltered (the cifar100_ipc50 preset)
        soft = soft_label_init(ctx, images, labels, epoch, filtered=cfg.init.pix_init != "real")
        return DATMMatcher(cfg.matching, ctx.student_network(), ctx.trajectories, images, soft,
                           ctx.generator("matching"), extra=cfg.extra)
