"""Pipelines by name: ingest, experts, one per method, evaluate, report; `__default__` is the whole DAG."""
from __future__ import annotations

from kedro.pipeline import Pipeline

from ddforge.methods.registry import METHODS
from ddforge.pipelines.distill.pipeline import create_distill_pipeline
from ddforge.pipelines.evaluate.pipeline import baselines, evaluate_method
from ddforge.pipelines.experts.pipeline import create_pipeline as experts
from ddforge.pipelines.ingest.pipeline import create_pipeline as ingest
from ddforge.pipelines.report.pipeline import create_report_pipeline
from ddforge.pipelines.share.pipeline import create_share_pipeline


def register_pipelines() -> dict[str, Pipeline]:
    methods = list(METHODS.values())
    pipelines: dict[str, Pipeline] = {"ingest": ingest(), "experts": experts()}
    evaluations = baselines()
    for method in methods:
        evaluation = evaluate_method(method.name)
        # `kedro run --pipelines mtt` distils and evaluates that method (its metrics land in the same MLflow run).
        pipelines[method.name] = create_distill_pipeline(method) + evaluation
        evaluations += evaluation
    pipelines["baselines"] = baselines()
    for name in ("random_real", "full_data"):  # each alone, e.g. a rerun at another IPC keeps full data's file
        pipelines[name] = pipelines["baselines"].only_nodes_with_namespaces([name])
    pipelines["evaluate"] = evaluations
    pipelines["report"] = create_report_pipeline(methods)
    pipelines["share"] = create_share_pipeline(list(METHODS))
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
