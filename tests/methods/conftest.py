from dataclasses import replace

import pytest
import torch

from ddforge.core.experts import ExpertConfig, train_expert
from ddforge.core.networks import NetworkSpec
from ddforge.methods.base import DistillContext


@pytest.fixture(scope="package")
def tiny_context() -> DistillContext:
    """Two separable classes of 8x8 images and two short real expert trajectories."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(2).repeat_interleave(12)
    images = torch.randn(24, 1, 8, 8, generator=g) * 0.3
    images[labels == 1, :, :4] += 1.0
    spec = NetworkSpec(1, 2, (8, 8), width=4, depth=1)
    trajectories = [
        train_expert(spec, images, labels, ExpertConfig(epochs=4, lr=0.05, batch_size=8), seed=s,
                     generator=torch.Generator().manual_seed(s))["trajectory"]
        for s in range(2)
    ]
    return DistillContext(images, labels, ["a", "b"], spec, trajectories, seed=0, device=torch.device("cpu"),
                          ipc=[2, 2], final_parameters=[t[-1] for t in trajectories])


def with_ipc(ctx: DistillContext, *counts: int) -> DistillContext:
    """The context with other images per class: one count for every class, or one per class."""
    return replace(ctx, ipc=list(counts) * ctx.num_classes if len(counts) == 1 else list(counts))
