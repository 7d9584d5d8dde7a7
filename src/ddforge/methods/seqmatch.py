"""SeqMatch (Du et al., NeurIPS 2023): sequential subset matching on top of MTT (methods.md §4).

The IPC budget is split into K subsets distilled one after another. Subset k is matched against
trajectories of experts that were first trained on the earlier subsets (S_1, then S_1∪S_2, …, each
with its learned lr) and then on real data, so it captures what the earlier subsets could not.
Earlier subsets are frozen but stay in the student's batches. With IPC < K there is nothing to
split: at IPC 1 SeqMatch is MTT (as in the paper).

Avoids the released code's defects (§4.4): the curriculum's epochs are an explicit parameter,
learned lrs are floats, and the augmentation of earlier subsets is actually applied (by the
shared inner loop, which augments every student batch).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ddforge.core.atomic import atomic_torch_save
from ddforge.core.evaluation import EvalConfig, train_curriculum
from ddforge.core.experts import ExpertConfig, train_expert
from ddforge.core.matching import MatchingConfig, TrajectoryMatcher
from ddforge.core.networks import build_network
from ddforge.core.seeding import derive_seed, make_generator
from ddforge.errors import ConfigError
from ddforge.methods.base import DistillContext
from ddforge.methods.mtt import InitConfig, initial_images

log = logging.getLogger(__name__)


@dataclass
class ExtraConfig:
    num_subsets: int = 2
    subset_windows: list | None = None      # per subset [min_start, max_start); None: the matching window
    conditioned_num_experts: int = 2
    conditioned_expert_epochs: int = 6      # real-data epochs after the curriculum (paper: 20)
    curriculum_epochs: int = 100            # epochs on each earlier union (paper: 1000, §1.5 protocol)
    conditioned_lr_teacher: float = 0.01


def split_ipc(ipc: int, num_subsets: int) -> list[int]:
    """IPC 50 in 3 subsets -> [17, 17, 16]; never more subsets than images per class."""
    k = max(1, min(num_subsets, ipc))
    base, rest = divmod(ipc, k)
    return [base + (1 if i < rest else 0) for i in range(k)]


def buffer_epochs_needed(matching: MatchingConfig, extra: ExtraConfig) -> int:
    """Only the first subset uses the shared buffer; later ones use their own conditioned experts."""
    window = extra.subset_windows[0] if extra.subset_windows else (matching.min_start_epoch, matching.max_start_epoch)
    return window[1] + matching.expert_epochs


class SubsetMatcher(TrajectoryMatcher):
    """MTT on the newest subset; the frozen earlier subsets join every student batch pool."""

    def __init__(self, *args, frozen_images: torch.Tensor, frozen_labels: torch.Tensor,
                 window: tuple[int, int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.frozen_images, self.frozen_labels, self.window = frozen_images.detach(), frozen_labels, window

    def start_epoch_range(self, iteration: int) -> tuple[int, int]:
        return self.window

    def student_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([self.frozen_images, self.images]), torch.cat([self.frozen_labels, self.targets()])


def conditioned_trajectories(ctx: DistillContext, stages: list[tuple], extra: ExtraConfig, k: int) -> list[torch.Tensor]:
    """Experts that first learn the earlier subsets (curriculum), then train on real data."""
    curriculum_cfg = EvalConfig(epochs=extra.curriculum_epochs)
    expert_cfg = ExpertConfig(epochs=extra.conditioned_expert_epochs, lr=extra.conditioned_lr_teacher)
    trajectories = []
    for e in range(extra.conditioned_num_experts):
        net = build_network(ctx.spec, derive_seed(ctx.seed, "seqmatch-expert", k, e), ctx.device)
        train_curriculum(net, stages, curriculum_cfg, make_generator(ctx.seed, "seqmatch-curriculum", k, e))
        result = train_expert(ctx.spec, ctx.images, ctx.labels, expert_cfg, seed=0, net=net, device=ctx.device,
                              generator=make_generator(ctx.seed, "seqmatch-expert-batches", k, e))
        trajectories.append(result["trajectory"])
        log.info("seqmatch: conditioned expert %d/%d for subset %d trained", e + 1, extra.conditioned_num_experts, k + 1)
    return trajectories


def _cached(path: Path | None, key: str, make) -> list[torch.Tensor]:
    if path is not None and path.exists():
        saved = torch.load(path, weights_only=True)
        if saved.get("key") == key:
            return saved["trajectories"]
    value = make()
    if path is not None:
        atomic_torch_save({"key": key, "trajectories": value}, path)
    return value


def _subset_index(ipcs: list[int], k: int, ipc: int, num_classes: int) -> torch.Tensor:
    """Rows of subset k in the class-ordered initial set (ipc images per class, class after class)."""
    lo = sum(ipcs[:k])
    return torch.cat([torch.arange(c * ipc + lo, c * ipc + lo + ipcs[k]) for c in range(num_classes)])


def run(ctx: DistillContext, matching: MatchingConfig, init: InitConfig, extra: ExtraConfig, loop, *,
        run_key: str, checkpoint_path: str | Path | None) -> dict:
    from ddforge.methods.registry import run_single  # the shared single-distiller loop

    if not isinstance(init.ipc, int):
        if len(set(init.ipc)) > 1:
            raise ConfigError("seqmatch splits one IPC into subsets; per-class IPC is not supported, use one ipc")
        init = InitConfig(ipc=init.ipc[0], pix_init=init.pix_init)
    ipcs = split_ipc(init.ipc, extra.num_subsets)
    if extra.subset_windows is not None and len(extra.subset_windows) < len(ipcs):
        raise ConfigError(f"seqmatch: subset_windows has {len(extra.subset_windows)} entries for {len(ipcs)} subsets")
    images, labels = initial_images(ctx, init)
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    frozen_x, frozen_y = images[:0], labels[:0]
    stages, curriculum, history = [], [], {}
    for k, ipc_k in enumerate(ipcs):
        window = tuple(extra.subset_windows[k]) if extra.subset_windows else (matching.min_start_epoch, matching.max_start_epoch)
        if k == 0:
            trajectories = ctx.trajectories
        else:
            if window[1] + matching.expert_epochs > extra.conditioned_expert_epochs:
                raise ConfigError(f"seqmatch: subset {k + 1} window {window} + expert_epochs exceeds "
                                  f"conditioned_expert_epochs={extra.conditioned_expert_epochs}")
            trajectories = _cached(ckpt.with_suffix(f".stage{k}.experts.pt") if ckpt else None, f"{run_key}-{k}",
                                   lambda: conditioned_trajectories(ctx, curriculum, extra, k))
        idx = _subset_index(ipcs, k, init.ipc, ctx.num_classes).to(images.device)
        matcher = SubsetMatcher(
            matching, build_network(ctx.spec, derive_seed(ctx.seed, "student"), ctx.device), trajectories,
            images[idx], labels[idx], make_generator(ctx.seed, "matching", k),
            frozen_images=frozen_x, frozen_labels=frozen_y, window=window,
        )
        result = run_single(matcher, loop, matching, label=f"seqmatch[{k + 1}/{len(ipcs)}]", run_key=f"{run_key}-{k}",
                            checkpoint_path=ckpt.with_suffix(f".stage{k}.pt") if ckpt else None)
        final = result["snapshots"][-1]
        stages.append({"ipc": ipc_k, "size": int(final["images"].shape[0]), "lr": float(final["lr"])})
        for key, values in result["history"].items():
            history.setdefault(key, [] if isinstance(values, list) else 0)
            history[key] = history[key] + values
        prefix_x, prefix_y = frozen_x.cpu(), frozen_y.cpu()
        frozen_x, frozen_y = torch.cat([frozen_x, final["images"].to(images.device)]), torch.cat([frozen_y, final["labels"].to(labels.device)])
        curriculum.append((frozen_x, frozen_y, float(final["lr"])))
    snapshots = [{**s, "images": torch.cat([prefix_x, s["images"]]), "labels": torch.cat([prefix_y, s["labels"]])}
                 for s in result["snapshots"]]
    return {"snapshots": snapshots, "history": history, "extras": {}, "stages": stages}
