"""Dagster definitions (kedro-dagster): a Kedro environment's DAG as the Dagster job `<env>__default`.

    pip install -e ".[dagster]"
    DAGSTER_HOME=$PWD/.dagster dagster job execute -m ddforge.definitions -j local__default
    KEDRO_ENV=ci DAGSTER_HOME=$PWD/.dagster dagster job execute -m ddforge.definitions -j ci__default
    kedro dagster dev -e ci                # the UI, http://127.0.0.1:3000

Adapted from `kedro dagster init`. Every environment under conf/ gets the jobs of
`conf/base/dagster.yml` (an environment may add its own `conf/<env>/dagster.yml`); which environment
this module translates is `KEDRO_ENV` (default `local`, as for `kedro run`), as kedro-dagster's
`kedro dagster dev -e <env>` sets it. One environment per code location: Dagster wants op names
unique within a location, and kedro-dagster names ops after Kedro nodes.

The executor is configured here, in Python: Dagster's multiprocess executor, whose step processes
fork from a server that has already imported this module (torch, Kedro, the translated project), so
a step starts in about a second instead of ~20 s. At most `DDFORGE_DAGSTER_MAX_CONCURRENT` steps run
at a time (default: the CPU count), each with `step_threads()` torch threads (default: the cores
divided among them), and a ready step with more work behind it starts first (`critical_path_first`).
Cluster executors (k8s, celery) and a GPU per step:
docs/scale_out.md.
"""
from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster._core.definitions.dependency import NodeInvocation
from dagster._core.storage.tags import PRIORITY_TAG
from kedro.utils import find_kedro_project
from kedro_dagster import KedroProjectTranslator

PROJECT = find_kedro_project(Path.cwd()) or Path.cwd()
ENV = os.environ.get("KEDRO_ENV") or "local"


def environments(project: Path = PROJECT) -> list[str]:
    """Every environment a job can come from: the folders of conf/ but base."""
    return sorted(p.name for p in (project / "conf").iterdir() if p.is_dir() and p.name != "base")


def max_concurrent() -> int:
    return int(os.environ.get("DDFORGE_DAGSTER_MAX_CONCURRENT") or 0) or os.cpu_count() or 1


def step_threads() -> int | None:
    """Torch threads per step process: the cores shared out among the steps that run at once.

    Each step's torch would otherwise take every core, so two concurrent steps on two cores run four
    OpenMP threads that spin against each other at every barrier: the expert stage took 3x as long
    here (docs/scale_out.md). `DDFORGE_STEP_THREADS` sets it; with `OMP_NUM_THREADS` set, torch already
    follows that and this returns None (nothing changed)."""
    if os.environ.get("DDFORGE_STEP_THREADS"):
        return max(1, int(os.environ["DDFORGE_STEP_THREADS"]))
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, (os.cpu_count() or 1) // max_concurrent())


def executor_config() -> dict:
    return {
        "max_concurrent": max_concurrent(),
        # kedro-dagster's dagster.yml exposes only max_concurrent: the start method is set here. The
        # forkserver imports these before it forks any step, so every step inherits both the
        # translated project and the thread count `ddforge.dagster_steps` sets.
        "start_method": {"forkserver": {"preload_modules": [__name__, "ddforge.dagster_steps"]}},
    }


def downstream_counts(graph: dg.GraphDefinition) -> dict[str, int]:
    """How many ops depend, directly or not, on each op of the graph."""
    structure = graph.dependency_structure
    children: dict[str, set[str]] = {name: set() for name in graph.node_names()}
    for name in children:
        for outputs in structure.input_to_upstream_outputs_for_node(name).values():
            for output in outputs:
                children[output.node_name].add(name)
    below: dict[str, set[str]] = {}

    def descendants(name: str) -> set[str]:
        if name not in below:
            below[name] = set().union(*(descendants(c) | {c} for c in children[name]))
        return below[name]

    return {name: len(descendants(name)) for name in children}


def critical_path_first(job: dg.JobDefinition) -> dg.JobDefinition:
    """The job with each op's `dagster/priority` set to the number of ops downstream of it.

    Among ready steps the multiprocess executor starts the highest priority first, otherwise its own
    order: it ran DataDAM's distillation and the full-data evaluation before the expert shards, which
    held back the four trajectory methods waiting on the experts (docs/scale_out.md). kedro-dagster
    turns Kedro tags into `kedro_tag_<i>` op tags and has no setting for this one, so it is added to
    the graph's node invocations here (Dagster merges invocation tags into each step's tags)."""
    graph = job.graph
    counts = downstream_counts(graph)
    dependencies = {}
    for key, deps in graph.dependencies.items():
        node = key if isinstance(key, NodeInvocation) else NodeInvocation(key)
        priority = counts[node.alias or node.name]
        dependencies[node._replace(tags={**(node.tags or {}), PRIORITY_TAG: str(priority)})] = deps
    prioritised = dg.GraphDefinition(
        name=graph.name, description=graph.description, node_defs=graph.node_defs, dependencies=dependencies,
        input_mappings=graph.input_mappings, output_mappings=graph.output_mappings, config=graph.config_mapping,
        tags=graph.tags, input_assets=graph.input_assets,
    )
    # JobDefinition has no public way to swap its graph and keep everything else (resources, hooks,
    # asset layer); Dagster's own with_hooks/with_executor_def go through _copy, as this does
    return job._copy(graph_def=prioritised)


def build_definitions(env: str = ENV, project: Path = PROJECT) -> dg.Definitions:
    location = KedroProjectTranslator(env=env, project_path=project).to_dagster()
    return dg.Definitions(
        assets=list(location.named_assets.values()),
        jobs=[critical_path_first(job) for job in location.named_jobs.values()],
        sensors=list(location.named_sensors.values()),
        # each job carries its own resources (kedro_run, mlflow, one IO manager per dataset); these
        # serve the assets, and `io_manager` a MemoryDataset, should one ever appear between nodes
        resources={**location.named_resources, "io_manager": dg.fs_io_manager},
        loggers={"console": dg.colored_console_logger},
        executor=dg.multiprocess_executor.configured(executor_config()),
    )


defs = build_definitions()
