"""The outer distillation loop: progress, snapshots, non-finite guard, checkpoint and resume.

Method-agnostic: it drives any object with `step(iteration)`, `state_dict()`,
`load_state_dict()` and `snapshot()`. A checkpoint is only resumed when its `run_key` (hash of
config, data and buffer fingerprints) matches, so a changed config never continues a stale run.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from ddforge.core.atomic import atomic_torch_save
from ddforge.core.progress import Progress
from ddforge.errors import NonFiniteError

log = logging.getLogger(__name__)
# a learned lr this many times below where it started has collapsed (MTT's CIFAR-10 IPC 10 row on
# Fashion-MNIST went from 1e-3 to 5e-8 in 25 iterations); the default run's sets end within 15x of theirs
LR_COLLAPSE = 100


@dataclass
class LoopConfig:
    """How long a distillation runs and how often it logs, snapshots and checkpoints (every method)."""

    iterations: int = 200                 # outer iterations (SeqMatch: per subset)
    checkpoint_every: int = 25            # resume point on disk
    snapshot_every: int = 100             # synthetic set kept for evaluation (and the final one)
    log_every: int = 10                   # progress line with loss and ETA
    max_consecutive_nonfinite: int = 10   # skipped steps in a row before the run stops


@dataclass
class StepResult:
    """What one outer iteration reports to the loop."""

    loss: float
    start_epoch: int
    expert: int
    applied: bool
    finite: bool


class Distiller(Protocol):
    consecutive_nonfinite: int
    nonfinite_total: int

    def step(self, iteration: int) -> StepResult: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
    def snapshot(self) -> dict: ...
    def current_lr(self) -> float: ...
    def extras(self) -> dict: ...


class GuardedUpdates:
    """The one safe optimiser step every distiller takes, and its non-finite counters.

    The optimiser steps only on a finite loss and finite gradients; an update that overflows
    anyway is rolled back, optimiser state (momentum) included, or the overflow would return on the
    next step. Skipped steps are counted for `max_consecutive_nonfinite` and the checkpoint.
    """

    consecutive_nonfinite: int = 0
    nonfinite_total: int = 0

    def guarded_step(
        self, loss: torch.Tensor, tensors: list[torch.Tensor], optimizer: torch.optim.Optimizer,
        accept: Callable[[], bool] = lambda: True,
    ) -> tuple[bool, bool]:
        """Backward and step; returns (finite, applied). `accept` may still veto a finite step."""
        finite = bool(torch.isfinite(loss))
        if finite:
            loss.backward()
            finite = all(t.grad is None or bool(torch.isfinite(t.grad).all()) for t in tensors)
        applied = False
        if finite and accept():
            backup = [t.detach().clone() for t in tensors]
            optimizer_backup = copy.deepcopy(optimizer.state_dict())
            optimizer.step()
            if all(bool(torch.isfinite(t).all()) for t in tensors):
                applied = True
            else:
                with torch.no_grad():
                    for t, b in zip(tensors, backup):
                        t.copy_(b)
                optimizer.load_state_dict(optimizer_backup)
                finite = False
        if finite:
            self.consecutive_nonfinite = 0
        else:
            self.consecutive_nonfinite += 1
            self.nonfinite_total += 1
        return finite, applied

    def nonfinite_state(self) -> dict:
        return {"nonfinite_total": self.nonfinite_total, "consecutive_nonfinite": self.consecutive_nonfinite}

    def load_nonfinite_state(self, state: dict) -> None:
        self.nonfinite_total = int(state["nonfinite_total"])
        self.consecutive_nonfinite = int(state.get("consecutive_nonfinite", 0))


def run_loop(distiller: Distiller, loop: LoopConfig, *, label: str, run_key: str,
             checkpoint_path: str | Path | None) -> dict:
    """`run_distillation` with a LoopConfig; adds what the distiller learned besides images (`extras`)."""
    result = run_distillation(
        distiller, iterations=loop.iterations, label=label, run_key=run_key, checkpoint_path=checkpoint_path,
        checkpoint_every=loop.checkpoint_every, snapshot_every=loop.snapshot_every,
        max_consecutive_nonfinite=loop.max_consecutive_nonfinite, log_every=loop.log_every,
    )
    return {**result, "extras": distiller.extras()}


def _warn_lr_collapse(label: str, iteration: int, first: float, now: float) -> None:
    log.warning("%s: iteration %d: the learned lr fell from %.3g to %.3g (more than %dx); a student that barely "
                "moves gives the images almost no gradient, and the fall rarely recovers: lower lr_lr, or start "
                "from the experts' lr (lr_teacher)", label, iteration, first, now, LR_COLLAPSE)


def run_distillation(
    distiller: Distiller,
    *,
    iterations: int,
    label: str,
    run_key: str,
    checkpoint_path: str | Path | None,
    checkpoint_every: int,
    snapshot_every: int,
    max_consecutive_nonfinite: int,
    log_every: int = 10,
) -> dict:
    """Runs (or resumes) `iterations` steps; returns history and the snapshots taken every `snapshot_every`."""
    history: dict[str, list] = {"loss": [], "lr": [], "start_epoch": [], "applied": []}
    snapshots: list[dict] = []
    begin = 0
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, weights_only=True, map_location="cpu")
        if state.get("run_key") == run_key and int(state["iteration"]) > iterations:
            log.warning("%s: checkpoint %s is at iteration %d, past the %d asked for; starting afresh",
                        label, ckpt, int(state["iteration"]), iterations)
        elif state.get("run_key") == run_key:
            distiller.load_state_dict(state["distiller"])
            history, snapshots, begin = state["history"], state["snapshots"], int(state["iteration"])
            log.info("%s: resuming from checkpoint %s at iteration %d/%d", label, ckpt, begin, iterations)
        else:
            log.warning("%s: ignoring checkpoint %s made with a different config or data", label, ckpt)
    if begin == 0:
        snapshots.append({"iteration": 0, **distiller.snapshot()})
    first_lr = snapshots[0].get("lr")
    lr_floor = -float("inf") if first_lr is None else first_lr / LR_COLLAPSE   # below it, the lr has collapsed
    collapsed_at = next((i for i, lr in enumerate(history["lr"]) if lr < lr_floor), None)
    if collapsed_at is not None:   # before a resume: said again, in this run's log
        _warn_lr_collapse(label, collapsed_at, first_lr, history["lr"][collapsed_at])
    progress = Progress(log, label, iterations, start=begin, every=log_every)
    for it in range(begin, iterations):
        result = distiller.step(it)
        history["loss"].append(result.loss)
        history["lr"].append(distiller.current_lr())
        history["start_epoch"].append(result.start_epoch)
        history["applied"].append(bool(result.applied))
        if not result.finite:
            log.warning("%s: iteration %d: non-finite loss or update, step skipped", label, it)
            if distiller.consecutive_nonfinite >= max_consecutive_nonfinite:
                raise NonFiniteError(
                    f"{label}: {distiller.consecutive_nonfinite} consecutive non-finite iterations "
                    f"(last loss {result.loss}); lower lr_img / lr_lr or check the expert buffer"
                )
        if collapsed_at is None and history["lr"][-1] < lr_floor:
            collapsed_at = it
            _warn_lr_collapse(label, it, first_lr, history["lr"][-1])
        done = it + 1
        if done % snapshot_every == 0 or done == iterations:
            snapshots.append({"iteration": done, **distiller.snapshot()})
        progress.update(done, loss=result.loss, lr=history["lr"][-1])
        if ckpt is not None and (done % checkpoint_every == 0 or done == iterations):
            atomic_torch_save(
                {"run_key": run_key, "iteration": done, "distiller": distiller.state_dict(),
                 "history": history, "snapshots": snapshots},
                ckpt,
            )
    history["nonfinite_total"] = distiller.nonfinite_total
    applied = sum(history["applied"])
    log.info("%s: %d/%d iterations updated the synthetic set", label, applied, len(history["applied"]))
    if iterations and applied == 0:
        log.warning("%s: no iteration updated the synthetic set (every step was gated or skipped): it is "
                    "still its initialisation; check the method's threshold or the learning rates", label)
    return {"history": history, "snapshots": snapshots}
