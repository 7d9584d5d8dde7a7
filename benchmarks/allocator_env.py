"""The allocator ddforge's scripts run with, for the benchmarks' child processes.

scripts/allocator.sh is the one place that decides it (tcmalloc where installed, `DDFORGE_ALLOCATOR`
to opt out); this asks it, so a benchmark measures what `bash scripts/run.sh` runs."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def scripts_preload(force_tcmalloc: bool = False) -> dict[str, str]:
    """`{"LD_PRELOAD": path}` as scripts/allocator.sh sets it (ignoring any LD_PRELOAD of this
    process), or {} for glibc."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if force_tcmalloc:
        env["DDFORGE_ALLOCATOR"] = "tcmalloc"
    out = subprocess.run(["bash", "-c", 'source scripts/allocator.sh 2>/dev/null; printf %s "${LD_PRELOAD:-}"'],
                         cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    return {"LD_PRELOAD": out} if out else {}
