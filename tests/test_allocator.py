"""scripts/allocator.sh: tcmalloc preloaded for the README's commands, a user's choice kept, and the
run's provenance telling which allocator a process really runs on."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TCMALLOC = Path(f"/usr/lib/{platform.machine()}-linux-gnu/libtcmalloc_minimal.so.4")


def preload_after_sourcing(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "DDFORGE_ALLOCATOR")}
    out = subprocess.run(["bash", "-c", 'source scripts/allocator.sh; printf %s "${LD_PRELOAD:-}"'], cwd=ROOT,
                         env={**base, **env}, capture_output=True, text=True, check=True)
    return out.stdout


def machine_facts(**env: str) -> dict:
    code = "import json; from ddforge.provenance_manifest import machine; print(json.dumps(machine()))"
    base = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not TCMALLOC.exists(), reason="libtcmalloc-minimal4 is not installed")
def test_the_scripts_preload_tcmalloc_unless_told_otherwise():
    assert preload_after_sourcing() == str(TCMALLOC)
    assert preload_after_sourcing(DDFORGE_ALLOCATOR="glibc") == ""
    assert preload_after_sourcing(LD_PRELOAD="/some/other.so") == "/some/other.so"


@pytest.mark.skipif(not TCMALLOC.exists(), reason="libtcmalloc-minimal4 is not installed")
def test_provenance_names_the_allocator_the_process_runs_on():
    assert machine_facts(LD_PRELOAD=str(TCMALLOC))["allocator"] == "tcmalloc"
    facts = machine_facts()
    assert facts["allocator"] == "glibc"
    assert facts["cpus"] == os.cpu_count() and facts["torch_threads"] >= 1


def test_provenance_names_the_vector_instruction_set_the_kernels_dispatch_to():
    """It changes float rounding: two machines' artefacts are bit-identical only when it matches."""
    assert machine_facts(ATEN_CPU_CAPABILITY="default")["cpu_capability"] == "DEFAULT"
    assert machine_facts()["cpu_capability"] in {"DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256"} | {
        f"SVE{n}" for n in (128, 256, 512)}
