"""Scale-out without an orchestrator: expert shards give the buffer of one shard bit for bit, every
hand-off between nodes is on disk, and the run's MLflow records survive steps in separate processes."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from ddforge.pipelines.distill.nodes import load_trajectories
from ddforge.pipelines.experts.buffer import ExpertBufferDataset
from ddforge.pipelines.experts.nodes import gather_experts, train_experts
from ddforge.pipelines.experts.pipeline import create_pipeline, shard_dataset
from tests.pipelines.test_end_to_end import inside_project, make_project

pytestmark = pytest.mark.usefixtures("one_thread")

NETWORK = {"width": 4, "depth": 2}
EXPERTS = {"num_experts": 5, "epochs": 2, "lr": 0.05, "batch_size": 16, "compile": False, "dsa": True}


def _split() -> dict:
    g = torch.Generator().manual_seed(0)
    return {"images": torch.randn(40, 1, 8, 8, generator=g), "labels": torch.arange(40) % 3,
            "class_names": ["a", "b", "c"], "data_fingerprint": "f"}


def _buffer(path: Path, shard: str | None = None) -> ExpertBufferDataset:
    return ExpertBufferDataset(path=str(path), dataset={"type": "ddforge.io.torch_dataset.TorchDataset"}, shard=shard)


def _train_sharded(root: Path, shards: int) -> dict:
    """What the pipeline does with `experts.shards`: each shard node saves its own view, and
    `gather_experts` hands them on (each step could be a process of its own: only files travel)."""
    split, params = _split(), {**EXPERTS, "shards": shards}
    runtime = {"device": "cpu", "checkpoint_dir": str(root / "checkpoints")}
    folder = root / "expert_buffer"
    if shards == 1:
        _buffer(folder).save(train_experts(split, split, NETWORK, params, runtime, 0))
    else:
        for k in range(shards):
            _buffer(folder, f"{k}/{shards}").save(train_experts(split, split, NETWORK, params, runtime, 0, shard=k))
        views = [_buffer(folder, f"{k}/{shards}").load() for k in range(shards)]
        _buffer(folder).save(gather_experts(params, *views))
    return _buffer(folder).load()


def test_sharded_experts_give_the_one_shard_buffer_bit_for_bit(tmp_path):
    one = _train_sharded(tmp_path / "k1", 1)
    two = _train_sharded(tmp_path / "k2", 2)
    three = _train_sharded(tmp_path / "k3", 3)
    assert list(one) == list(two) == list(three) == [f"expert_{i:03d}" for i in range(5)]
    reference = load_trajectories(one, needed_epochs=1)
    for other in (two, three):
        trajectories, finals, metas = load_trajectories(other, needed_epochs=1)
        assert all(torch.equal(a, b) for a, b in zip(trajectories, reference[0], strict=True))
        assert all(torch.equal(a, b) for a, b in zip(finals, reference[1], strict=True))
        assert metas == reference[2]
    # the same files on disk, and the shards share the experts' checkpoints (same run key)
    for name in one:
        assert (tmp_path / "k1/expert_buffer" / f"{name}.pt").read_bytes() == \
            (tmp_path / "k2/expert_buffer" / f"{name}.pt").read_bytes()
    assert [p.name for p in (tmp_path / "k1/checkpoints/experts").iterdir()] == \
        [p.name for p in (tmp_path / "k2/checkpoints/experts").iterdir()]


def test_the_run_key_of_one_shard_is_unchanged(tmp_path):
    """`shards` (like `vmap_group`) is not part of the experts' run key: a buffer or checkpoints made
    before the setting existed stay valid."""
    split = _split()
    params = {**EXPERTS, "num_experts": 1, "epochs": 1}
    for sub, p in (("without", params), ("with", {**params, "shards": 1}), ("two", {**params, "shards": 2})):
        train_experts(split, split, NETWORK, p, {"device": "cpu", "checkpoint_dir": str(tmp_path / sub)}, 0)
    keys = {sub: [p.name for p in (tmp_path / sub / "experts").iterdir()] for sub in ("without", "with", "two")}
    assert keys["without"] == keys["with"] == keys["two"]


def test_more_experts_train_only_the_new_ones(tmp_path):
    """Expert i depends on its index alone, so growing `num_experts` reuses the experts already trained:
    one checkpoint folder, the first experts' files untouched."""
    split = _split()
    runtime = {"device": "cpu", "checkpoint_dir": str(tmp_path)}
    two = train_experts(split, split, NETWORK, {**EXPERTS, "num_experts": 2}, runtime, 0)
    (folder,) = (tmp_path / "experts").iterdir()
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    three = train_experts(split, split, NETWORK, {**EXPERTS, "num_experts": 3}, runtime, 0)
    assert [p.name for p in (tmp_path / "experts").iterdir()] == [folder.name]
    after = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert sorted(after) == ["expert_000.pt", "expert_001.pt", "expert_002.pt"]
    assert {name: after[name] for name in before} == before
    assert all(torch.equal(two[n]["trajectory"], three[n]["trajectory"]) for n in two)


def test_a_shard_replaces_only_its_own_experts_and_gathering_copies_nothing(tmp_path):
    folder = tmp_path / "buffer"
    part = {"trajectory": torch.zeros(2, 3), "meta": {}}
    _buffer(folder).save({f"expert_{i:03d}": part for i in range(6)})       # an earlier run with 6 experts
    _buffer(folder, "1/2").save({"expert_001": part, "expert_003": part})   # now 4 experts, shard 1 of 2
    assert sorted(p.stem for p in folder.iterdir()) == ["expert_000", "expert_001", "expert_002", "expert_003",
                                                          "expert_004"]   # shard 0's old files untouched
    _buffer(folder, "0/2").save({"expert_000": part, "expert_002": part})
    assert sorted(_buffer(folder, "0/2").load()) == ["expert_000", "expert_002"]
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    views = [_buffer(folder, f"{k}/2").load() for k in range(2)]
    _buffer(folder).save(gather_experts({"num_experts": 4}, *views))
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    with pytest.raises(ValueError, match="expected"):
        gather_experts({"num_experts": 5}, *views)
    with pytest.raises(Exception, match="does not belong"):
        _buffer(folder, "0/2").save({"expert_001": part})


def test_the_experts_pipeline_has_one_node_per_shard():
    one = create_pipeline(1)
    assert [n.name for n in one.nodes] == ["train_experts", "summarise_experts"]
    assert one.all_outputs() == {"expert_buffer", "expert_metrics"}
    three = create_pipeline(3)
    names = {n.name for n in three.nodes}
    assert {"train_experts_shard_0", "train_experts_shard_1", "train_experts_shard_2", "gather_experts"} <= names
    gather = next(n for n in three.nodes if n.name == "gather_experts")
    assert gather.inputs == ["params:experts", *(shard_dataset(k, 3) for k in range(3))]
    assert "expert_buffer" in gather.outputs


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("ddforge-scale-out"))


def _session_pipeline_and_catalog(root: Path, extra_params: dict | None = None):
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(root)
    session = KedroSession.create(project_path=root, env="ci", runtime_params=extra_params)
    context = session.load_context()
    return session, context, pipelines["__default__"], context.catalog


@pytest.mark.parametrize("shards", [1, 2])
def test_no_hand_off_between_nodes_lives_only_in_memory(project, shards):
    """Every dataset one node writes and another reads is a catalog entry with storage, so the two
    nodes can run in different processes or machines."""
    from kedro.io import MemoryDataset

    with inside_project(project):
        session, _, pipeline, catalog = _session_pipeline_and_catalog(project, {"experts": {"shards": shards}})
        try:
            handed_over = {d for d in pipeline.all_outputs() & pipeline.all_inputs() if not d.startswith("params:")}
            assert "privacy_reference" in handed_over and "expert_buffer" in handed_over
            if shards == 2:
                assert {shard_dataset(0, 2), shard_dataset(1, 2)} <= handed_over
            for name in sorted(handed_over):
                assert name in catalog, f"{name} is not declared in the catalog"
                assert not isinstance(catalog.get(name), MemoryDataset), f"{name} is a MemoryDataset"
        finally:
            session.close()
    with inside_project(project):  # the registry goes back to one shard for the tests that follow
        _session_pipeline_and_catalog(project)[0].close()


def test_kedro_mlflow_params_settings_apply_without_before_pipeline_run(project):
    """A step process (Dagster) makes a context but never runs `before_pipeline_run`."""
    from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook

    with inside_project(project):
        session, context, _, _ = _session_pipeline_and_catalog(project)
        try:
            (hook,) = [p for p in context._hook_manager.get_plugins() if isinstance(p, MlflowHook)]
            assert (hook.flatten, hook.recursive, hook.sep, hook.long_params_strategy) == (True, True, ".", "truncate")
        finally:
            session.close()


def test_manifest_and_fingerprints_reach_mlflow_and_disk_from_separate_processes(project):
    """Three hook instances stand for three step processes of one run: none saw `before_pipeline_run`;
    the first node writes the manifest to MLflow once, a fingerprint recorded in one process reaches
    the run manifest written by another."""
    import mlflow

    from ddforge.hooks import RunManifestHook

    with inside_project(project):
        session, context, _, catalog = _session_pipeline_and_catalog(project)
        try:  # kedro-mlflow's after_context_created pointed MLflow at the project's store
            with mlflow.start_run() as run:
                first, second, last = RunManifestHook(), RunManifestHook(), RunManifestHook()
                for hook in (first, second, last):
                    hook.after_context_created(context)
                    hook.after_catalog_created(catalog)
                first.before_node_run(catalog)
                first.after_dataset_saved("real_train", {"data_fingerprint": "abc"})
                tags = mlflow.get_run(run.info.run_id).data.tags
                assert tags["ddforge.git_dirty"] and tags["ddforge.git_commit"] == "unknown"  # not a git checkout
                manifest = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/run_manifest.json")
                assert manifest["env"] == "ci" and manifest["params"]["experts"]["num_experts"] == 2
                second.before_node_run(catalog)   # already there: not written twice
                last.after_pipeline_run({"project_path": str(project), "env": "ci", "pipeline_name": "__default__"},
                                        catalog)
            written = json.loads((project / "data/08_reporting/run_manifest.json").read_text())
            assert written["data_fingerprints"] == {"real_train": "abc"}
            assert written["env"] == "ci" and written["pipeline"] == "__default__"
        finally:
            session.close()


def test_each_concurrent_step_gets_its_own_gpu_from_the_pool(tmp_path, monkeypatch):
    """`DDFORGE_GPUS=0,1`: the first two device-using steps (one hook instance each, as in separate
    processes) get GPUs 0 and 1; a third waits until one is free; a node without a device claims none."""
    import threading

    from ddforge.hooks import GpuPoolHook

    class Node:
        def __init__(self, name, inputs):
            self.name, self.inputs = name, inputs

    monkeypatch.setenv("DDFORGE_GPUS", "0,1")
    monkeypatch.setenv("DDFORGE_GPU_LOCKS", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    device_node = Node("mtt.distill", ["real_train", "params:runtime"])
    report = GpuPoolHook()
    report.before_node_run(Node("report", ["mtt.evaluation"]))
    assert report._claim is None
    first, second, third = GpuPoolHook(), GpuPoolHook(), GpuPoolHook()
    first.before_node_run(device_node)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    second.before_node_run(device_node)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    waiting = threading.Thread(target=third.before_node_run, args=(device_node,))
    waiting.start()
    waiting.join(timeout=1.5)
    assert waiting.is_alive() and third._claim is None   # both taken
    first._claim.close()                                  # the first step's process ends
    waiting.join(timeout=10)
    assert not waiting.is_alive() and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    second._claim.close()
    third._claim.close()
