"""A user error ends a run with one clear message, not a stack trace.

Expected failures (bad input files, incompatible artefacts, impossible configs) are `DDForgeError`s,
possibly wrapped by Kedro. For those the excepthook prints the message alone; anything else is a bug
and keeps its full traceback. `DDFORGE_TRACEBACK=1` shows tracebacks for all.
"""
from __future__ import annotations

import os
import sys
from types import TracebackType

from ddforge.errors import DDForgeError


def user_error(exc: BaseException | None) -> DDForgeError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, DDForgeError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None, default=sys.excepthook) -> None:
    error = user_error(exc)
    if error is None or os.environ.get("DDFORGE_TRACEBACK"):
        default(kind, exc, tb)
        return
    print(f"\nddforge: error: {error}\n(set DDFORGE_TRACEBACK=1 for the full traceback)", file=sys.stderr)


def install() -> None:
    if sys.excepthook is not _hook:
        sys.excepthook = _hook
