"""MTT (Cazenavette et al., CVPR 2022): trajectory matching with learnable images and step size.

Everything MTT needs is the shared `TrajectoryMatcher`; this module only builds it.
"""
from __future__ import annotations

from ddforge.core.matching import TrajectoryMatcher
from ddforge.methods.base import DistillContext, Method, MethodConfig, initial_images
from ddforge.methods.trajectory_presets import MTT_PRESETS


class MTT(Method):
    name = "mtt"
    PRESETS = MTT_PRESETS   # `preset: cifar10` picks the row for the run's IPC (methods.md §2.3)

    def build(self, ctx: DistillContext, cfg: MethodConfig) -> TrajectoryMatcher:
        images, labels = initial_images(ctx, cfg.init)
        return TrajectoryMatcher(cfg.matching, ctx.student_network(), ctx.trajectories, images, labels,
                                 ctx.generator("matching"))
