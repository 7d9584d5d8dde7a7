"""Distillation replicates (`params:replicate`): independent distillations from the same experts, judged by
the same evaluation networks, so the spread between them is the distillation's own (docs/fidelity.md)."""
import pytest
import torch

import ddforge.pipelines.evaluate.nodes as evaluate_nodes
from ddforge.core.seeding import replicate_seed
from ddforge.errors import ConfigError
from ddforge.pipeline_registry import register_pipelines
from ddforge.pipelines.distill.nodes import make_distill_node
from ddforge.pipelines.evaluate.nodes import evaluate_random_real
from tests.io.readers.test_bad_inputs import hook_param
from tests.pipelines.test_evaluation_protocol import NETWORK, SHARED, TEST, TRAIN, VAL

pytestmark = pytest.mark.usefixtures("one_thread")
DATADAM = {"iterations": 2, "snapshot_every": 2, "checkpoint_every": 2, "log_every": 1, "batch_real": 4}


def test_replicate_zero_is_the_run_seed_and_others_are_distinct_streams():
    assert replicate_seed(7, 0) == 7   # artefacts made before replicates existed are reproduced as they were
    seeds = {replicate_seed(7, r) for r in range(1, 5)} | {replicate_seed(8, 1)}
    assert len(seeds) == 5 and 7 not in seeds


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", None])
def test_a_replicate_that_is_not_a_non_negative_integer_is_refused_before_any_node(bad):
    with pytest.raises(ConfigError, match="replicate must be a non-negative integer"):
        hook_param(bad, "replicate")()


def _distil(tmp_path, replicate: int) -> dict:
    node = make_distill_node("datadam")
    runtime = {"device": "cpu", "checkpoint_dir": str(tmp_path / "checkpoints")}
    return node(TRAIN, NETWORK, DATADAM, 2, runtime, 0, replicate)


def test_a_replicate_distils_from_its_own_draws_and_keeps_its_own_checkpoint(tmp_path):
    first, again, other = _distil(tmp_path, 0), _distil(tmp_path / "b", 0), _distil(tmp_path, 1)
    assert torch.equal(first["snapshots"][0]["images"], again["snapshots"][0]["images"])
    # replicate 1 starts from other real images, and resumes from a checkpoint of its own
    assert not torch.equal(first["snapshots"][0]["images"], other["snapshots"][0]["images"])
    assert first["meta"]["run_key"] != other["meta"]["run_key"]
    assert (first["meta"]["replicate"], other["meta"]["replicate"]) == (0, 1)
    assert first["meta"]["seed"] == 0 and other["meta"]["seed"] == replicate_seed(0, 1)


def test_random_real_draws_the_replicates_subset_and_keeps_the_evaluation_seed(monkeypatch):
    seen = []

    def spy(spec, stages, cfg, splits, *, seed, **kwargs):
        seen.append((stages[0][0], seed))
        return real(spec, stages, cfg, splits, seed=seed, **kwargs)

    real = evaluate_nodes.evaluate_training_set
    monkeypatch.setattr(evaluate_nodes, "evaluate_training_set", spy)
    first_calls = []
    for replicate in (0, 1):
        seen.clear()
        evaluate_random_real(TRAIN, VAL, TEST, NETWORK, SHARED, [2, 2], {"device": "cpu"}, 0, replicate)
        first_calls.append(seen[0])
    (images0, seed0), (images1, seed1) = first_calls
    assert not torch.equal(images0, images1)   # another random subset
    assert seed0 == seed1 == 0                  # trained by the same evaluation networks


def test_the_replicate_reaches_distillation_and_random_real_but_not_the_experts_or_full_data():
    pipelines = register_pipelines()

    def takes_replicate(name: str) -> set[bool]:
        return {"params:replicate" in n.inputs for n in pipelines[name].nodes if n.name.endswith(("distill", "evaluate"))}

    for method in ("mtt", "datm", "seqmatch", "iadd", "datadam"):
        assert takes_replicate(method) == {True}, method
    assert takes_replicate("random_real") == {True}
    assert takes_replicate("full_data") == {False}
    assert all("params:replicate" not in n.inputs for n in pipelines["experts"].nodes)
