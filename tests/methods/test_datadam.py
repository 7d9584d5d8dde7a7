"""DataDAM: attention maps, the matching loss, the frozen random encoders, resume, and build()."""
import io
import math
from dataclasses import fields, replace

import pytest
import torch
from torch import nn

from ddforge.core.augment import DSAConfig
from ddforge.core.distill_loop import LoopConfig, run_distillation
from ddforge.core.matching import MatchingConfig
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.methods import datadam
from ddforge.methods.base import DistillContext, InitConfig, MethodConfig
from ddforge.methods.datadam import (
    AttentionMatcher,
    DataDAM,
    ExtraConfig,
    attention_matching_loss,
    spatial_attention,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def _ctx(seed: int = 0, norm: str = "instancenorm") -> DistillContext:
    g = torch.Generator().manual_seed(123)
    images = torch.randn(16, 1, 8, 8, generator=g)
    labels = torch.arange(2).repeat_interleave(8)
    spec = NetworkSpec(1, 2, (8, 8), width=4, depth=2, norm=norm)
    return DistillContext(images, labels, ["a", "b"], spec, [], seed, torch.device("cpu"), ipc=[2, 2], final_parameters=[])


def build(ctx: DistillContext, matching: MatchingConfig, extra: ExtraConfig, ipc: int = 2) -> AttentionMatcher:
    """DataDAM's distiller for `ipc` images per class."""
    ctx = replace(ctx, ipc=[ipc] * ctx.num_classes)
    return DataDAM().build(ctx, MethodConfig(matching, InitConfig(), LoopConfig(), extra))


def _matcher(ipc: int = 2, **extra):
    extra = {"batch_real": 4, **extra}
    return build(_ctx(), MatchingConfig(lr_img=1.0), ExtraConfig(**extra), ipc)


# --- 1. spatial attention ------------------------------------------------------------------------


def test_spatial_attention_matches_hand_computation():
    f = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]], [[2.0, 1.0], [-1.0, 0.0]]]])  # 1x2x2x2
    # p=2: per-pixel 1+4, 4+1, 0+1, 9+0
    torch.testing.assert_close(spatial_attention(f, 2), torch.tensor([[5.0, 5.0, 1.0, 9.0]]) / math.sqrt(132))
    # p=1: |.| summed over channels: 3, 3, 1, 3
    torch.testing.assert_close(spatial_attention(f, 1), torch.tensor([[3.0, 3.0, 1.0, 3.0]]) / math.sqrt(28))
    # p=3 checks the absolute value (-2)^3 would give -8
    torch.testing.assert_close(spatial_attention(f, 3), torch.tensor([[9.0, 9.0, 1.0, 27.0]]) / math.sqrt(892))


def test_spatial_attention_normalises_each_sample_separately():
    f = torch.randn(1, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    a = spatial_attention(torch.cat([f, 10 * f]), 4)
    assert a.shape == (2, 20)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(a[0], a[1])


# --- 2. the loss -------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["instancenorm", "batchnorm"])
def test_loss_is_zero_for_identical_sets_under_siamese_dsa_and_positive_otherwise(norm):
    ctx = _ctx(norm=norm)
    net = build_network(ctx.spec, 7).train()
    real = [ctx.images[:1], ctx.images[8:9]]
    cfg = ExtraConfig(power=4, batch_real=1)
    for trial in range(4):  # several DSA draws: every group must be applied identically to both sides
        g = torch.Generator().manual_seed(trial)
        loss = attention_matching_loss(net, real, [r.clone() for r in real], cfg, g, DSAConfig())
        assert abs(float(loss.detach())) < 1e-10
    noisy = [r + 0.3 * torch.randn_like(r) for r in real]
    loss = attention_matching_loss(net, real, noisy, cfg, torch.Generator().manual_seed(0), DSAConfig())
    assert float(loss.detach()) > 1e-6


def test_loss_matches_an_independent_hook_based_reference():
    """Without DSA: SAM over the ReLUs of every block but the last, MMD on net.embed, weights 100 and 100·λ."""
    spec = NetworkSpec(1, 2, (8, 8), width=3, depth=3, norm="batchnorm")
    net = build_network(spec, 3).double().train()
    g = torch.Generator().manual_seed(5)
    real = [torch.randn(5, 1, 8, 8, generator=g, dtype=torch.float64) for _ in range(2)]
    syn = [torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64) for _ in range(2)]
    cfg = ExtraConfig(power=2, task_balance=0.3, loss_scale=7.0)
    loss = attention_matching_loss(net, real, syn, cfg, torch.Generator(), None)

    captured: list[torch.Tensor] = []
    relus = [m for m in net.features if isinstance(m, nn.ReLU)]
    handles = [m.register_forward_hook(lambda m, i, o: captured.append(o)) for m in relus]

    def run(batches):
        captured.clear()
        emb = net.embed(torch.cat(batches))
        acts = list(captured)
        sizes = [b.shape[0] for b in batches]
        maps = []
        for a in acts[:-1]:  # 2 of the 3 blocks
            att = (a**2).sum(1).flatten(1)
            att = att / att.norm(dim=1, keepdim=True)
            maps.append([chunk.mean(0) for chunk in att.split(sizes)])
        return maps, [chunk.mean(0) for chunk in emb.split(sizes)]

    rmaps, remb = run(real)
    smaps, semb = run(syn)
    for h in handles:
        h.remove()
    assert len(rmaps) == 2
    sam = sum(((r - s) ** 2).sum() for rl, sl in zip(rmaps, smaps) for r, s in zip(rl, sl))
    mmd = sum(((r - s) ** 2).sum() for r, s in zip(remb, semb))
    torch.testing.assert_close(loss, 7.0 * sam + 7.0 * 0.3 * mmd)


# --- 3. gradients and frozen random encoders ------------------------------------------------------


def test_gradient_reaches_synthetic_images_only():
    ctx = _ctx()
    net = build_network(ctx.spec, 1).train()
    for p in net.parameters():
        p.requires_grad_(False)
    syn = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2), requires_grad=True)
    real = [ctx.images[:4], ctx.images[8:12]]
    loss = attention_matching_loss(net, real, [syn[:2], syn[2:]], ExtraConfig(), torch.Generator(), DSAConfig())
    loss.backward()
    assert syn.grad is not None and torch.isfinite(syn.grad).all() and syn.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_step_moves_images_but_never_the_network(monkeypatch):
    m = _matcher()
    before = m.images.detach().clone()
    seen = {}
    original = m.network

    def recording(iteration):
        net = original(iteration)
        seen["net"], seen["params"] = net, [p.detach().clone() for p in net.parameters()]
        return net

    monkeypatch.setattr(m, "network", recording)
    result = m.step(0)
    assert result.finite and result.applied and result.start_epoch == -1 and result.loss > 0
    assert not torch.equal(m.images.detach(), before)
    net = seen["net"]
    assert net.training
    assert all(not p.requires_grad and p.grad is None for p in net.parameters())
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), seen["params"]))


def test_fresh_network_per_iteration_with_the_configured_norm():
    m = _matcher(norm="batchnorm")  # ctx.spec says instancenorm
    a, a2, b = m.network(3), m.network(3), m.network(4)
    assert any(isinstance(x, nn.BatchNorm2d) for x in a.features)
    assert not any(isinstance(x, nn.GroupNorm) for x in a.features)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), a2.parameters()))
    assert not torch.equal(a.features[0].weight, b.features[0].weight)
    assert all(not p.requires_grad for p in a.parameters()) and a.training


# --- 4. checkpoint round trip --------------------------------------------------------------------


def test_resume_from_state_dict_is_bit_identical():
    m = _matcher()
    for it in range(3):
        m.step(it)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)  # the loop saves and loads with weights_only=True
    for it in range(3, 5):
        m.step(it)

    buf.seek(0)
    fresh = _matcher()
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    for it in range(3, 5):
        fresh.step(it)
    assert torch.equal(fresh.images.detach(), m.images.detach())
    assert torch.equal(fresh.generator.get_state(), m.generator.get_state())


def test_non_finite_step_is_skipped_and_counted():
    m = _matcher()
    with torch.no_grad():
        m.images[0, 0, 0, 0] = float("nan")
    before = m.images.detach().clone()
    result = m.step(0)
    assert not result.finite and not result.applied
    assert m.consecutive_nonfinite == 1 and m.nonfinite_total == 1
    assert torch.equal(m.images.detach().nan_to_num(), before.nan_to_num())


def test_overflowing_update_is_rolled_back_with_momentum():
    m = build(_ctx(), MatchingConfig(lr_img=1e38), ExtraConfig(batch_real=4), ipc=1)
    before = m.images.detach().clone()
    result = m.step(0)
    assert not result.finite and not result.applied and m.consecutive_nonfinite == 1
    assert torch.equal(m.images.detach(), before)
    assert not m.optimizer.state_dict()["state"]  # no momentum buffer left behind


# --- 5. build() + run_distillation ----------------------------------------------------------------


def test_build_runs_through_run_distillation_without_trajectories():
    ctx = _ctx()
    distiller = build(ctx, MatchingConfig(lr_img=1.0), ExtraConfig(batch_real=4, eval_lr=0.02))
    start = distiller.snapshot()
    out = run_distillation(
        distiller, iterations=4, label="datadam", run_key="k", checkpoint_path=None,
        checkpoint_every=2, snapshot_every=2, max_consecutive_nonfinite=3,
    )
    hist, snaps = out["history"], out["snapshots"]
    assert [s["iteration"] for s in snaps] == [0, 2, 4]
    assert all(math.isfinite(x) for x in hist["loss"]) and all(hist["applied"])
    assert hist["start_epoch"] == [-1] * 4 and hist["lr"] == [0.02] * 4
    final = snaps[-1]
    assert final["images"].shape == (4, 1, 8, 8) and final["lr"] == 0.02
    assert final["labels"].tolist() == [0, 0, 1, 1]
    assert not torch.equal(final["images"], start["images"])


def test_presets_are_valid_flat_parameters():
    known = set()
    for cls in (MatchingConfig, InitConfig, LoopConfig, ExtraConfig):
        known |= {f.name for f in fields(cls)}
    assert set(datadam.PRESETS) == {"paper", "released_code"}
    for name, params in datadam.PRESETS.items():
        assert set(params) <= known, name
        ExtraConfig(**{k: v for k, v in params.items() if k in {f.name for f in fields(ExtraConfig)}})
    assert datadam.PRESETS["paper"]["power"] == 4 and datadam.PRESETS["paper"]["norm"] == "instancenorm"
    assert datadam.PRESETS["released_code"]["power"] == 1 and datadam.PRESETS["released_code"]["norm"] == "batchnorm"
