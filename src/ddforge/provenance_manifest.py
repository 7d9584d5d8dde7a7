"""What a run was made from: config, code version, package versions. Written next to results."""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

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


def provenance(root: str | Path = ".") -> dict[str, Any]:
    """The code a result was made with: git commit, package versions, Python, platform."""
    return {
        "code": git_revision(root),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_manifest(params: dict[str, Any], env: str | None, root: str | Path = ".") -> dict[str, Any]:
    """What a run was made from: its parameters and environment, and `provenance`. The one builder
    of the manifest (the run's file and MLflow, each synthetic set, each export)."""
    return {"params": params, "env": env, **provenance(root)}
