"""Each checkpoint of a synthetic set is scored on val and test; the report shows the final, the
best-over-checkpoints (the papers' convention, test-set selection) and the validation-selected figure.

A method may evaluate with its own protocol (`<method>.evaluation`, over the shared `evaluation` block) and
on its own network (`Method.network_spec`, recorded in the set). DD-Ranking's fair figures need two more
evaluations of the final set: a random real subset of the same size trained by the same recipe (IOR; the
shared `random_real` baseline when the recipe is the shared one) and, for soft-label sets, the set trained
with hard labels (HLR)."""
from __future__ import annotations

import logging
from dataclasses import asdict, fields
from typing import Any

import torch

from ddforge.core.audit import AuditConfig, audit_data, network_inspector, summarise_audit
from ddforge.core.evaluation import EvalConfig, Stage, evaluate_training_set
from ddforge.core.networks import NetworkSpec
from ddforge.core.sampling import IPC, resolve_ipc, select_per_class
from ddforge.core.seeding import make_generator, replicate_seed
from ddforge.errors import ConfigError, IncompatibleArtefactError
from ddforge.methods.base import Method
from ddforge.methods.registry import get_method
from ddforge.pipelines.provenance import network_spec, resolve_device

log = logging.getLogger(__name__)

EVAL_KEYS = frozenset(f.name for f in fields(EvalConfig))
# what `<method>.evaluation` may set: the training protocol, a fixed `lr` (instead of the set's learned
# one) and the lr of its same-recipe random real subset; the audit and full-data settings stay shared
METHOD_EVAL_KEYS = EVAL_KEYS | {"lr", "baseline_lr"}
FULL_DATA_KEYS = EVAL_KEYS | {"lr"}   # what `evaluation.full_data` may set: its lr and the training protocol


def _known_keys_only(where: str, block: dict[str, Any], known: frozenset[str]) -> None:
    unknown = set(block) - known
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")


def method_evaluation(method: str, evaluation: dict[str, Any], own: dict[str, Any] | None) -> dict[str, Any]:
    """The shared `evaluation` block with the method's own keys over it, key by key (methods.md §1.5:
    each paper evaluates with its own batch size, number of networks, epochs and, for DataDAM, lr)."""
    own = dict(own or {})
    _known_keys_only(f"{method}.evaluation", own, METHOD_EVAL_KEYS)
    return {**evaluation, **own}


def full_data_protocol(evaluation: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """`evaluation.full_data`: the full-data baseline's lr, and the protocol keys it sets over the shared block."""
    full = dict(evaluation["full_data"])
    _known_keys_only("evaluation.full_data", full, FULL_DATA_KEYS)
    return full.pop("lr"), full


def _eval_config(evaluation: dict[str, Any], **overrides: Any) -> EvalConfig:
    return EvalConfig(**{**{k: v for k, v in evaluation.items() if k in EVAL_KEYS}, **overrides})


def _protocol(spec: NetworkSpec, cfg: EvalConfig, lr: float | None, real_train: dict,
              baseline_lr: float | None = None) -> dict:
    """The recipe an evaluation trained with (lr None: each set's learned lr) and the data preparation it
    trained on, as the report compares them."""
    return {"network": spec.as_dict(), **asdict(cfg), "lr": lr, "baseline_lr": baseline_lr,
            "data": real_train.get("preparation")}


def _with_lr(stages: list[Stage], lr: float | None) -> list[Stage]:
    return stages if lr is None else [(x, y, float(lr)) for x, y, _ in stages]


def _splits(real_val: dict, real_test: dict) -> dict:
    return {"val": (real_val["images"], real_val["labels"]), "test": (real_test["images"], real_test["labels"])}


def _audited_evaluation(spec: NetworkSpec, stages: list, cfg: EvalConfig, real_train: dict, real_val: dict,
                        real_test: dict, evaluation: dict, seed: int, device: torch.device,
                        label: str) -> tuple[dict, dict]:
    """Scores of networks trained on `stages`, and their audit (intervals, predicted-class shares,
    membership). Every set of a run resamples the same test images and members: comparisons are paired."""
    audit = audit_data((real_train["images"], real_train["labels"]), real_test["labels"],
                       AuditConfig(**(evaluation.get("audit") or {})), seed)
    scores = evaluate_training_set(spec, stages, cfg, _splits(real_val, real_test), seed=seed, device=device,
                                   inspect=network_inspector(audit), label=label)
    return scores, summarise_audit(scores.pop("inspections"), audit)


def _baseline(name: str, ipc: list[int] | None, stages: list, cfg: EvalConfig, spec: NetworkSpec, real_train: dict,
              real_val: dict, real_test: dict, evaluation: dict, runtime: dict, seed: int) -> dict:
    """A real-data reference trained once (no distillation checkpoints), in the evaluation format."""
    scores, audit = _audited_evaluation(spec, stages, cfg, real_train, real_val, real_test, evaluation, seed,
                                        resolve_device(runtime["device"]), name)
    ckpt = [{"iteration": 0, "lr": stages[0][2], **scores}]
    return {"name": name, "kind": "baseline", "ipc": ipc, "num_images": int(stages[0][1].numel()),
            "data_fingerprint": real_test["data_fingerprint"],
            "protocol": _protocol(spec, cfg, stages[0][2], real_train),
            "checkpoints": ckpt, **_selection(ckpt), **audit}


def _random_real_stages(real_train: dict, counts: list[int], lr: float, seed: int, replicate: int) -> list[Stage]:
    """`counts[c]` real training images of class c, drawn from the replicate's one random-real stream: the
    shared baseline and every same-recipe baseline of a replicate train on the same images."""
    draws = make_generator(replicate_seed(seed, replicate), "random-real")
    idx = select_per_class(real_train["labels"], counts, draws, real_train["class_names"])
    return [(real_train["images"][idx], real_train["labels"][idx], lr)]


def _selection(checkpoints: list[dict]) -> dict:
    def pick(split: str) -> dict:
        best = max(checkpoints, key=lambda c: c[split]["accuracy"]["mean"])
        return {"iteration": best["iteration"], "test": best["test"]}

    return {"final": {"iteration": checkpoints[-1]["iteration"], "test": checkpoints[-1]["test"]},
            "best": pick("test"), "val_selected": pick("val")}


def hard_label_stages(method: Method, synthetic_set: dict, snapshot: dict) -> list[Stage] | None:
    """The snapshot's training stages with its learned soft labels (logits) replaced by their argmax, so
    soft labels alone cannot carry a weak set (DD-Ranking's HLR); None for a set with hard labels."""
    if not snapshot["labels"].is_floating_point():
        return None
    return method.training_stages(synthetic_set, {**snapshot, "labels": snapshot["labels"].argmax(1)})


def evaluate_synthetic_set(
    synthetic_set: dict, real_train: dict, real_val: dict, real_test: dict, network: dict, evaluation: dict,
    runtime: dict, seed: int, own_evaluation: dict | None = None, replicate: int = 0,
) -> dict:
    """Every checkpoint under the method's recipe (`own_evaluation` over the shared `evaluation`), the
    final one audited, then the hard-label and same-recipe random-real figures the report ranks by."""
    name = synthetic_set["method"]
    spec = NetworkSpec.from_dict(synthetic_set["network"])
    if synthetic_set["class_names"] != real_test["class_names"]:
        raise IncompatibleArtefactError(
            f"synthetic set for {name} has classes {synthetic_set['class_names']}, "
            f"the test data has {real_test['class_names']}"
        )
    shared_spec = network_spec(network, real_test)
    if spec != shared_spec:
        log.info("evaluating %s on the network it was distilled with, %s (params:network differs)", name, spec)
    recipe = method_evaluation(name, evaluation, own_evaluation)
    device, cfg, fixed_lr = resolve_device(runtime["device"]), _eval_config(recipe), recipe.get("lr")
    same_recipe = (spec == shared_spec and cfg == _eval_config(evaluation)
                   and recipe.get("baseline_lr") == evaluation.get("baseline_lr")
                   and real_train.get("prepared_for") is None)   # own data: the shared baseline saw other images
    method = get_method(name)

    def evaluate(stages: list) -> dict:
        return evaluate_training_set(spec, _with_lr(stages, fixed_lr), cfg, _splits(real_val, real_test), seed=seed,
                                     device=device, label=name)

    checkpoints, snapshots = [], synthetic_set["snapshots"]
    for i, snap in enumerate(snapshots):
        stages = method.training_stages(synthetic_set, snap)
        if i < len(snapshots) - 1:
            scores = evaluate(stages)
        else:  # the final set is the one reported with intervals and audited
            scores, final_audit = _audited_evaluation(spec, _with_lr(stages, fixed_lr), cfg, real_train, real_val,
                                                      real_test, recipe, seed, device, name)
        checkpoints.append({"iteration": snap["iteration"], "lr": snap["lr"], **scores})
        log.info("%s @ iteration %d: test acc %.4f ± %.4f", name, snap["iteration"],
                 scores["test"]["accuracy"]["mean"], scores["test"]["accuracy"]["std"])
    hard_stages = hard_label_stages(method, synthetic_set, snapshots[-1])
    if hard_stages is None:  # the set's own labels are hard: its final figure is the hard-label one
        hard_label = {"labels": "hard", "test": checkpoints[-1]["test"]}
    else:
        hard_label = {"labels": "argmax of the learned soft labels", **evaluate(hard_stages)}
        log.info("%s with hard labels: test acc %.4f", name, hard_label["test"]["accuracy"]["mean"])
    out = {"name": name, "kind": "distilled", "ipc": synthetic_set["ipc"],
           "data_fingerprint": real_test["data_fingerprint"], "splits_fingerprint": real_test.get("splits_fingerprint"),
           "prepared_for": real_test.get("prepared_for"), "num_images": int(synthetic_set["images"].shape[0]),
           "protocol": {**_protocol(spec, cfg, fixed_lr, real_train, recipe.get("baseline_lr")),
                        "same_as_shared": same_recipe},
           "checkpoints": checkpoints, **_selection(checkpoints), **final_audit, "hard_label": hard_label,
           **method.extra_evaluations(synthetic_set, evaluate, checkpoints[-1])}
    if not same_recipe:  # the shared random_real baseline was trained otherwise: not a fair bar for this set
        counts = resolve_ipc(synthetic_set["ipc"], real_train["class_names"])
        stages = _random_real_stages(real_train, counts, recipe["baseline_lr"], seed, replicate)
        out["random_real_same_recipe"] = _baseline("random_real", counts, stages, cfg, spec, real_train, real_val,
                                                   real_test, recipe, runtime, seed)
    return out


def evaluate_random_real(
    real_train: dict, real_val: dict, real_test: dict, network: dict, evaluation: dict, ipc: IPC,
    runtime: dict, seed: int, replicate: int = 0,
) -> dict:
    """A random real subset of the same size, trained by the shared protocol (the bar to beat); each
    distillation replicate draws its own subset, trained by the same evaluation networks."""
    spec = network_spec(network, real_train)
    counts = resolve_ipc(ipc, real_train["class_names"])
    stages = _random_real_stages(real_train, counts, evaluation["baseline_lr"], seed, replicate)
    return _baseline("random_real", counts, stages, _eval_config(evaluation), spec, real_train, real_val, real_test,
                     evaluation, runtime, seed)


def evaluate_full_data(
    real_train: dict, real_val: dict, real_test: dict, network: dict, evaluation: dict, runtime: dict, seed: int
) -> dict:
    """The whole training split: the ceiling a distilled set is compared against.

    `evaluation.full_data` sets its `lr` and any protocol key over the shared block, e.g. `compile`: tens of
    thousands of images per epoch repay its seconds of compiling many times over (docs/fidelity.md)."""
    lr, protocol = full_data_protocol(evaluation)
    spec = network_spec(network, real_train)
    cfg = _eval_config(evaluation, **protocol)
    stages = [(real_train["images"], real_train["labels"], lr)]
    return _baseline("full_data", None, stages, cfg, spec, real_train, real_val, real_test, evaluation, runtime, seed)
