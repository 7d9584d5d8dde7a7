"""DATM's images and labels come from the fully trained expert (methods.md §3.1), not from the last
epoch of the trajectory slice the pipeline keeps for matching."""
from dataclasses import replace

import pytest
import torch

from ddforge.core.flat import load_flat
from ddforge.core.networks import build_network
from ddforge.methods.datm import DATM
from ddforge.methods.registry import resolve_config
from ddforge.pipelines.distill.nodes import load_trajectories

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1, "iterations": 1}


def _trimmed(ctx):
    """What the distill node hands DATM for a window that needs one epoch: epochs 0-1 of 4, plus the finals."""
    return replace(ctx, trajectories=[t[:2] for t in ctx.trajectories], final_parameters=[t[-1] for t in ctx.trajectories])


@torch.no_grad()
def _logits(ctx, theta, images):
    net = build_network(ctx.spec, 123)
    load_flat(net, theta)
    return net.eval()(images)


def test_pix_init_real_labels_are_the_first_experts_final_logits_unfiltered(tiny_context):
    ctx = _trimmed(tiny_context)
    matcher = DATM().build(ctx, resolve_config("datm", {**SMALL, "pix_init": "real"}))
    expected = _logits(ctx, tiny_context.trajectories[0][-1], matcher.images)
    assert torch.allclose(matcher.labels, expected, atol=1e-5)
    assert not torch.allclose(_logits(ctx, ctx.trajectories[0][-1], matcher.images), expected, atol=1e-3)


def test_correct_samples_and_soft_labels_use_the_final_epoch(tiny_context):
    ctx = _trimmed(tiny_context)
    matcher = DATM().build(ctx, resolve_config("datm", SMALL))
    finals = torch.stack([_logits(ctx, t[-1], matcher.images) for t in tiny_context.trajectories])  # [E, N, K]
    hard = matcher.images.new_tensor([0, 0, 1, 1]).long()
    assert (finals[0].argmax(1) == hard).all()          # picked: what the trained first expert gets right
    correct = finals.argmax(2) == hard
    expected = torch.stack([finals[correct[:, i], i].mean(0) for i in range(4)])
    assert torch.allclose(matcher.labels, expected, atol=1e-5)


def test_the_distill_node_keeps_each_experts_final_epoch_beside_the_trimmed_slice():
    trajectory = torch.arange(6.0).unsqueeze(1).repeat(1, 3)   # epochs 0..5
    buffer = {"expert_000": lambda: {"trajectory": trajectory, "meta": {}}}
    trajectories, finals, _ = load_trajectories(buffer, needed_epochs=2)
    assert trajectories[0][:, 0].tolist() == [0.0, 1.0, 2.0]
    assert finals[0].tolist() == [5.0, 5.0, 5.0]


def test_a_labelling_epoch_is_kept_in_the_buffer_slice():
    cfg = resolve_config("datm", {**SMALL, "label_expert_epoch": 7})
    assert DATM().buffer_epochs_needed(cfg) == 7
