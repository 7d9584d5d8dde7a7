"""Trajectory matching, the machinery shared by MTT, DATM, SeqMatch and IADD.

One iteration: start a student at expert epoch t, take `syn_steps` SGD steps on (augmented)
synthetic images with the learnable step size α, and measure how far the student ends from the
expert at epoch t+M, relative to how far the expert itself moved:

    L = ||w ⊙ (θ_N − θ*_{t+M})||² / ||θ*_t − θ*_{t+M}||²

Gradients reach the images (and α, soft labels, importance weights w) through the whole
unrolled chain. Methods customise the hooks of `TrajectoryMatcher`; nothing else is repeated.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from ddforge.core.augment import DSAConfig, DSAParams, apply_dsa, sample_dsa_params
from ddforge.core.distill_loop import GuardedUpdates, StepResult
from ddforge.core.flat import FlatLayout, functional_forward
from ddforge.core.training import classification_loss, fast_forward
from ddforge.errors import ConfigError


# with lr_update: sgd, the learned lr never falls below this fraction of lr_teacher (MTT lets it go negative)
LR_FLOOR_FRACTION = 1e-4


@dataclass
class MatchingConfig:
    """The trajectory-matching settings MTT, DATM, SeqMatch and IADD share; these defaults are the
    project's only defaults for them (the YAML lists only what an environment or a method changes)."""

    syn_steps: int = 20
    expert_epochs: int = 2
    min_start_epoch: int = 0
    max_start_epoch: int = 4
    batch_syn: int | None = None   # None: the whole synthetic set every inner step
    lr_img: float = 100.0
    lr_lr: float = 1e-5
    lr_teacher: float = 0.01
    momentum: float = 0.5
    inner_loop: str = "unrolled"   # unrolled | constant_memory (TESLA-style replay, same gradients)
    compile: bool = True           # torch.compile the graph-free forward pass of constant_memory
    # sgd: SGD on α with lr_lr, as methods.md §2, kept above α₀·LR_FLOOR_FRACTION instead of going
    # negative | log: SGD on log α with lr_lr/α₀² (ddforge before 2026-11-22; (α/α₀)² times MTT's step)
    lr_update: str = "sgd"

    def __post_init__(self) -> None:
        if self.inner_loop not in ("unrolled", "constant_memory"):
            raise ConfigError(f"inner_loop must be 'unrolled' or 'constant_memory', got {self.inner_loop!r}")
        if self.lr_update not in ("sgd", "log"):
            raise ConfigError(f"lr_update must be 'sgd' or 'log', got {self.lr_update!r}")
        if self.min_start_epoch >= self.max_start_epoch:
            raise ConfigError(
                f"min_start_epoch ({self.min_start_epoch}) must be below max_start_epoch ({self.max_start_epoch})"
            )
        if self.syn_steps < 1 or self.expert_epochs < 1:
            raise ConfigError("syn_steps and expert_epochs must be at least 1")


@dataclass
class InnerStep:
    """One inner SGD step's randomness, drawn up front so a replay (constant-memory backward) sees
    exactly the same minibatch and augmentation."""

    idx: torch.Tensor
    augmentation: DSAParams | None


def sample_schedule(
    num_images: int, image_hw: tuple[int, int], syn_steps: int, batch_size: int, generator: torch.Generator,
    dsa_config: DSAConfig | None,
) -> list[InnerStep]:
    """Minibatches from a cycling random permutation, each with per-sample DSA parameters."""
    steps, order = [], torch.empty(0, dtype=torch.long)
    for _ in range(syn_steps):
        if order.numel() < batch_size:
            order = torch.cat([order, torch.randperm(num_images, generator=generator)])
        idx, order = order[:batch_size], order[batch_size:]
        aug = None if dsa_config is None else sample_dsa_params(dsa_config, idx.numel(), *image_hw, generator, shared=False)
        steps.append(InnerStep(idx, aug))
    return steps


def step_batch(images: torch.Tensor, targets: torch.Tensor, step: InnerStep) -> tuple[torch.Tensor, torch.Tensor]:
    """The step's minibatch, augmented as drawn (differentiable in images and targets)."""
    idx = step.idx.to(images.device)
    x = images[idx]
    if step.augmentation is not None:
        x = apply_dsa(x, step.augmentation)
    return x, targets[idx]


def inner_gradient(
    net: nn.Module, layout: FlatLayout, theta: torch.Tensor, images: torch.Tensor, targets: torch.Tensor,
    step: InnerStep, create_graph: bool,
) -> torch.Tensor:
    x, y = step_batch(images, targets, step)
    loss = classification_loss(functional_forward(net, layout, theta, x), y)
    return torch.autograd.grad(loss, theta, create_graph=create_graph)[0]


def unroll_student(
    net: nn.Module, layout: FlatLayout, start: torch.Tensor, images: torch.Tensor, targets: torch.Tensor,
    lr: torch.Tensor, schedule: list[InnerStep],
) -> torch.Tensor:
    """θ_N after the scheduled differentiable SGD steps from `start`; the whole graph is kept, so
    memory grows with syn_steps × batch."""
    theta = start.detach().requires_grad_(True)
    for step in schedule:
        theta = theta - lr * inner_gradient(net, layout, theta, images, targets, step, create_graph=True)
    return theta


class GraphFreeStepGradient:
    """g_n = ∇_θ ℓ(θ_n) of one inner step with no graph kept: constant memory's forward pass.

    It runs on a scratch copy of the network loaded with θ_n, so the forward can be compiled (a
    plain training step; the double-backward replay cannot be and stays eager). Compiled, it is
    1.8-2.6x the functional eager step on this CPU, which pays for most of the replay's extra work.
    """

    def __init__(self, net: nn.Module, layout: FlatLayout, compile_model: bool) -> None:
        self.net = copy.deepcopy(net)
        self.params = list(self.net.parameters())
        self.layout = layout
        self.forward = fast_forward(self.net, compile_model, channels_last=False)

    def __call__(self, theta: torch.Tensor, images: torch.Tensor, targets: torch.Tensor, step: InnerStep) -> torch.Tensor:
        with torch.no_grad():
            for p, value in zip(self.params, self.layout.unflatten(theta.detach()).values()):
                p.copy_(value)
            x, y = step_batch(images.detach(), targets.detach(), step)
        with torch.enable_grad():
            grads = torch.autograd.grad(classification_loss(self.forward(x), y), self.params)
        return torch.cat([g.reshape(-1) for g in grads])


class _ConstantMemoryUnroll(torch.autograd.Function):
    """The same θ_N, but backward replays the steps in reverse instead of storing their graphs.

    Forward keeps only θ_0..θ_N (N flat vectors, no activations). Backward carries the adjoint
    λ_{n+1} = ∂L/∂θ_{n+1} down the chain of θ_{n+1} = θ_n − α g_n(θ_n, X, Y): recompute step n with
    a graph, then one vector-Jacobian product gives ∂L/∂θ_n = λ − α H_n λ, ∂L/∂X −= α (∂g_n/∂X)ᵀλ,
    ∂L/∂Y −= α (∂g_n/∂Y)ᵀλ and ∂L/∂α −= g_n·λ. Exact reverse mode, so gradients equal the unrolled
    ones up to floating-point rounding; memory is one step's graph regardless of syn_steps.
    """

    @staticmethod
    def forward(ctx, images, targets, lr, start, net, layout, schedule, step_gradient):  # noqa: ANN001
        # All θ_n in one block, and in-place accumulators in backward: fewer allocations per step.
        thetas = start.new_empty(len(schedule) + 1, start.numel())
        thetas[0] = start.detach()
        for n, step in enumerate(schedule):
            g = step_gradient(thetas[n], images, targets, step)
            torch.addcmul(thetas[n], lr.detach(), g, value=-1, out=thetas[n + 1])
        ctx.save_for_backward(images, targets, lr, thetas)
        ctx.net, ctx.layout, ctx.schedule = net, layout, schedule
        return thetas[-1].clone()

    @staticmethod
    def backward(ctx, grad_end):  # noqa: ANN001
        images, targets, lr, thetas = ctx.saved_tensors
        learn_targets = targets.is_floating_point() and ctx.needs_input_grad[1]
        d_images = torch.zeros_like(images)
        d_targets = torch.zeros_like(targets) if learn_targets else None
        d_lr = torch.zeros_like(lr)
        lam = grad_end.clone()
        for n in reversed(range(len(ctx.schedule))):
            with torch.enable_grad():
                theta = thetas[n].detach().requires_grad_(True)
                x = images.detach().requires_grad_(True)
                y = targets.detach().requires_grad_(learn_targets)
                g = inner_gradient(ctx.net, ctx.layout, theta, x, y, ctx.schedule[n], create_graph=True)
                wrt = [theta, x] + ([y] if learn_targets else [])
                grads = torch.autograd.grad(g, wrt, grad_outputs=lam)
            d_lr.sub_((g.detach() * lam).sum())
            d_images.sub_(lr * grads[1])
            if learn_targets:
                d_targets.sub_(lr * grads[2])
            lam.sub_(lr * grads[0])
            del g, grads  # free this step's graph before the next step builds its own
        return d_images, d_targets, d_lr, None, None, None, None, None


def unroll_student_constant_memory(
    net: nn.Module, layout: FlatLayout, start: torch.Tensor, images: torch.Tensor, targets: torch.Tensor,
    lr: torch.Tensor, schedule: list[InnerStep], step_gradient: GraphFreeStepGradient | None = None,
) -> torch.Tensor:
    """θ_N like `unroll_student`, in memory independent of syn_steps. `step_gradient` computes the
    forward pass's graph-free steps (default: uncompiled; the matcher passes a compiled one)."""
    step_gradient = step_gradient or GraphFreeStepGradient(net, layout, compile_model=False)
    return _ConstantMemoryUnroll.apply(images, targets, lr, start, net, layout, schedule, step_gradient)


def normalised_distance(
    end: torch.Tensor, start: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Student-to-target distance over expert displacement; `weights` (IADD) reweigh the numerator only."""
    diff = end - target
    if weights is not None:
        diff = weights * diff
    return diff.pow(2).sum() / (start - target).pow(2).sum()


@dataclass
class Learnable:
    name: str
    tensor: torch.Tensor
    lr: float
    momentum: float


class TrajectoryMatcher(GuardedUpdates):
    """MTT's outer step; DATM, SeqMatch and IADD override the small hooks below."""

    def __init__(
        self,
        cfg: MatchingConfig,
        net: nn.Module,
        trajectories: list[torch.Tensor],
        images: torch.Tensor,
        labels: torch.Tensor,
        generator: torch.Generator,
        dsa_config: DSAConfig | None = DSAConfig(),
    ) -> None:
        self.cfg = cfg
        self.net = net
        self.layout = FlatLayout.of(net)
        self.trajectories = trajectories
        self.generator = generator
        self.dsa_config = dsa_config
        self.images = images.detach().clone().requires_grad_(True)
        self.labels = labels.detach().clone()
        # the learned lr α itself (lr_update: sgd) or log α (lr_update: log)
        initial = cfg.lr_teacher if cfg.lr_update == "sgd" else math.log(cfg.lr_teacher)
        self.lr_parameter = torch.tensor(initial, dtype=images.dtype, device=images.device, requires_grad=True)
        self._optimizer: torch.optim.Optimizer | None = None
        self._step_gradient: GraphFreeStepGradient | None = None

    # ----- hooks -------------------------------------------------------------------------------
    def learnables(self) -> list[Learnable]:
        if self.cfg.lr_update == "sgd":   # MTT's SGD on α (the floor is applied after each step)
            lr = Learnable("lr", self.lr_parameter, self.cfg.lr_lr, self.cfg.momentum)
        else:   # SGD on log α with lr_lr/α₀² moves α as SGD on α does at α₀ only; (α/α₀)² times faster above
            lr = Learnable("log_lr", self.lr_parameter, self.cfg.lr_lr / self.cfg.lr_teacher**2, self.cfg.momentum)
        return [Learnable("images", self.images, self.cfg.lr_img, self.cfg.momentum), lr]

    def start_epoch_range(self, iteration: int) -> tuple[int, int]:
        """Half-open range [lo, hi) the student's start epoch is drawn from."""
        return self.cfg.min_start_epoch, self.cfg.max_start_epoch

    def student_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and training targets the student learns from (SeqMatch prepends frozen subsets)."""
        return self.images, self.targets()

    def targets(self) -> torch.Tensor:
        return self.labels

    def element_weights(self) -> torch.Tensor | None:
        return None

    def accept(self, loss: torch.Tensor) -> bool:
        return True

    def extras(self) -> dict:
        """What the method learned besides images, labels and lr (IADD: importance weights)."""
        return {}

    # ----- machinery ---------------------------------------------------------------------------
    @property
    def lr(self) -> torch.Tensor:
        return self.lr_parameter if self.cfg.lr_update == "sgd" else self.lr_parameter.exp()

    def keep_lr_positive(self) -> None:
        """Where MTT's SGD would take α to zero or below (a student that stands still or climbs the
        loss), α stops at the floor; the loop's lr-collapse warning then says so."""
        if self.cfg.lr_update == "sgd":
            with torch.no_grad():
                self.lr_parameter.clamp_(min=self.cfg.lr_teacher * LR_FLOOR_FRACTION)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        if self._optimizer is None:
            groups = [{"params": [l.tensor], "lr": l.lr, "momentum": l.momentum} for l in self.learnables()]
            self._optimizer = torch.optim.SGD(groups, lr=self.cfg.lr_img)
        return self._optimizer

    def batch_size(self) -> int:
        return self.cfg.batch_syn or self.images.shape[0]

    def sample_window(self, iteration: int) -> tuple[int, int]:
        lo, hi = self.start_epoch_range(iteration)
        expert = int(torch.randint(len(self.trajectories), (1,), generator=self.generator))
        start = int(torch.randint(lo, hi, (1,), generator=self.generator))
        return expert, start

    def matching_loss(self, iteration: int) -> tuple[torch.Tensor, int, int]:
        expert, start_epoch = self.sample_window(iteration)
        trajectory = self.trajectories[expert]
        device = self.images.device
        start = trajectory[start_epoch].to(device)
        target = trajectory[start_epoch + self.cfg.expert_epochs].to(device)
        images, targets = self.student_data()
        schedule = sample_schedule(images.shape[0], tuple(images.shape[2:]), self.cfg.syn_steps, self.batch_size(),
                                   self.generator, self.dsa_config)
        if self.cfg.inner_loop == "constant_memory":
            if self._step_gradient is None:
                self._step_gradient = GraphFreeStepGradient(self.net, self.layout, self.cfg.compile)
            end = unroll_student_constant_memory(self.net, self.layout, start, images, targets, self.lr, schedule,
                                                 self._step_gradient)
        else:
            end = unroll_student(self.net, self.layout, start, images, targets, self.lr, schedule)
        return normalised_distance(end, start, target, self.element_weights()), expert, start_epoch

    def step(self, iteration: int) -> StepResult:
        self.optimizer.zero_grad(set_to_none=True)
        loss, expert, start_epoch = self.matching_loss(iteration)
        tensors = [l.tensor for l in self.learnables()]
        finite, applied = self.guarded_step(loss, tensors, self.optimizer, lambda: self.accept(loss.detach()))
        self.keep_lr_positive()
        return StepResult(float(loss.detach()), start_epoch, expert, applied, finite)

    def current_lr(self) -> float:
        return float(self.lr.detach())

    def snapshot(self) -> dict:
        return {"images": self.images.detach().cpu().clone(), "labels": self.labels.detach().cpu().clone(),
                "lr": self.current_lr()}

    # ----- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "learnables": {l.name: l.tensor.detach().clone() for l in self.learnables()},
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            **self.nonfinite_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for l in self.learnables():
                l.tensor.copy_(state["learnables"][l.name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.load_nonfinite_state(state)
