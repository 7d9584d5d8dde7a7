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
from ddforge.core.distill_loop import run_loop
from ddforge.core.evaluation import EvalConfig, Stage, train_curriculum
from ddforge.core.experts import ExpertConfig, train_expert
from ddforge.core.matching import TrajectoryMatcher
from ddforge.core.networks import build_network
from ddforge.core.seeding import derive_seed
from ddforge.core.training import as_targets
from ddforge.errors import ConfigError
from ddforge.methods.base import DistillContext, Evaluate, Method, MethodConfig, initial_images

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
        train_curriculum(net, stages, curriculum_cfg, ctx.generator("seqmatch-curriculum", k, e))
        result = train_expert(ctx.spec, ctx.images, ctx.labels, expert_cfg, seed=0, net=net, device=ctx.device,
                              generator=ctx.generator("seqmatch-expert-batches", k, e))
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


def _window(cfg: MethodConfig, k: int) -> tuple[int, int]:
    """Start-epoch window of subset k: its own from `subset_windows`, else the matching window."""
    windows = cfg.extra.subset_windows
    return tuple(windows[k]) if windows else (cfg.matching.min_start_epoch, cfg.matching.max_start_epoch)


class SeqMatch(Method):
    name = "seqmatch"
    ExtraConfig = ExtraConfig

    def buffer_epochs_needed(self, cfg: MethodConfig) -> int:
        """Only the first subset uses the shared buffer; later ones use their own conditioned experts."""
        return _window(cfg, 0)[1] + cfg.matching.expert_epochs

    def run(self, ctx: DistillContext, cfg: MethodConfig, *, run_key: str, checkpoint_path: Path | None) -> dict:
        if len(set(ctx.ipc)) > 1:
            raise ConfigError("seqmatch splits one IPC into subsets; per-class IPC is not supported, use one ipc")
        matching, extra = cfg.matching, cfg.extra
        ipcs = split_ipc(ctx.ipc[0], extra.num_subsets)
        if extra.subset_windows is not None and len(extra.subset_windows) < len(ipcs):
            raise ConfigError(f"seqmatch: subset_windows has {len(extra.subset_windows)} entries for {len(ipcs)} subsets")
        images, labels = initial_images(ctx, cfg.init)
        frozen_x, frozen_y = images[:0], labels[:0]
        stages, curriculum, history = [], [], {}
        for k, ipc_k in enumerate(ipcs):
            window = _window(cfg, k)
            if k == 0:
                trajectories = ctx.trajectories
            else:
                if window[1] + matching.expert_epochs > extra.conditioned_expert_epochs:
                    raise ConfigError(f"seqmatch: subset {k + 1} window {window} + expert_epochs exceeds "
                                      f"conditioned_expert_epochs={extra.conditioned_expert_epochs}")
                trajectories = _cached(
                    checkpoint_path.with_suffix(f".stage{k}.experts.pt") if checkpoint_path else None, f"{run_key}-{k}",
                    lambda: conditioned_trajectories(ctx, curriculum, extra, k))
            idx = _subset_index(ipcs, k, ctx.ipc[0], ctx.num_classes).to(images.device)
            matcher = SubsetMatcher(
                matching, ctx.student_network(), trajectories, images[idx], labels[idx], ctx.generator("matching", k),
                frozen_images=frozen_x, frozen_labels=frozen_y, window=window,
            )
            result = run_loop(matcher, cfg.loop, label=f"seqmatch[{k + 1}/{len(ipcs)}]", run_key=f"{run_key}-{k}",
                              checkpoint_path=checkpoint_path.with_suffix(f".stage{k}.pt") if checkpoint_path else None)
            final = result["snapshots"][-1]
            stages.append({"ipc": ipc_k, "size": int(final["images"].shape[0]), "lr": float(final["lr"])})
            for key, values in result["history"].items():
                history.setdefault(key, [] if isinstance(values, list) else 0)
                history[key] = history[key] + values
            prefix_x, prefix_y = frozen_x.cpu(), frozen_y.cpu()
            frozen_x = torch.cat([frozen_x, final["images"].to(images.device)])
            frozen_y = torch.cat([frozen_y, final["labels"].to(labels.device)])
            curriculum.append((frozen_x, frozen_y, float(final["lr"])))
        snapshots = [{**s, "images": torch.cat([prefix_x, s["images"]]), "labels": torch.cat([prefix_y, s["labels"]])}
                     for s in result["snapshots"]]
        return {"snapshots": snapshots, "history": history, "extras": {}, "stages": stages}

    def training_stages(self, synthetic_set: dict, snapshot: dict, upto: int | None = None) -> list[Stage]:
        """The cumulative unions S_1, S_1∪S_2, ... (the first `upto`), each with the lr learned for it;
        the last union uses the snapshot's lr."""
        targets = as_targets(snapshot["labels"])
        stages = synthetic_set["stages"]
        out, end = [], 0
        for k, stage in enumerate(stages[:upto]):
            end += stage["size"]
            lr = snapshot["lr"] if k == len(stages) - 1 else stage["lr"]
            out.append((snapshot["images"][:end], targets[:end], lr))
        return out

    def extra_evaluations(self, synthetic_set: dict, evaluate: Evaluate, final_checkpoint: dict) -> dict:
        """Every cumulative union of the final set, S_1 … S_1∪…∪S_K (the paper's per-subset curve)."""
        stages = synthetic_set["stages"]
        if len(stages) < 2:
            return {}
        final = synthetic_set["snapshots"][-1]
        return {"cumulative": [
            {"subsets": j, "images": sum(s["size"] for s in stages[:j]),
             **evaluate(self.training_stages(synthetic_set, final, j))}
            for j in range(1, len(stages))
        ] + [{"subsets": len(stages), "images": int(final["images"].shape[0]), **final_checkpoint}]}
