"""SIGKILL during expert training and during distillation; the rerun resumes from the last
checkpoint and ends with exactly the artefacts of an uninterrupted run (same config and seed)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.pipelines.test_end_to_end import ENV, make_project

KEDRO = str(Path(sys.executable).with_name("kedro"))
PARAMS = ("experts.num_experts=3,experts.epochs=80,mtt.distill.iterations=40,mtt.distill.checkpoint_every=5,"
          "mtt.distill.log_every=1,mtt.distill.snapshot_every=20")
COMMAND = [KEDRO, "run", "--env", "ci", "--pipelines", "ingest,experts,mtt", "--params", PARAMS]


def run_to_end(root: Path) -> str:
    result = subprocess.run(COMMAND, cwd=root, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def run_until(root: Path, pattern: str) -> str:
    """Starts the run and SIGKILLs it as soon as a log line matches `pattern`."""
    proc = subprocess.Popen(COMMAND, cwd=root, env={**os.environ, **ENV}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if re.search(pattern, line):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    return "".join(seen)


def artefacts(root: Path) -> tuple[dict, list[torch.Tensor]]:
    versions = sorted((root / "data/07_model_output/mtt/synthetic_set.pt").iterdir())
    synthetic = torch.load(versions[-1] / "synthetic_set.pt", weights_only=True)
    buffer = [torch.load(p, weights_only=True)["trajectory"]
              for p in sorted((root / "data/06_models/expert_buffer").glob("*.pt"))]
    return synthetic, buffer


@pytest.mark.slow
def test_sigkill_during_experts_and_distillation_then_resume(tmp_path):
    reference = make_project(tmp_path / "reference")
    run_to_end(reference)

    interrupted = make_project(tmp_path / "interrupted")
    run_until(interrupted, r"experts 1/3")
    log = run_until(interrupted, r"mtt 12/40")
    assert "expert_000 already trained" in log  # the first expert came from its checkpoint
    log = run_to_end(interrupted)
    assert re.search(r"mtt: resuming from checkpoint .* at iteration 10/40", log), log[-3000:]

    ref_set, ref_buffer = artefacts(reference)
    got_set, got_buffer = artefacts(interrupted)
    assert len(got_buffer) == 3 and all(torch.equal(a, b) for a, b in zip(ref_buffer, got_buffer))
    assert torch.equal(ref_set["images"], got_set["images"])
    assert ref_set["lr"] == got_set["lr"]
    assert ref_set["history"]["loss"] == got_set["history"]["loss"]
    # no temporary files were left behind by the killed writes
    assert not list(interrupted.rglob("*.tmp"))
