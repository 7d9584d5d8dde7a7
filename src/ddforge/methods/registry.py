"""Methods by name, and the one entry point that runs any of them."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

from ddforge.core.distill_loop import run_distillation
from ddforge.core.matching import MatchingConfig
from ddforge.errors import ConfigError
from ddforge.methods import mtt
from ddforge.methods.base import DistillContext

METHODS: dict[str, ModuleType] = {"mtt": mtt}


@dataclass
class LoopConfig:
    iterations: int = 200
    checkpoint_every: int = 25
    snapshot_every: int = 100
    log_every: int = 10


def _split(params: dict[str, Any], *classes: type) -> tuple[list[Any], dict[str, Any]]:
    configs, used = [], set()
    for cls in classes:
        names = {f.name for f in fields(cls)}
        configs.append(cls(**{k: v for k, v in params.items() if k in names}))
        used |= names
    return configs, {k: v for k, v in params.items() if k not in used}


def distill(
    method: str, params: dict[str, Any], ctx: DistillContext, *, run_key: str, checkpoint_path: str | Path | None
) -> dict:
    """Builds the method's distiller from flat parameters, runs (or resumes) it, returns the synthetic set."""
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; known: {sorted(METHODS)}")
    module = METHODS[method]
    extra_cls = getattr(module, "ExtraConfig", None)
    classes = [MatchingConfig, module.InitConfig, LoopConfig] + ([extra_cls] if extra_cls else [])
    configs, unknown = _split(params, *classes)
    if unknown:
        raise ConfigError(f"unknown parameters for {method}: {sorted(unknown)}")
    matching, init, loop = configs[:3]
    extra = configs[3] if extra_cls else None
    distiller = module.build(ctx, matching, init, extra)
    result = run_distillation(
        distiller, iterations=loop.iterations, label=method, run_key=run_key,
        checkpoint_path=checkpoint_path, checkpoint_every=loop.checkpoint_every,
        snapshot_every=loop.snapshot_every, max_consecutive_nonfinite=matching.max_consecutive_nonfinite,
        log_every=loop.log_every,
    )
    final = result["snapshots"][-1]
    return {
        "method": method,
        "images": final["images"],
        "labels": final["labels"],
        "lr": final["lr"],
        "ipc": init.ipc,
        "class_names": list(ctx.class_names),
        "network": ctx.spec.as_dict(),
        "snapshots": result["snapshots"],
        "history": result["history"],
        "extras": getattr(distiller, "extras", lambda: {})(),
    }
