"""Parameters first used late (ipc, in the distill nodes after expert training) are checked before any node."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kedro.io import DataCatalog, MemoryDataset

from ddforge.errors import ConfigError
from ddforge.hooks import ParameterCheckHook
from ddforge.settings import HOOKS
from tests.pipelines.test_end_to_end import ENV, make_project


def test_the_hook_checks_the_form_of_ipc_and_is_registered():
    assert any(isinstance(h, ParameterCheckHook) for h in HOOKS)
    hook = ParameterCheckHook()
    with pytest.raises(ConfigError, match="got the string 'abc'"):
        hook.before_pipeline_run(catalog=DataCatalog({"params:ipc": MemoryDataset("abc")}))
    hook.before_pipeline_run(catalog=DataCatalog({"params:ipc": MemoryDataset({"COVID": 2, "Normal": 1})}))
    hook.before_pipeline_run(catalog=DataCatalog({}))  # a project without ipc: nothing to check


@pytest.mark.slow
def test_kedro_run_with_a_bad_ipc_stops_before_any_node(tmp_path):
    root = make_project(tmp_path / "p")
    kedro = str(Path(sys.executable).with_name("kedro"))
    start = time.monotonic()
    result = subprocess.run([kedro, "run", "--env", "ci", "--params", "ipc=abc"], cwd=root, capture_output=True,
                            text=True, env={**os.environ, **ENV}, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert ("ddforge: error: ipc must be a positive integer, a list of them (one per class) or a mapping "
            "{class name: count}; got the string 'abc'") in result.stderr
    assert "Traceback" not in result.stderr
    assert "Completed node" not in output and not (root / "data" / "02_intermediate").exists()  # no node ran
    print(f"failed after {time.monotonic() - start:.1f} s")


@pytest.mark.slow
def test_kedro_run_with_a_trajectory_method_on_its_own_preparation_stops_before_any_node(tmp_path):
    """conf/ci whitens; MTT's experts are trained on the whitened data, so MTT cannot distil unwhitened."""
    root = make_project(tmp_path / "p")
    kedro = str(Path(sys.executable).with_name("kedro"))
    result = subprocess.run([kedro, "run", "--env", "ci", "--params", "mtt.preprocess.zca=false"], cwd=root,
                            capture_output=True, text=True, env={**os.environ, **ENV}, timeout=300, check=False)
    assert result.returncode != 0
    assert ("ddforge: error: mtt.preprocess sets zca=False, but mtt matches the experts' trajectories, trained on "
            "the shared preparation (preprocess.zca=True)") in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "data" / "02_intermediate").exists()  # no node ran
