"""What a run was made from: config, code version, package versions. Written next to results."""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PACKAGES = ("ddforge", "torch", "torchvision", "kedro", "kedro-datasets", "kedro-mlflow", "mlflow", "numpy")


def git_revision(root: str | Path = ".") -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty if commit else None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def machine() -> dict[str, Any]:
    """What a wall time depends on beyond the code: CPU, threads, huge pages, the memory allocator.
    Two runs of one commit that differ in speed are compared here first. The vector instruction set
    torch's CPU kernels dispatch to (`cpu_capability`; `ATEN_CPU_CAPABILITY` forces one) and the
    thread count also change float rounding: bit-identical artefacts need both to match."""

    cpu = next((line.split(":", 1)[1].strip() for line in (_read("/proc/cpuinfo") or "").splitlines()
                if line.startswith("model name")), platform.processor() or None)
    maps = _read("/proc/self/maps") or ""
    return {
        "cpu": cpu, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "transparent_hugepage": _read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE"),
        "allocator": next((name for name in ("tcmalloc", "jemalloc") if f"lib{name}" in maps), "glibc"),
    }


def provenance(root: str | Path = ".") -> dict[str, Any]:
    """The code a result was made with: git commit, package versions, Python, platform, machine."""
    return {
        "code": git_revision(root),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": machine(),
    }


def run_manifest(params: dict[str, Any], env: str | None, root: str | Path = ".") -> dict[str, Any]:
    """What a run was made from: its parameters and environment, and `provenance`. The one builder
    of the manifest (the run's file and MLflow, each synthetic set, each export)."""
    return {"params": params, "env": env, **provenance(root)}
