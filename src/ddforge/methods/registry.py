"""Methods by name, and the one entry point that runs any of them.

A method module provides `InitConfig`, optionally `ExtraConfig` (its own parameters), and either
`build(ctx, matching, init, extra)` returning one distiller driven by the shared loop, or
`run(ctx, matching, init, extra, loop, run_key=, checkpoint_path=)` for multi-stage methods
(SeqMatch). `USES_BUFFER = False` marks methods that need no expert trajectories (DataDAM).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

from ddforge.core.distill_loop import run_distillation
from ddforge.core.matching import MatchingConfig
from ddforge.errors import ConfigError
from ddforge.methods import datadam, datm, iadd, mtt, seqmatch
from ddforge.methods.base import DistillContext

METHODS: dict[str, ModuleType] = {"mtt": mtt, "datm": datm, "seqmatch": seqmatch, "datadam": datadam, "iadd": iadd}


def uses_buffer(method: str) -> bool:
    return getattr(METHODS[method], "USES_BUFFER", True)


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


def run_single(distiller: Any, loop: LoopConfig, matching: MatchingConfig, *, label: str, run_key: str,
               checkpoint_path: str | Path | None) -> dict:
    result = run_distillation(
        distiller, iterations=loop.iterations, label=label, run_key=run_key,
        checkpoint_path=checkpoint_path, checkpoint_every=loop.checkpoint_every,
        snapshot_every=loop.snapshot_every, max_consecutive_nonfinite=matching.max_consecutive_nonfinite,
        log_every=loop.log_every,
    )
    return {**result, "extras": getattr(distiller, "extras", lambda: {})()}


def resolve_preset(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """`preset: <name>` replaces the listed keys with a method's named config (e.g. DATM's per-IPC
    settings, DataDAM's paper vs released-code values); the other keys keep their parameter values."""
    params = dict(params)
    name = params.pop("preset", None)
    if name is None:
        return params
    presets = getattr(METHODS[method], "PRESETS", {})
    if name not in presets:
        raise ConfigError(f"{method}: unknown preset {name!r}; known: {sorted(presets)}")
    return {**params, **presets[name]}


def _configs(method: str, params: dict[str, Any]) -> tuple[MatchingConfig, Any, LoopConfig, Any]:
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; known: {sorted(METHODS)}")
    params = resolve_preset(method, params)
    extra_cls = getattr(METHODS[method], "ExtraConfig", None)
    classes = [MatchingConfig, METHODS[method].InitConfig, LoopConfig] + ([extra_cls] if extra_cls else [])
    configs, unknown = _split(params, *classes)
    if unknown:
        raise ConfigError(f"unknown parameters for {method}: {sorted(unknown)}")
    return configs[0], configs[1], configs[2], configs[3] if extra_cls else None


def buffer_epochs_needed(method: str, params: dict[str, Any]) -> int:
    """Expert epochs the shared buffer must hold for this method's matching window(s)."""
    matching, _, _, extra = _configs(method, params)
    custom = getattr(METHODS[method], "buffer_epochs_needed", None)
    return custom(matching, extra) if custom else matching.max_start_epoch + matching.expert_epochs


def distill(
    method: str, params: dict[str, Any], ctx: DistillContext, *, run_key: str, checkpoint_path: str | Path | None
) -> dict:
    """Builds the method's distiller from flat parameters, runs (or resumes) it, returns the synthetic set."""
    matching, init, loop, extra = _configs(method, params)
    module = METHODS[method]
    if hasattr(module, "run"):
        result = module.run(ctx, matching, init, extra, loop, run_key=run_key, checkpoint_path=checkpoint_path)
    else:
        result = run_single(module.build(ctx, matching, init, extra), loop, matching, label=method,
                            run_key=run_key, checkpoint_path=checkpoint_path)
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
        "extras": result["extras"],
        **({"stages": result["stages"]} if "stages" in result else {}),
    }
