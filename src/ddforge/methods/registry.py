"""Methods by name, their parameters resolved once, and the one entry point that runs any of them."""
from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import fields
from pathlib import Path
from typing import Any

import ddforge.methods
from ddforge.core.distill_loop import LoopConfig
from ddforge.core.matching import MatchingConfig
from ddforge.errors import ConfigError
from ddforge.methods.base import DistillContext, InitConfig, Method, MethodConfig

log = logging.getLogger(__name__)

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


def preset_settings(name: str, preset: str, ipc: list[int] | None) -> tuple[str, dict[str, Any]]:
    """The named preset's keys. A name without `_ipc<N>` (e.g. `cifar10`) picks the dataset's preset
    for this run's IPC, so one environment serves `--params ipc=1` and `--params ipc=10`."""
    known = get_method(name).PRESETS
    if preset not in known and ipc and len(set(ipc)) == 1 and f"{preset}_ipc{ipc[0]}" in known:
        preset = f"{preset}_ipc{ipc[0]}"
    if preset not in known:
        raise ConfigError(f"{name}: no preset {preset!r}" + (f" for ipc {ipc[0]}" if ipc else "")
                          + f"; known: {sorted(known)}")
    return preset, known[preset]


def resolve_config(name: str, params: dict[str, Any], shared: dict[str, Any] | None = None,
                   ipc: list[int] | None = None) -> MethodConfig:
    """The method's config from flat keys, lowest precedence first: the dataclass defaults, the
    method's own `defaults`, the `shared` block (`trajectory_matching`), a named `preset: <name>`
    (a paper's setting), and the method's own `params` (`<method>.distill`, YAML or command line):
    what a user sets for this method wins over the preset, and every such override is logged.
    Unknown keys are refused."""
    method = get_method(name)
    own = dict(params)
    preset = own.pop("preset", None)
    merged = {**method.defaults, **(shared or {})}
    if preset is not None:
        preset, values = preset_settings(name, preset, ipc)
        for key in sorted(set(values) & set(shared or {})):
            if values[key] != shared[key]:
                log.info("%s: preset %s sets %s=%r over trajectory_matching's %r", name, preset, key, values[key],
                         shared[key])
        for key in sorted(set(values) & set(own)):
            if values[key] != own[key]:
                log.warning("%s: %s=%r (set in %s.distill) overrides preset %s's %r", name, key, own[key], name, preset,
                            values[key])
        merged.update(values)
    merged.update(own)
    classes = [MatchingConfig, InitConfig, LoopConfig] + ([method.ExtraConfig] if method.ExtraConfig else [])
    configs, used = [], set()
    for cls in classes:
        names = {f.name for f in fields(cls)}
        configs.append(cls(**{k: v for k, v in merged.items() if k in names}))
        used |= names
    unknown = set(merged) - used
    if unknown:
        raise ConfigError(f"unknown parameters for {name}: {sorted(unknown)}")
    return MethodConfig(*configs[:3], extra=configs[3] if method.ExtraConfig else None)


def distill(name: str, cfg: MethodConfig, ctx: DistillContext, *, run_key: str,
            checkpoint_path: str | Path | None) -> dict:
    """Runs (or resumes) the method; returns the synthetic set, which records the network it was
    distilled with (`Method.network_spec`): the one its evaluation trains."""
    method = get_method(name)
    result = method.run(ctx, cfg, run_key=run_key, checkpoint_path=Path(checkpoint_path) if checkpoint_path else None)
    final = result["snapshots"][-1]
    return {
        "method": name,
        "images": final["images"],
        "labels": final["labels"],
        "lr": final["lr"],
        "ipc": list(ctx.ipc),
        "class_names": list(ctx.class_names),
        "network": method.network_spec(ctx.spec, cfg).as_dict(),
        "snapshots": result["snapshots"],
        "history": result["history"],
        "extras": result["extras"],
        **({"stages": result["stages"]} if "stages" in result else {}),
    }
