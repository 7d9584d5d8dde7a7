"""The ci DAG on Dagster's multiprocess executor (kedro-dagster, forkserver steps) against `kedro run`:
the same catalog outputs, bit-identical synthetic sets and expert buffer, and exactly one FINISHED
MLflow run with the same params and metrics. The Dagster run trains its experts in two shards
(`experts.shards: 2`, two concurrent steps), so it also checks that sharding changes nothing."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ddforge.methods.registry import METHODS
from tests.pipelines.test_end_to_end import ENV, inside_project, make_project

try:
    import dagster  # noqa: F401
    import kedro_dagster  # noqa: F401
except ImportError:
    pytest.skip("the dagster extra is not installed (pip install -e '.[dagster]'; scripts/test.sh installs it)",
                allow_module_level=True)

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# torch threads in each Dagster step: two concurrent steps share the cores, unless set from outside
STEP_THREADS = int(os.environ.get("DDFORGE_STEP_THREADS") or os.environ.get("OMP_NUM_THREADS")
                   or max(1, (os.cpu_count() or 1) // 2))


def _run(command: list[str], root: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=root, env={**os.environ, **ENV, **env}, capture_output=True, text=True, check=False,
                            timeout=1200)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    kedro_root = make_project(tmp_path_factory.mktemp("kedro-run"))
    # with the thread count of the Dagster steps (two at once share the cores): a float reduction's
    # order, and so the last bits, depend on it; at equal threads the runs must be bit-identical
    _run([str(BIN / "kedro"), "run", "--env", "ci"], kedro_root, {"OMP_NUM_THREADS": str(STEP_THREADS)})

    dagster_root = make_project(tmp_path_factory.mktemp("dagster-run"))
    (dagster_root / "conf/ci/parameters_shards.yml").write_text("experts:\n  shards: 2\n")
    home = tmp_path_factory.mktemp("dagster-home")
    (home / "dagster.yaml").write_text("")
    log = _run([str(BIN / "dagster"), "job", "execute", "-m", "ddforge.definitions", "-j", "ci__default"],
               dagster_root, {"KEDRO_ENV": "ci", "DAGSTER_HOME": str(home), "DDFORGE_DAGSTER_MAX_CONCURRENT": "2"})
    assert "RUN_SUCCESS" in log, log[-6000:]
    return kedro_root, dagster_root, log


def _outputs(root: Path) -> set[str]:
    """Every file under data/, a versioned entry's version folder left out (`x.pt/<version>/x.pt`)."""
    files = set()
    for path in (root / "data").rglob("*"):
        if path.is_file() and "01_raw" not in path.parts:
            rel = path.relative_to(root).as_posix()
            files.add(re.sub(r"/\d{4}-\d\d-\d\dT[\d.]+Z/", "/", rel))
    return files


def _latest(path: Path) -> Path:
    return max(path.iterdir()) / path.name if path.is_dir() else path


def test_the_dag_ran_as_separate_concurrent_steps(runs):
    _, _, log = runs
    steps = set(re.findall(r" - (\w+) - STEP_START", log))
    assert {"train_experts_shard_0", "train_experts_shard_1", "gather_experts"} <= steps
    assert {f"{m}__distill" for m in METHODS} <= steps
    assert len(set(re.findall(r" - (\d+) - \w+ - STEP_START", log))) >= len(steps)  # a process per step


def test_steps_with_more_work_behind_them_start_first(runs):
    """The expert shards (every trajectory method waits on them) start before the random-real and
    full-data evaluations, which are ready at the same moment (all wait on the shared `preprocess`) but
    have little downstream: without priorities the executor started those first. (DataDAM's
    distillation no longer competes: in conf/ci it waits on its own preparation, `datadam__preprocess`.)"""
    _, _, log = runs
    started = re.findall(r" - (\w+) - STEP_START", log)
    first = {step: started.index(step) for step in set(started)}
    for shard in ("train_experts_shard_0", "train_experts_shard_1"):
        assert first[shard] < first["random_real__evaluate"], started
        assert first[shard] < first["full_data__evaluate"], started


def test_priority_is_the_number_of_ops_downstream():
    import dagster as dg

    from ddforge.definitions import critical_path_first

    @dg.op
    def source():
        return 1

    @dg.op
    def step(x):
        return x

    @dg.job
    def chain():
        a = source()
        step.alias("long_1")(step.alias("long_2")(step.alias("long_3")(a)))
        step.alias("short")(a)

    job = critical_path_first(chain)
    tags = {node.name: node.tags.get("dagster/priority") for node in job.graph.nodes}
    assert tags == {"source": "4", "long_3": "2", "long_2": "1", "long_1": "0", "short": "0"}
    assert chain.execute_in_process().success and job.execute_in_process().success


def test_same_catalog_outputs_as_kedro_run(runs):
    kedro_root, dagster_root, _ = runs
    assert _outputs(dagster_root) == _outputs(kedro_root)
    assert (dagster_root / "data/06_models/privacy_reference.pt").is_file()


def test_synthetic_sets_and_buffers_are_bit_identical(runs):
    kedro_root, dagster_root, _ = runs
    for method in METHODS:
        a, b = (torch.load(_latest(root / f"data/07_model_output/{method}/synthetic_set.pt"), weights_only=True)
                for root in (kedro_root, dagster_root))
        for key in ("images", "labels", "lr"):
            assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), (method, key)
        assert a["meta"]["run_key"] == b["meta"]["run_key"]
    for path in sorted((kedro_root / "data/06_models/expert_buffer").glob("*.pt")):
        other = dagster_root / "data/06_models/expert_buffer" / path.name
        assert torch.equal(torch.load(path, weights_only=True)["trajectory"],
                           torch.load(other, weights_only=True)["trajectory"]), path.name
    for name in ("comparison.csv",):
        assert _latest(kedro_root / "data/08_reporting" / name).read_text() == \
            _latest(dagster_root / "data/08_reporting" / name).read_text()


def test_concurrent_steps_share_the_cores(runs):
    """Two steps at once: each step's torch gets half the cores, not all of them (the forkserver
    sets it before forking any step)."""
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("DDFORGE_STEP_THREADS"):
        pytest.skip("the thread count is set from outside")
    _, dagster_root, _ = runs
    for method in METHODS:
        meta = torch.load(_latest(dagster_root / f"data/07_model_output/{method}/synthetic_set.pt"),
                          weights_only=False)["meta"]
        assert meta["provenance"]["machine"]["torch_threads"] == STEP_THREADS, method


def test_step_threads_setting(monkeypatch):
    from ddforge.definitions import step_threads

    for name in ("DDFORGE_STEP_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DDFORGE_DAGSTER_MAX_CONCURRENT", "1")
    assert step_threads() == (os.cpu_count() or 1)
    monkeypatch.setenv("DDFORGE_DAGSTER_MAX_CONCURRENT", str(4 * (os.cpu_count() or 1)))
    assert step_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert step_threads() is None  # torch already follows OMP_NUM_THREADS
    monkeypatch.setenv("DDFORGE_STEP_THREADS", "2")
    assert step_threads() == 2


def _only_run(root: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ddforge")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, [(r.info.run_id, r.info.status) for r in runs]
    return client, runs[0]


def test_one_finished_mlflow_run_with_the_same_params_and_metrics(runs):
    kedro_root, dagster_root, _ = runs
    _, reference = _only_run(kedro_root)
    client, run = _only_run(dagster_root)
    assert run.info.status == reference.info.status == "FINISHED"
    ignore = {"experts.shards", "parameters.experts.shards"}  # the Dagster run used two shards
    assert {k: v for k, v in run.data.params.items() if k not in ignore} == \
        {k: v for k, v in reference.data.params.items() if k not in ignore}
    assert run.data.params["experts.shards"] == "2" and reference.data.params["experts.shards"] == "1"
    assert set(run.data.metrics) == set(reference.data.metrics)
    for key, value in reference.data.metrics.items():
        if "seconds" not in key:  # wall times differ
            assert math.isclose(run.data.metrics[key], value, rel_tol=0, abs_tol=0), key
    for tag in ("ddforge.git_commit", "ddforge.git_dirty", "ddforge.warnings", "ddforge.data_fingerprint.real_train"):
        assert run.data.tags[tag] == reference.data.tags[tag], tag
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"run_manifest.json", "report", "evaluation"}
    manifest = json.loads((dagster_root / "data/08_reporting/run_manifest.json").read_text())
    expected = json.loads((kedro_root / "data/08_reporting/run_manifest.json").read_text())
    assert manifest["env"] == expected["env"] == "ci"
    assert manifest["data_fingerprints"] == expected["data_fingerprints"]


def test_every_environment_becomes_a_job_with_the_preloading_executor(runs):
    """Last in this module: it translates every environment in this process."""
    _, dagster_root, _ = runs
    with inside_project(dagster_root, {"KEDRO_ENV": "ci"}):
        from ddforge import definitions

        assert definitions.executor_config()["start_method"] == {
            "forkserver": {"preload_modules": ["ddforge.definitions", "ddforge.dagster_steps"]}}
        envs = definitions.environments(dagster_root)
        assert {"ci", "local", "covid", "paper_fmnist"} <= set(envs)
        for env in envs:
            defs = definitions.build_definitions(env, dagster_root)
            assert defs.resolve_job_def(f"{env}__default")
            # what the UI (`kedro dagster dev`) loads: every job's ops in one repository, names unique
            dagster.Definitions.validate_loadable(defs)
