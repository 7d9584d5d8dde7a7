"""The method contract: what every distillation method receives, what it may declare, and the
defaults it inherits. A new method is one module with one `Method` subclass (see
docs/architecture.md, "Adding a method").

The synthetic set a method produces is one plain dict (saved by the catalog with torch.save), so a
GPU box with only torch installed can load and use it without ddforge or Kedro.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ddforge.core.distill_loop import Distiller, LoopConfig, run_loop
from ddforge.core.evaluation import Stage
from ddforge.core.matching import MatchingConfig
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.core.sampling import select_per_class
from ddforge.core.seeding import derive_seed, make_generator
from ddforge.core.training import as_targets
from ddforge.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class DistillContext:
    images: torch.Tensor          # real training images, transformed (float [N, C, H, W])
    labels: torch.Tensor          # int64 [N]
    class_names: list[str]
    spec: NetworkSpec
    trajectories: list[torch.Tensor]  # expert flat-parameter trajectories [E+1, P]; empty for DataDAM
    seed: int
    device: torch.device
    ipc: list[int]                # images per class, one count per class (resolved once, from params:ipc)
    # each expert's parameters at its final epoch: `trajectories` keep only the epochs a matching window
    # can reach, but DATM's initial images and soft labels come from the fully trained expert (§3.1)
    final_parameters: list[torch.Tensor]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def generator(self, *stream: Any) -> torch.Generator:
        """The named random stream of this run (streams never shift each other's draws)."""
        return make_generator(self.seed, *stream)

    def student_network(self) -> nn.Module:
        """The network every trajectory method unrolls its student on (same init for all methods)."""
        return build_network(self.spec, derive_seed(self.seed, "student"), self.device)


@dataclass
class InitConfig:
    pix_init: str = "real"     # real | noise (DATM adds samples_predicted_correctly)


def initial_images(ctx: DistillContext, init: InitConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """`ctx.ipc` real images per class (or N(0,1) noise), with hard labels in class order."""
    g = ctx.generator("init")
    idx = select_per_class(ctx.labels, ctx.ipc, g, ctx.class_names)
    labels = ctx.labels[idx].clone()
    images = ctx.images[idx].clone()
    if init.pix_init == "noise":
        images = torch.randn(images.shape, generator=g)
    elif init.pix_init != "real":
        raise ConfigError(f"pix_init must be 'real' or 'noise', got {init.pix_init!r}")
    return images.to(ctx.device), labels.to(ctx.device)


@dataclass
class MethodConfig:
    """A method's parameters, resolved once from the flat YAML keys (see `registry.resolve_config`)."""

    matching: MatchingConfig
    init: InitConfig
    loop: LoopConfig
    extra: Any               # the method's own ExtraConfig, or None

    def as_dict(self) -> dict[str, Any]:
        parts = [self.matching, self.init, self.loop] + ([self.extra] if self.extra is not None else [])
        return {k: v for part in parts for k, v in vars(part).items()}


Evaluate = Callable[[list[Stage]], dict]   # trains evaluation networks on stages, returns their scores


class Method:
    """One distillation method. Subclasses set `name` and implement `build` (one distiller driven by
    the shared loop) or override `run` (multi-stage methods); every other hook has a default."""

    name: ClassVar[str]
    ExtraConfig: ClassVar[type | None] = None          # the method's own parameters
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}  # named settings, `preset: <name>` (papers' configs)
    defaults: ClassVar[dict[str, Any]] = {}            # shared keys this method sets differently
    matches_trajectories: ClassVar[bool] = True        # needs the expert buffer and `trajectory_matching`
    # extra report figures: catalog output name -> renderer of the synthetic set (IADD's importance)
    report_figures: ClassVar[dict[str, Callable[[dict], Figure]]] = {}

    def buffer_epochs_needed(self, cfg: MethodConfig) -> int:
        """Expert epochs the shared buffer must hold for this method's matching window(s)."""
        return cfg.matching.max_start_epoch + cfg.matching.expert_epochs

    def network_spec(self, spec: NetworkSpec, cfg: MethodConfig) -> NetworkSpec:
        """The network this method distils with, given the shared one (`params:network`). The synthetic
        set records it, so its evaluation trains the same network (DataDAM: its own `norm`)."""
        return spec

    def build(self, ctx: DistillContext, cfg: MethodConfig) -> Distiller:
        raise NotImplementedError(f"{type(self).__name__} must implement build() or run()")

    def run(self, ctx: DistillContext, cfg: MethodConfig, *, run_key: str, checkpoint_path: Path | None) -> dict:
        """Distils (or resumes); returns snapshots, history, extras and optionally `stages`."""
        return run_loop(self.build(ctx, cfg), cfg.loop, label=self.name, run_key=run_key,
                        checkpoint_path=checkpoint_path)

    def training_stages(self, synthetic_set: dict, snapshot: dict) -> list[Stage]:
        """How an evaluation network trains on one snapshot: the whole set at its learned lr."""
        return [(snapshot["images"], as_targets(snapshot["labels"]), snapshot["lr"])]

    def extra_evaluations(self, synthetic_set: dict, evaluate: Evaluate, final_scores: dict) -> dict:
        """Further entries of the method's evaluation (SeqMatch: every cumulative union)."""
        return {}
