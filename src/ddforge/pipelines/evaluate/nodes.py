"""Each checkpoint of a synthetic set is scored on val and test; the report shows the final, the
best-over-checkpoints (the papers' convention, test-set selection) and the validation-selected figure."""
from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any

import torch


from ddforge.core.audit import AuditConfig, audit_data, network_inspector, summarise_audit
from ddforge.core.evaluation import EvalConfig, evaluate_training_set
from ddforge.core.networks import NetworkSpec
from ddforge.core.sampling import IPC, resolve_ipc, select_per_class
from ddforge.core.seeding import make_generator
from ddforge.errors import IncompatibleArtefactError
from ddforge.methods.registry import get_method
from ddforge.pipelines.provenance import network_spec, resolve_device

log = logging.getLogger(__name__)


def _eval_config(evaluation: dict[str, Any], **overrides: Any) -> EvalConfig:
    keys = {f.name for f in fields(EvalConfig)}
    return EvalConfig(**{**{k: v for k, v in evaluation.items() if k in keys}, **overrides})


def _splits(real_val: dict, real_test: dict) -> dict:
    return {"val": (real_val["images"], real_val["labels"]), "test": (real_test["images"], real_test["labels"])}


def _audited_evaluation(spec: NetworkSpec, stages: list, cfg: EvalConfig, real_train: dict, real_val: dict,
                        real_test: dict, evaluation: dict, seed: int, device: torch.device) -> tuple[dict, dict]:
    """Scores of networks trained on `stages`, and their audit (intervals, predicted-class shares,
    membership). Every set of a run resamples the same test images and members: comparisons are paired."""
    audit = audit_data((real_train["images"], real_train["labels"]), real_test["labels"],
                       AuditConfig(**(evaluation.get("audit") or {})), seed)
    scores = evaluate_training_set(spec, stages, cfg, _splits(real_val, real_test), seed=seed, device=device,
                                   inspect=network_inspector(audit))
    return scores, summarise_audit(scores.pop("inspections"), audit)


def _baseline(name: str, ipc: list[int] | None, stages: list, cfg: EvalConfig, spec: NetworkSpec, real_train: dict,
              real_val: dict, real_test: dict, evaluation: dict, runtime: dict, seed: int) -> dict:
    """A real-data reference trained once (no distillation checkpoints), in the evaluation format."""
    scores, audit = _audited_evaluation(spec, stages, cfg, real_train, real_val, real_test, evaluation, seed,
                                        resolve_device(runtime["device"]))
    ckpt = [{"iteration": 0, "lr": stages[0][2], **scores}]
    return {"name": name, "kind": "baseline", "ipc": ipc, "num_images": int(stages[0][1].numel()),
            "data_fingerprint": real_test["data_fingerprint"], "checkpoints": ckpt, **_selection(ckpt), **audit}


def _selection(checkpoints: list[dict]) -> dict:
    def pick(split: str) -> dict:
        best = max(checkpoints, key=lambda c: c[split]["accuracy"]["mean"])
        return {"iteration": best["iteration"], "test": best["test"]}

    return {"final": {"iteration": checkpoints[-1]["iteration"], "test": checkpoints[-1]["test"]},
            "best": pick("test"), "val_selected": pick("val")}


def evaluate_synthetic_set(
    synthetic_set: dict, real_train: dict, real_val: dict, real_test: dict, network: dict, evaluation: dict,
    runtime: dict, seed: int,
) -> dict:
    spec = NetworkSpec.from_dict(synthetic_set["network"])
    if synthetic_set["class_names"] != real_test["class_names"]:
        raise IncompatibleArtefactError(
            f"synthetic set for {synthetic_set['method']} has classes {synthetic_set['class_names']}, "
            f"the test data has {real_test['class_names']}"
        )
    if spec != network_spec(network, real_test):
        log.warning("evaluating %s on its own network %s (differs from params:network)", synthetic_set["method"], spec)
    device, cfg = resolve_device(runtime["device"]), _eval_config(evaluation)
    method = get_method(synthetic_set["method"])

    def evaluate(stages: list) -> dict:
        return evaluate_training_set(spec, stages, cfg, _splits(real_val, real_test), seed=seed, device=device)

    checkpoints, snapshots = [], synthetic_set["snapshots"]
    for i, snap in enumerate(snapshots):
        stages = method.training_stages(synthetic_set, snap)
        if i < len(snapshots) - 1:
            scores = evaluate(stages)
        else:  # the final set is the one reported with intervals and audited
            scores, final_audit = _audited_evaluation(spec, stages, cfg, real_train, real_val, real_test, evaluation,
                                                      seed, device)
        checkpoints.append({"iteration": snap["iteration"], "lr": snap["lr"], **scores})
        log.info(
            "%s @ iteration %d: test acc %.4f ± %.4f", synthetic_set["method"], snap["iteration"],
            scores["test"]["accuracy"]["mean"], scores["test"]["accuracy"]["std"],
        )
    return {"name": synthetic_set["method"], "kind": "distilled", "ipc": synthetic_set["ipc"],
            "data_fingerprint": real_test["data_fingerprint"],
            "num_images": int(synthetic_set["images"].shape[0]), "checkpoints": checkpoints,
            **_selection(checkpoints), **final_audit,
            **method.extra_evaluations(synthetic_set, evaluate, checkpoints[-1])}


def evaluate_random_real(
    real_train: dict, real_val: dict, real_test: dict, network: dict, evaluation: dict, ipc: IPC,
    runtime: dict, seed: int,
) -> dict:
    """A random real subset of the same size, trained by the same protocol (the bar to beat)."""
    spec = network_spec(network, real_train)
    counts = resolve_ipc(ipc, real_train["class_names"])
    idx = select_per_class(real_train["labels"], counts, make_generator(seed, "random-real"),
                           real_train["class_names"])
    stages = [(real_train["images"][idx], real_train["labels"][idx], evaluation["baseline_lr"])]
    return _baseline("random_real", counts, stages, _eval_config(evaluation), spec, real_train, real_val, real_test,
                     evaluation, runtime, seed)


def evaluate_full_data(
    real_train: dict, real_val: dict, real_test: dict, network: dict, evaluation: dict, runtime: dict, seed: int
) -> dict:
    """The whole training split: the ceiling a distilled set is compared against."""
    full = evaluation["full_data"]
    spec = network_spec(network, real_train)
    cfg = _eval_config(evaluation, num_models=full["num_models"], epochs=full["epochs"], batch_size=full["batch_size"])
    stages = [(real_train["images"], real_train["labels"], full["lr"])]
    return _baseline("full_data", None, stages, cfg, spec, real_train, real_val, real_test, evaluation, runtime, seed)
