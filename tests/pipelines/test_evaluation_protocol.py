"""Per-method evaluation recipes (issue #11, point 2) and DD-Ranking's fair figures: DataDAM is evaluated on
the network it distilled with, `<method>.evaluation` reaches that method's networks only, soft-label sets are
retrained on hard labels, and a set trained by its own recipe is compared with a random real subset trained
by the same recipe."""
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import ddforge.core.evaluation as core_evaluation
from ddforge.core.evaluation import EvalConfig, evaluate_training_set
from ddforge.core.networks import NetworkSpec
from ddforge.errors import ConfigError
from ddforge.methods.base import DistillContext
from ddforge.methods.datadam import DataDAM
from ddforge.methods.registry import METHODS, distill, get_method, resolve_config
from ddforge.pipelines.evaluate.nodes import (
    evaluate_full_data,
    evaluate_random_real,
    evaluate_synthetic_set,
    hard_label_stages,
    method_evaluation,
)
from ddforge.pipelines.evaluate.pipeline import evaluate_method

pytestmark = pytest.mark.usefixtures("one_thread")

PROJECT = Path(__file__).resolve().parents[2]
NETWORK = {"width": 4, "depth": 1, "norm": "instancenorm"}
SHARED = {"num_models": 1, "epochs": 2, "batch_size": 8, "momentum": 0.9, "weight_decay": 0.0, "dsa": False,
          "baseline_lr": 0.01, "audit": {"replicates": 20, "members_per_class": 4}}
RUNTIME = {"device": "cpu"}


def _split(n_per_class: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(2).repeat_interleave(n_per_class)
    images = torch.randn(2 * n_per_class, 1, 8, 8, generator=g) * 0.3
    images[labels == 1, :, :4] += 1.0
    return {"images": images, "labels": labels, "class_names": ["a", "b"], "data_fingerprint": "fp"}


TRAIN, VAL, TEST = _split(12, 0), _split(4, 1), _split(6, 2)
SPEC = NetworkSpec(1, 2, (8, 8), **NETWORK)


def _set(method: str = "mtt", labels: torch.Tensor | None = None, network: NetworkSpec = SPEC) -> dict:
    """A two-snapshot synthetic set of 2 images per class, as `registry.distill` writes it."""
    images = TRAIN["images"][[0, 1, 12, 13]].clone()
    labels = torch.tensor([0, 0, 1, 1]) if labels is None else labels
    snaps = [{"iteration": i, "images": images + 0.01 * i, "labels": labels, "lr": 0.02} for i in (0, 2)]
    return {"method": method, "images": snaps[-1]["images"], "labels": labels, "lr": 0.02, "ipc": [2, 2],
            "class_names": ["a", "b"], "network": network.as_dict(), "snapshots": snaps}


def _evaluate(synthetic: dict, own: dict | None = None) -> dict:
    return evaluate_synthetic_set(synthetic, TRAIN, VAL, TEST, NETWORK, SHARED, RUNTIME, 0, own)


def _splits() -> dict:
    return {"val": (VAL["images"], VAL["labels"]), "test": (TEST["images"], TEST["labels"])}


def test_datadam_set_records_its_norm_and_is_evaluated_on_that_network(monkeypatch):
    ctx = DistillContext(TRAIN["images"], TRAIN["labels"], ["a", "b"], SPEC, [], seed=0, device=torch.device("cpu"),
                         ipc=[2, 2], final_parameters=[])
    cfg = resolve_config("datadam", {"norm": "batchnorm", "batch_real": 4, "iterations": 2, "checkpoint_every": 2,
                                     "snapshot_every": 2})
    assert DataDAM().build(ctx, cfg).spec == DataDAM().network_spec(SPEC, cfg)  # its encoders: the one source
    synthetic = distill("datadam", cfg, ctx, run_key="k", checkpoint_path=None)
    assert synthetic["network"]["norm"] == "batchnorm"  # params:network says instancenorm
    built = []
    real_build = core_evaluation.build_network
    monkeypatch.setattr(core_evaluation, "build_network", lambda *a: built.append(real_build(*a)) or built[-1])
    ev = _evaluate(synthetic)
    assert built and all(any(isinstance(m, nn.BatchNorm2d) for m in net.modules()) for net in built)
    assert not any(isinstance(m, nn.GroupNorm) for net in built for m in net.modules())
    assert ev["protocol"]["network"]["norm"] == "batchnorm" and not ev["protocol"]["same_as_shared"]


def test_method_evaluation_block_is_in_every_method_yaml_and_reaches_that_method_only():
    for name in METHODS:
        params = yaml.safe_load((PROJECT / f"conf/base/parameters_{name}.yml").read_text())
        assert params[name]["evaluation"] == {}, name
        inputs = evaluate_method(name).nodes[0].inputs
        assert f"params:{name}.evaluation" in inputs and "params:evaluation" in inputs
        assert not any(f"params:{other}.evaluation" in inputs for other in METHODS if other != name)
    merged = method_evaluation("datadam", SHARED, {"batch_size": 4, "lr": 0.5})
    assert merged["batch_size"] == 4 and merged["lr"] == 0.5 and merged["epochs"] == SHARED["epochs"]
    assert SHARED["batch_size"] == 8  # the shared block itself is untouched
    with pytest.raises(ConfigError, match="unknown keys"):
        method_evaluation("datadam", SHARED, {"epoch": 3})


def test_own_epochs_models_and_fixed_lr_reach_the_evaluation_networks():
    own = _evaluate(_set(), {"num_models": 2, "epochs": 3, "lr": 0.5})
    shared = _evaluate(_set())
    assert (own["protocol"]["num_models"], own["protocol"]["epochs"], own["protocol"]["lr"]) == (2, 3, 0.5)
    assert (shared["protocol"]["num_models"], shared["protocol"]["epochs"], shared["protocol"]["lr"]) == (1, 2, None)
    assert len(own["final"]["test"]["models"]) == 2 and len(shared["final"]["test"]["models"]) == 1
    # the final networks trained 3 epochs at the fixed lr 0.5, not the set's learned 0.02
    snap = _set()["snapshots"][-1]
    expected = evaluate_training_set(SPEC, [(snap["images"], snap["labels"], 0.5)],
                                     EvalConfig(num_models=2, epochs=3, batch_size=8, weight_decay=0.0, dsa=False),
                                     _splits(), seed=0)
    assert own["final"]["test"]["models"] == expected["test"]["models"]


def test_soft_label_set_is_also_evaluated_on_the_argmax_of_its_labels():
    logits = torch.tensor([[2.0, 1.5], [0.1, 0.3], [-1.0, 1.0], [0.4, 0.2]])  # argmax 0, 1, 1, 0
    synthetic = _set("datm", logits)
    (stage,) = hard_label_stages(get_method("datm"), synthetic, synthetic["snapshots"][-1])
    assert stage[1].dtype == torch.int64 and stage[1].tolist() == [0, 1, 1, 0]
    assert hard_label_stages(get_method("mtt"), _set(), _set()["snapshots"][-1]) is None
    ev = _evaluate(synthetic)
    expected = evaluate_training_set(SPEC, [(synthetic["images"], torch.tensor([0, 1, 1, 0]), 0.02)],
                                     EvalConfig(num_models=1, epochs=2, batch_size=8, weight_decay=0.0, dsa=False),
                                     _splits(), seed=0)
    assert ev["hard_label"]["labels"].startswith("argmax") and ev["hard_label"]["test"] == expected["test"]
    hard = _evaluate(_set())
    assert hard["hard_label"] == {"labels": "hard", "test": hard["final"]["test"]}  # no second evaluation


def test_same_recipe_random_real_only_when_the_recipe_differs():
    shared = _evaluate(_set())
    assert shared["protocol"]["same_as_shared"] and "random_real_same_recipe" not in shared
    own = _evaluate(_set(), {"epochs": 3})
    rr = own["random_real_same_recipe"]
    # the shared baseline's images (same stream, same per-class counts), trained by the set's recipe
    expected = evaluate_random_real(TRAIN, VAL, TEST, NETWORK, {**SHARED, "epochs": 3}, [2, 2], RUNTIME, 0)
    assert rr["final"]["test"] == expected["final"]["test"] and rr["protocol"]["epochs"] == 3
    assert rr["uncertainty"]["samples"] == expected["uncertainty"]["samples"]  # paired with the set's audit
    batchnorm = _evaluate(_set(network=NetworkSpec(1, 2, (8, 8), width=4, depth=1, norm="batchnorm")))
    assert batchnorm["random_real_same_recipe"]["protocol"]["network"]["norm"] == "batchnorm"


def test_full_data_block_sets_any_protocol_key_over_the_shared_one():
    full = {"num_models": 1, "epochs": 3, "batch_size": 4, "lr": 0.05, "weight_decay": 0.01, "momentum": 0.5}
    ev = evaluate_full_data(TRAIN, VAL, TEST, NETWORK, {**SHARED, "full_data": full}, RUNTIME, 0)
    assert (ev["protocol"]["weight_decay"], ev["protocol"]["momentum"], ev["protocol"]["lr"]) == (0.01, 0.5, 0.05)
    expected = evaluate_training_set(SPEC, [(TRAIN["images"], TRAIN["labels"], 0.05)],
                                     EvalConfig(num_models=1, epochs=3, batch_size=4, momentum=0.5, weight_decay=0.01,
                                                dsa=False), _splits(), seed=0)
    assert ev["final"]["test"]["models"] == expected["test"]["models"]
    with pytest.raises(ConfigError, match=r"evaluation.full_data: unknown keys \['epoch'\]"):
        evaluate_full_data(TRAIN, VAL, TEST, NETWORK, {**SHARED, "full_data": {**full, "epoch": 3}}, RUNTIME, 0)
