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
divided among them). Cluster executors (k8s, celery) and a GPU per step:
docs/scale_out.md.
"""
from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
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


def build_definitions(env: str = ENV, project: Path = PROJECT) -> dg.Definitions:
    location = KedroProjectTranslator(env=env, project_path=project).to_dagster()
    return dg.Definitions(
        assets=list(location.named_assets.values()),
        jobs=list(location.named_jobs.values()),
        sensors=list(location.named_sensors.values()),
        # each job carries its own resources (kedro_run, mlflow, one IO manager per dataset); these
        # serve the assets, and `io_manager` a MemoryDataset, should one ever appear between nodes
        resources={**location.named_resources, "io_manager": dg.fs_io_manager},
        loggers={"console": dg.colored_console_logger},
        executor=dg.multiprocess_executor.configured(executor_config()),
    )


defs = build_definitions()
