"""The trajectory-matching core: loss value, gradients, safeguards, resume."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ddforge.core.augment import DSAConfig
from ddforge.core.distill_loop import run_distillation
from ddforge.core.flat import FlatLayout, flatten_parameters
from ddforge.core.matching import (
    LR_FLOOR_FRACTION,
    GraphFreeStepGradient,
    MatchingConfig,
    TrajectoryMatcher,
    inner_gradient,
    normalised_distance,
    sample_schedule,
    unroll_student,
    unroll_student_constant_memory,
)
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.errors import NonFiniteError


def _linear_case():
    torch.manual_seed(0)
    net = nn.Linear(3, 2).double()
    layout = FlatLayout.of(net)
    start = torch.randn(layout.size, dtype=torch.float64)
    target = torch.randn(layout.size, dtype=torch.float64)
    images = torch.randn(2, 3, dtype=torch.float64)
    labels = torch.tensor([0, 1])
    return net, layout, start, target, images, labels


def test_mtt_loss_equals_hand_computation_on_a_linear_model():
    net, layout, start, target, images, labels = _linear_case()
    lr = torch.tensor(0.3, dtype=torch.float64)
    schedule = sample_schedule(2, (1, 3), syn_steps=2, batch_size=2, generator=torch.Generator(), dsa_config=None)
    end = unroll_student(net, layout, start, images, labels, lr, schedule)
    loss = normalised_distance(end, start, target)

    # by hand: softmax regression, gradient of mean CE is (p - y) x^T / B for W and mean(p - y) for b
    w, b = start[:6].view(2, 3).clone(), start[6:].clone()
    onehot = F.one_hot(labels, 2).double()
    for _ in range(2):
        p = torch.softmax(images @ w.T + b, dim=1)
        gw = (p - onehot).T @ images / 2
        gb = (p - onehot).mean(0)
        w, b = w - 0.3 * gw, b - 0.3 * gb
    by_hand = torch.cat([w.flatten(), b])
    expected = ((by_hand - target) ** 2).sum() / ((start - target) ** 2).sum()
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)


def test_weighted_loss_reweighs_only_the_numerator():
    end, start, target = torch.randn(5), torch.randn(5), torch.randn(5)
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 1.5])
    expected = ((w * (end - target)) ** 2).sum() / ((start - target) ** 2).sum()
    torch.testing.assert_close(normalised_distance(end, start, target, w), expected)


def _double_student(spec: NetworkSpec, n_images: int, seed: int):
    """A float64 student, its start and a nearby target, and random images (for exact comparisons)."""
    net = build_network(spec, 0).double()
    layout = FlatLayout.of(net)
    g = torch.Generator().manual_seed(seed)
    start = flatten_parameters(net).double()
    target = start + 0.05 * torch.randn(layout.size, generator=g, dtype=torch.float64)
    images = torch.randn(n_images, spec.in_channels, *spec.im_size, generator=g, dtype=torch.float64)
    return net, layout, start, target, images, g


def _conv_case(dsa: bool):
    net, layout, start, target, images, _ = _double_student(NetworkSpec(1, 2, (4, 4), width=2, depth=1), 4, 1)
    labels = torch.tensor([0, 1, 0, 1])

    def loss_of(imgs, log_lr):
        gen = torch.Generator().manual_seed(5)  # same augmentation and batches on every call
        schedule = sample_schedule(4, (4, 4), 3, 2, gen, DSAConfig(strategy="scale_rotate_brightness") if dsa else None)
        end = unroll_student(net, layout, start, imgs, labels, log_lr.exp(), schedule)
        return normalised_distance(end, start, target)

    return images, loss_of


@pytest.mark.parametrize("dsa", [False, True])
def test_gradient_wrt_images_and_lr_matches_finite_differences(dsa):
    images, loss_of = _conv_case(dsa)
    log_lr = torch.tensor(math.log(0.1), dtype=torch.float64)
    assert torch.autograd.gradcheck(
        loss_of, (images.clone().requires_grad_(True), log_lr.clone().requires_grad_(True)), eps=1e-6, atol=1e-5
    )


def _matcher(trajectories, images, labels, **cfg):
    spec = NetworkSpec(1, 2, (8, 8), width=4, depth=1)
    net = build_network(spec, 0)
    return TrajectoryMatcher(
        MatchingConfig(syn_steps=3, expert_epochs=1, max_start_epoch=2, lr_img=10.0, lr_lr=1e-5, **cfg),
        net, trajectories, images, labels, torch.Generator().manual_seed(0), DSAConfig(),
    ), FlatLayout.of(net).size


def _trajectories(size: int, n: int = 2, epochs: int = 3):
    g = torch.Generator().manual_seed(3)
    return [torch.cumsum(0.01 * torch.randn(epochs + 1, size, generator=g), 0) for _ in range(n)]


def test_step_updates_images_and_keeps_lr_positive():
    images, labels = torch.randn(4, 1, 8, 8), torch.tensor([0, 0, 1, 1])
    matcher, size = _matcher(None, images, labels)
    matcher.trajectories = _trajectories(size)
    before = matcher.images.detach().clone()
    result = matcher.step(0)
    assert result.finite and result.applied and math.isfinite(result.loss)
    assert not torch.equal(before, matcher.images.detach())
    assert matcher.lr.item() > 0


def _double_matcher(lr_update: str, lr_lr: float) -> TrajectoryMatcher:
    spec = NetworkSpec(1, 2, (8, 8), width=4, depth=1)
    net = build_network(spec, 0).double()
    g = torch.Generator().manual_seed(1)
    images = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
    trajectories = [t.double() for t in _trajectories(FlatLayout.of(net).size)]
    cfg = MatchingConfig(syn_steps=3, expert_epochs=1, max_start_epoch=2, lr_img=10.0, lr_lr=lr_lr, lr_teacher=0.01,
                         lr_update=lr_update)
    return TrajectoryMatcher(cfg, net, trajectories, images, torch.tensor([0, 0, 1, 1]),
                             torch.Generator().manual_seed(0), DSAConfig())


def _set_lr(matcher: TrajectoryMatcher, alpha: float) -> None:
    with torch.no_grad():
        matcher.lr_parameter.fill_(alpha if matcher.cfg.lr_update == "sgd" else math.log(alpha))


def _loss_slope_in_lr(matcher: TrajectoryMatcher, alpha: float) -> float:
    """∂L/∂α by central differences, every evaluation on the same window, batches and augmentation."""
    state = matcher.generator.get_state()
    values = []
    for a in (alpha + 1e-6, alpha - 1e-6):
        matcher.generator.set_state(state)
        _set_lr(matcher, a)
        values.append(float(matcher.matching_loss(0)[0].detach()))
    matcher.generator.set_state(state)
    _set_lr(matcher, alpha)
    return (values[0] - values[1]) / 2e-6


@pytest.mark.parametrize(("lr_update", "speed_up"), [("sgd", 1.0), ("log", 9.0)])
def test_the_learned_lr_takes_mtts_sgd_step_wherever_it_is(lr_update, speed_up):
    """methods.md §2: opt_α = SGD([α], lr=lr_lr). At α = 3α₀ the first step moves α by −lr_lr·∂L/∂α;
    the log-α update of ddforge before 2026-11-22 (still `lr_update: log`) moves it 9 times as far."""
    matcher = _double_matcher(lr_update, lr_lr=1e-4)
    slope = _loss_slope_in_lr(matcher, 0.03)
    assert abs(slope) > 1e-3   # a step that could be measured
    matcher.step(0)
    moved = matcher.lr.item() - 0.03
    assert moved == pytest.approx(-speed_up * 1e-4 * slope, rel=0.05)


def test_where_mtts_step_would_make_the_lr_negative_it_stops_at_the_floor():
    matcher = _double_matcher("sgd", lr_lr=10.0)
    _set_lr(matcher, 0.5)
    slope = _loss_slope_in_lr(matcher, 0.5)
    assert 10.0 * slope > 0.5   # setup: the student overshoots, so SGD's step (lr_lr × slope) passes zero
    matcher.step(0)
    assert matcher.lr.item() == pytest.approx(0.01 * LR_FLOOR_FRACTION)


def test_non_finite_step_is_skipped_and_persisting_ones_stop_the_run():
    images, labels = torch.randn(4, 1, 8, 8), torch.tensor([0, 0, 1, 1])
    matcher, size = _matcher(None, images, labels)
    bad = _trajectories(size)
    for t in bad:
        t[:, 0] = float("nan")
    matcher.trajectories = bad
    before = matcher.images.detach().clone()
    result = matcher.step(0)
    assert not result.finite and not result.applied
    assert torch.equal(before, matcher.images.detach())
    with pytest.raises(NonFiniteError, match="consecutive non-finite"):
        run_distillation(matcher, iterations=10, label="t", run_key="k", checkpoint_path=None,
                         checkpoint_every=5, snapshot_every=5, max_consecutive_nonfinite=3)


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path):
    images, labels = torch.randn(4, 1, 8, 8), torch.tensor([0, 0, 1, 1])

    def fresh():
        m, size = _matcher(None, images, labels)
        m.trajectories = _trajectories(size)
        return m

    kwargs = dict(label="t", run_key="k", checkpoint_every=2, snapshot_every=3, max_consecutive_nonfinite=3)
    straight = run_distillation(fresh(), iterations=6, checkpoint_path=None, **kwargs)
    ckpt = tmp_path / "ckpt.pt"
    run_distillation(fresh(), iterations=4, checkpoint_path=ckpt, **kwargs)  # "killed" after 4
    resumed = run_distillation(fresh(), iterations=6, checkpoint_path=ckpt, **kwargs)
    assert torch.equal(straight["snapshots"][-1]["images"], resumed["snapshots"][-1]["images"])
    assert straight["history"]["loss"] == resumed["history"]["loss"]
    # asking for more iterations continues from the finished run's checkpoint
    longer = run_distillation(fresh(), iterations=8, checkpoint_path=ckpt, **kwargs)
    assert longer["history"]["loss"][:6] == straight["history"]["loss"] and len(longer["history"]["loss"]) == 8
    # a checkpoint past the requested length is not used
    shorter = run_distillation(fresh(), iterations=4, checkpoint_path=ckpt, **kwargs)
    assert shorter["history"]["loss"] == straight["history"]["loss"][:4]
    # a checkpoint of another config is not resumed
    other = run_distillation(fresh(), iterations=6, checkpoint_path=ckpt, **{**kwargs, "run_key": "other"})
    assert other["history"]["loss"] == straight["history"]["loss"]


@pytest.mark.parametrize(("soft_labels", "forward_pass"), [(False, "eager"), (True, "eager"), (True, "compiled")])
def test_constant_memory_gradients_equal_the_unrolled_ones(soft_labels, forward_pass):
    """Images, lr, soft labels and importance weights: relative error far below 1e-5 (float64),
    also when the graph-free forward pass runs compiled on a scratch copy of the network."""
    net, layout, start, target, images0, g = _double_student(NetworkSpec(1, 3, (8, 8), width=4, depth=2), 6, 2)
    labels0 = torch.randn(6, 3, generator=g, dtype=torch.float64) if soft_labels else torch.tensor([0, 1, 2] * 2)
    weights0 = torch.rand(layout.size, generator=g, dtype=torch.float64) + 0.5
    schedule = sample_schedule(6, (8, 8), 7, 4, torch.Generator().manual_seed(9), DSAConfig())

    def grads(unroll):
        images = images0.clone().requires_grad_(True)
        log_lr = torch.tensor(math.log(0.05), dtype=torch.float64, requires_grad=True)
        weights = weights0.clone().requires_grad_(True)
        labels = labels0.clone().requires_grad_(soft_labels)
        targets = labels.softmax(1) if soft_labels else labels
        end = unroll(net, layout, start, images, targets, log_lr.exp(), schedule)
        normalised_distance(end, start, target, weights).backward()
        out = [images.grad, log_lr.grad, weights.grad]
        return out + ([labels.grad] if soft_labels else [])

    step_gradient = GraphFreeStepGradient(net, layout, compile_model=True) if forward_pass == "compiled" else None

    def constant_memory(*args):
        return unroll_student_constant_memory(*args, step_gradient=step_gradient)

    for a, b in zip(grads(unroll_student), grads(constant_memory)):
        assert a is not None and b is not None
        rel = (a - b).norm() / a.norm()
        assert rel < 1e-10, rel


def test_graph_free_step_gradient_equals_the_functional_one():
    """The scratch network (compiled or not) computes the same step gradient, for any θ it is given."""
    net, layout, start, _, images, g = _double_student(NetworkSpec(1, 3, (8, 8), width=4, depth=2), 6, 4)
    labels = torch.tensor([0, 1, 2] * 2)
    step = sample_schedule(6, (8, 8), 1, 4, torch.Generator().manual_seed(1), DSAConfig())[0]
    for compile_model in (False, True):
        step_gradient = GraphFreeStepGradient(net, layout, compile_model)
        for theta in (start, start + 0.1 * torch.randn(layout.size, generator=g, dtype=torch.float64)):
            theta_leaf = theta.clone().requires_grad_(True)
            expected = inner_gradient(net, layout, theta_leaf, images, labels, step, create_graph=False)
            got = step_gradient(theta, images, labels, step)
            assert ((got - expected).norm() / expected.norm()) < 1e-12
    assert torch.equal(flatten_parameters(net), start)  # the student's own weights are never touched


def test_constant_memory_mode_runs_inside_the_matcher():
    images, labels = torch.randn(4, 1, 8, 8), torch.tensor([0, 0, 1, 1])
    matcher, size = _matcher(None, images, labels, inner_loop="constant_memory")
    matcher.trajectories = _trajectories(size)
    before = matcher.images.detach().clone()
    assert matcher.step(0).applied
    assert not torch.equal(before, matcher.images.detach())


class _ShrinkingLr:
    """A distiller whose learned lr is multiplied by `factor` each step (the loop only reads it)."""

    consecutive_nonfinite = nonfinite_total = 0

    def __init__(self, factor: float):
        self.factor, self.lr = factor, 1e-3

    def step(self, iteration):
        from ddforge.core.distill_loop import StepResult
        self.lr *= self.factor
        return StepResult(loss=1.0, start_epoch=0, expert=0, applied=True, finite=True)

    def state_dict(self):
        return {"lr": self.lr}

    def load_state_dict(self, state):
        self.lr = state["lr"]

    def snapshot(self):
        return {"images": torch.zeros(1), "labels": torch.zeros(1), "lr": self.lr}

    def current_lr(self):
        return self.lr


def test_a_collapsing_learned_lr_is_warned_about_once_per_run_and_a_drifting_one_is_not(caplog, tmp_path):
    kwargs = dict(label="mtt", run_key="k", checkpoint_every=2, snapshot_every=10, max_consecutive_nonfinite=3)
    with caplog.at_level("WARNING", logger="ddforge.core.distill_loop"):
        run_distillation(_ShrinkingLr(0.9), iterations=20, checkpoint_path=None, **kwargs)   # 0.9^20: 8x lower
    assert not [r for r in caplog.records if "learned lr" in r.getMessage()]
    ckpt = tmp_path / "ckpt.pt"
    with caplog.at_level("WARNING", logger="ddforge.core.distill_loop"):
        run_distillation(_ShrinkingLr(0.5), iterations=10, checkpoint_path=ckpt, **kwargs)
        # 0.5^7 = 1/128 is the first step past 100x: iteration 6, counted from 0
        warned = [r.getMessage() for r in caplog.records if "learned lr" in r.getMessage()]
        assert len(warned) == 1 and "iteration 6" in warned[0] and "lr_lr" in warned[0]
        caplog.clear()
        run_distillation(_ShrinkingLr(0.5), iterations=12, checkpoint_path=ckpt, **kwargs)   # resumed
    warned = [r.getMessage() for r in caplog.records if "learned lr" in r.getMessage()]
    assert len(warned) == 1 and "iteration 6" in warned[0]   # said again in the resumed run's log, once
