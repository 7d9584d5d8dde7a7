"""Methods by name, their parameters resolved once, and the one entry point that runs any of them."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import fields
from pathlib import Path
from typing import Any

import ddforge.methods
from ddforge.core.distill_loop import LoopConfig
from ddforge.core.matching import MatchingConfig
from ddforge.errors import ConfigError
from ddforge.methods.base import DistillContext, InitConfig, Method, MethodConfig

_NOT_METHODS = {"base", "registry"}


def discover_methods() -> dict[str, Method]:
    """Every `Method` subclass defined in a module of `ddforge.methods`, by name (sorted): adding a
    method is adding its module, nothing is registered by hand."""
    found: dict[str, Method] = {}
    for info in pkgutil.iter_modules(ddforge.methods.__path__):
        if info.name in _NOT_METHODS:
            continue
        module = importlib.import_module(f"{ddforge.methods.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Method) and obj.__module__ == module.__name__:
                if obj.name in found:
                    raise ConfigError(f"two methods are named {obj.name!r} ({module.__name__})")
                found[obj.name] = obj()
    return dict(sorted(found.items()))


METHODS: dict[str, Method] = discover_methods()


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name]


def resolve_config(name: str, params: dict[str, Any], shared: dict[str, Any] | None = None) -> MethodConfig:
    """The method's config from flat keys, lowest precedence first: the dataclass defaults, the
    method's own `defaults`, the `shared` block (`trajectory_matching`), its own `params`, and a
    named `preset: <name>` (e.g. DATM's per-IPC settings). Unknown keys are refused."""
    method = get_method(name)
    params = {**method.defaults, **(shared or {}), **params}
    preset = params.pop("preset", None)
    if preset is not None:
        if preset not in method.PRESETS:
            raise ConfigError(f"{name}: unknown preset {preset!r}; known: {sorted(method.PRESETS)}")
        params = {**params, **method.PRESETS[preset]}
    classes = [MatchingConfig, InitConfig, LoopConfig] + ([method.ExtraConfig] if method.ExtraConfig else [])
    configs, used = [], set()
    for cls in classes:
        names = {f.name for f in fields(cls)}
        configs.append(cls(**{k: v for k, v in params.items() if k in names}))
        used |= names
    unknown = set(params) - used
    if unknown:
        raise ConfigError(f"unknown parameters for {name}: {sorted(unknown)}")
    return MethodConfig(*configs[:3], extra=configs[3] if method.ExtraConfig else None)


def distill(name: str, cfg: MethodConfig, ctx: DistillContext, *, run_key: str,
            checkpoint_path: str | Path | None) -> dict:
    """Runs (or resumes) the method; returns the synthetic set."""
    result = get_method(name).run(ctx, cfg, run_key=run_key,
                                  checkpoint_path=Path(checkpoint_path) if checkpoint_path else None)
    final = result["snapshots"][-1]
    return {
        "method": name,
        "images": final["images"],
        "labels": final["labels"],
        "lr": final["lr"],
        "ipc": list(ctx.ipc),
        "class_names": list(ctx.class_names),
        "network": ctx.spec.as_dict(),
        "snapshots": result["snapshots"],
        "history": result["history"],
        "extras": result["extras"],
        **({"stages": result["stages"]} if "stages" in result else {}),
    }
