"""Per-class selection of real images (synthetic-set init and the random-real baseline)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

import torch

from ddforge.errors import ConfigError


IPC = int | list[int] | dict[str, int]
_IPC_FORMS = "ipc must be a positive integer, a list of them (one per class) or a mapping {class name: count}"


def _is_count(n: Any) -> bool:
    return isinstance(n, Integral) and not isinstance(n, bool) and n >= 1


def _is_list(value: Any) -> bool:
    """A YAML/OmegaConf list (ListConfig too), but not a string, which is iterable too."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _describe(value: Any) -> str:
    """A parameter value as a user would name it: `the string 'abc'`, `the float 1.5`."""
    if value is None:
        return "null"
    if isinstance(value, (bool, str, float, Integral)):
        kind = {bool: "boolean", str: "string", float: "float"}.get(type(value), "integer")
        return f"the {kind} {value!r}"
    if isinstance(value, Mapping):
        return f"the mapping {dict(value)!r}"
    if _is_list(value):
        return f"the list {list(value)!r}"
    return f"a {type(value).__name__} {value!r}"


def check_ipc_form(ipc: Any) -> None:
    """Refuse an ipc of the wrong form, naming the form given. Needs no class names, so it can run
    before any node (a hook) as well as in `resolve_ipc`: a string is iterable and would otherwise
    read as a list of characters."""
    if _is_count(ipc):
        return
    if isinstance(ipc, Mapping):
        items, form, where = list(ipc.items()), "mapping", "class"
    elif _is_list(ipc):
        items, form, where = list(enumerate(ipc)), "list", "item"
    else:
        raise ConfigError(f"{_IPC_FORMS}; got {_describe(ipc)}")
    if not items:
        raise ConfigError(f"{_IPC_FORMS}; got an empty {form}")
    bad = [(k, n) for k, n in items if not _is_count(n)]
    if bad:
        k, n = bad[0]
        raise ConfigError(f"{_IPC_FORMS}; got {_describe(ipc)}, whose {where} {k!r} is {_describe(n)}")


def resolve_ipc(ipc: IPC, class_names: list[str]) -> list[int]:
    """Images per class as one count per class: an int for all, a list in class order, or a dict by
    class name (imbalanced medical data may want more images of the rarer, harder class)."""
    check_ipc_form(ipc)
    if isinstance(ipc, Mapping):
        unknown, missing = set(ipc) - set(class_names), set(class_names) - set(ipc)
        if unknown or missing:
            raise ConfigError(f"ipc by class: unknown classes {sorted(unknown, key=str)}, "
                              f"missing {sorted(missing)}; classes are {class_names}")
        counts = [ipc[c] for c in class_names]
    elif _is_list(ipc):
        counts = list(ipc)
        if len(counts) != len(class_names):
            raise ConfigError(f"ipc has {len(counts)} entries for {len(class_names)} classes {class_names}")
    else:
        counts = [ipc] * len(class_names)
    return [int(n) for n in counts]


def describe_ipc(counts: list[int] | int) -> int | list[int]:
    """How a report shows per-class counts: one number when every class has the same (an int is
    what evaluations written before counts were per class hold)."""
    if isinstance(counts, int):
        return counts
    return counts[0] if len(set(counts)) == 1 else counts


def select_per_class(labels: torch.Tensor, counts: list[int], generator: torch.Generator,
                     class_names: list[str] | None = None) -> torch.Tensor:
    """Indices of `counts[c]` random images of every class c, grouped by class in class order."""
    chosen = []
    for c, wanted in enumerate(counts):
        members = (labels == c).nonzero().flatten()
        if members.numel() < wanted:
            name = class_names[c] if class_names else str(c)
            raise ConfigError(
                f"class {name!r} has only {members.numel()} training images but ipc asks for {wanted}; "
                "lower ipc for that class or add images of it"
            )
        chosen.append(members[torch.randperm(members.numel(), generator=generator)[:wanted]])
    return torch.cat(chosen)
