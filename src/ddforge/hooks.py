"""Records every run's manifest (config, code version, packages, data fingerprint) on disk and in MLflow,
and checks parameters that are first used late before any node runs.

Every hook here also works when the nodes of one run execute in separate processes (Dagster's
multiprocess, celery or k8s executors: see docs/scale_out.md), where `before_pipeline_run` and
`after_pipeline_run` run in processes of their own and no state travels between steps: what a step
needs is rebuilt from its context and catalog, and what the run needs is read back from MLflow."""
from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl

from ddforge.provenance_manifest import run_manifest

log = logging.getLogger(__name__)

FINGERPRINT_TAG = "ddforge.data_fingerprint."


def _top_level_params(catalog: Any) -> dict[str, Any]:
    return {k[len("params:"):]: catalog.load(k) for k in catalog.filter(name_regex=r"^params:[^.]+$")} \
        if hasattr(catalog, "filter") else {}


class RunManifestHook:
    """The manifest goes to MLflow (`run_manifest.json`, tags `ddforge.git_commit`/`git_dirty`) at the
    first node that finds the active run without it, in whatever process that is, and to
    `data/08_reporting/run_manifest.json` after the run, with the data fingerprints every process
    recorded (as MLflow tags)."""

    def __init__(self) -> None:
        self._manifest: dict[str, Any] | None = None
        self._logged_run: str | None = None
        self._fingerprints: dict[str, str] = {}
        # env and project of each catalog: one process may hold several (kedro-dagster translates every
        # environment); a catalog is created right after its context
        self._context: tuple[str | None, str] = (None, ".")
        self._catalog_context: dict[int, tuple[str | None, str]] = {}

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._context = (context.env, str(context.project_path))

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        self._catalog_context[id(catalog)] = self._context

    @hook_impl(trylast=True)  # after kedro-mlflow has opened its run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._manifest = self._build_manifest(catalog, run_params)
        self._logged_run = None
        self._fingerprints = {}
        self._log_manifest(self._manifest)

    def _build_manifest(self, catalog: Any, run_params: dict[str, Any] | None = None) -> dict[str, Any]:
        """From the run's parameters, or, in a step process that never saw them, from its own catalog
        and context."""
        env, root = self._catalog_context.get(id(catalog), self._context)
        if run_params:
            env, root = run_params.get("env", env), run_params.get("project_path") or root
        pipeline = (run_params or {}).get("pipeline_names") or (run_params or {}).get("pipeline_name")
        return {**run_manifest(_top_level_params(catalog), env, root), "pipeline": pipeline}

    def _log_manifest(self, manifest: dict[str, Any] | None, catalog: Any = None) -> None:
        """Once per MLflow run: the first process that finds the run without it writes it."""
        run = mlflow.active_run()
        if run is None or self._logged_run == run.info.run_id:
            return
        self._logged_run = run.info.run_id
        if "ddforge.git_commit" in mlflow.get_run(run.info.run_id).data.tags:
            return  # another step process wrote it
        manifest = manifest if manifest is not None else self._build_manifest(catalog)
        mlflow.log_dict(manifest, "run_manifest.json")
        mlflow.set_tags({
            "ddforge.git_commit": manifest["code"]["commit"] or "unknown",
            "ddforge.git_dirty": str(manifest["code"]["dirty"]),
        })

    def _record_fingerprint(self, name: str, data: Any) -> None:
        if isinstance(data, dict) and isinstance(data.get("data_fingerprint"), str):
            self._fingerprints[name] = data["data_fingerprint"]
            if mlflow.active_run() is not None:
                mlflow.set_tag(f"{FINGERPRINT_TAG}{name}", data["data_fingerprint"])

    @hook_impl
    def before_node_run(self, catalog: Any) -> None:
        # kedro-mlflow may open its run after this hook's before_pipeline_run; a Dagster step has the
        # run reopened by dagster-mlflow: by the first node it exists
        self._log_manifest(self._manifest, catalog)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        self._record_fingerprint(dataset_name, data)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        self._record_fingerprint(dataset_name, data)
        self._record_method_config(data)
        if dataset_name == "report_warnings":
            self._record_warnings(data)

    @staticmethod
    def _record_warnings(warnings: list[dict]) -> None:
        """The report's warnings as MLflow tags, where a reader comparing runs sees them first."""
        if mlflow.active_run() is None:
            return
        mlflow.set_tags({"ddforge.warnings": str(len(warnings)),
                         **{f"ddforge.warning.{i:02d}.{w['kind']}": w["message"][:5000] for i, w in enumerate(warnings)}})

    @staticmethod
    def _record_method_config(data: Any) -> None:
        """A distilled set's resolved config (code defaults included, not only the YAML keys) as
        MLflow params `<method>.config.<key>`, so runs compare on every setting."""
        config = (data.get("meta") or {}).get("config") if isinstance(data, dict) else None
        if isinstance(config, dict) and mlflow.active_run() is not None:
            mlflow.log_params({f"{data['method']}.config.{k}": v for k, v in config.items()})

    @hook_impl(tryfirst=True)  # before kedro-mlflow ends the run: the fingerprints are read from its tags
    def after_pipeline_run(self, run_params: dict[str, Any], catalog: Any) -> None:
        manifest = self._manifest if self._manifest is not None else self._build_manifest(catalog, run_params)
        fingerprints = dict(self._fingerprints)
        run = mlflow.active_run()
        if run is not None:  # what the run's other processes recorded
            tags = mlflow.get_run(run.info.run_id).data.tags
            fingerprints = {**{k[len(FINGERPRINT_TAG):]: v for k, v in tags.items() if k.startswith(FINGERPRINT_TAG)},
                            **fingerprints}
        manifest = {**manifest, "data_fingerprints": dict(sorted(fingerprints.items()))}
        path = Path(run_params.get("project_path") or ".") / "data" / "08_reporting" / "run_manifest.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest, indent=2, default=str))
        log.info("run manifest written to %s", path)


class ParameterCheckHook:
    """Checks, before any node runs, the form of parameters that are first used late: `ipc` is read by
    the distill nodes, after expert training, so `--params ipc=abc` would otherwise fail an hour in
    (`replicate` too); the evaluation blocks' keys are read by evaluation nodes, after distillation."""

    @hook_impl(tryfirst=True)  # before other plugins' hooks (kedro-mlflow) open a run for nothing
    def before_pipeline_run(self, catalog: Any) -> None:
        # imported here: they import torch, and every `kedro` command loads these hooks
        from ddforge.core.sampling import check_ipc_form
        from ddforge.core.seeding import check_replicate
        from ddforge.methods.registry import METHODS
        from ddforge.pipelines.evaluate.nodes import full_data_protocol, method_evaluation

        if "params:ipc" in catalog:
            check_ipc_form(catalog.load("params:ipc"))
        if "params:replicate" in catalog:
            check_replicate(catalog.load("params:replicate"))
        if "params:evaluation" in catalog:
            evaluation = catalog.load("params:evaluation")
            full_data_protocol(evaluation)
            for name in METHODS:
                if f"params:{name}.evaluation" in catalog:
                    method_evaluation(name, evaluation, catalog.load(f"params:{name}.evaluation"))


class MlflowVersionedArtefactHook:
    """Logs versioned reports to MLflow: datasets whose catalog entry has
    `metadata: {mlflow_artifact_path: ...}` are uploaded right after each save, from the exact
    version just written (kedro-mlflow's wrapper cannot wrap versioned datasets)."""

    def __init__(self) -> None:
        self._catalog: Any = None

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        self._catalog = catalog

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        if self._catalog is None or mlflow.active_run() is None:
            return
        dataset = self._catalog.get(dataset_name)
        artifact_path = (getattr(dataset, "metadata", None) or {}).get("mlflow_artifact_path")
        if artifact_path is None:
            return
        path = Path(str(dataset._get_load_path()))  # the version just saved
        if path.is_file():
            mlflow.log_artifact(str(path), artifact_path)


class PipelineShapeHook:
    """Two parameters decide which nodes the pipelines have: `experts.shards` (K shard nodes, then
    `gather_experts`) and `<method>.preprocess` (a method whose data preparation differs from the shared
    one gets its own `<method>.preprocess` node and `<method>.real_*` inputs). Kedro builds pipelines after
    the context, so this hook sets both from the context's parameters (`--params` included) and, if
    either changed, has the registry built again. A `<method>.preprocess` that cannot work (a key other
    than the transform's, a trajectory method) fails here, before any node runs."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        from kedro.framework.project import PACKAGE_NAME, pipelines

        from ddforge.methods.registry import METHODS
        from ddforge.pipelines.experts.nodes import num_shards
        from ddforge.pipelines.experts.pipeline import use_shards
        from ddforge.pipelines.ingest.nodes import own_preparation
        from ddforge.pipelines.ingest.pipeline import use_own_preparations

        params = context.params
        own = {name for name, method in METHODS.items()
               if own_preparation(name, params.get("preprocess") or {}, (params.get(name) or {}).get("preprocess"),
                                  method.matches_trajectories) is not None}
        if own:
            log.info("own data preparation (`<method>.preprocess`) for %s", ", ".join(sorted(own)))
        changed = [use_shards(num_shards(params.get("experts") or {})), use_own_preparations(own)]  # both set
        if any(changed) and PACKAGE_NAME:
            pipelines.configure(f"{PACKAGE_NAME}.pipeline_registry")


class MlflowParamsSettingsHook:
    """kedro-mlflow reads its parameter settings (flatten, recursive, sep, long-param strategy) from
    mlflow.yml only in its `before_pipeline_run`. When steps run in processes of their own (Dagster),
    the others would log a dict parameter unflattened, as one string whose key order differs per
    process, and MLflow refuses the second value. Applied here, in every process that makes a context."""

    @hook_impl(trylast=True)  # after kedro-mlflow's own after_context_created has read mlflow.yml
    def after_context_created(self, context: Any) -> None:
        from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook

        for plugin in context._hook_manager.get_plugins():
            config = getattr(plugin, "mlflow_config", None)
            if isinstance(plugin, MlflowHook) and config is not None:
                params = config.tracking.params
                plugin.flatten = params.dict_params.flatten
                plugin.recursive = params.dict_params.recursive
                plugin.sep = params.dict_params.sep
                plugin.long_params_strategy = params.long_params_strategy


class FreshCompilerHook:
    """Each node compiles from a clean torch.compile state, as it would in a process of its own (a
    Dagster step, a resumed run, a `--pipelines` cut): nothing an earlier node compiled can change a
    later node's kernels, or use up Dynamo's recompile limit, past which a network silently runs
    eagerly (other kernels, other rounding). A node that compiles pays a recompile, mostly read from
    the on-disk cache: seconds."""

    @hook_impl
    def before_node_run(self) -> None:
        dynamo = sys.modules.get("torch._dynamo")   # not imported: nothing was compiled, nothing to reset
        if dynamo is not None:
            dynamo.reset()


class GpuPoolHook:
    """One GPU per concurrently running step. With `DDFORGE_GPUS` set (`0,1,2,3`, or `all`: those in
    `CUDA_VISIBLE_DEVICES`, else every GPU the driver lists), a node that chooses a device (it reads
    `params:runtime`) first claims a free GPU of the pool, waiting while all are taken, and keeps it
    for its process's lifetime (`CUDA_VISIBLE_DEVICES`, set before CUDA starts). The claim is an
    exclusive lock on a file per GPU in `DDFORGE_GPU_LOCKS` (default: the system's temporary folder),
    so it holds across processes on one machine, whichever executor started them. Without
    `DDFORGE_GPUS` nothing changes."""

    def __init__(self) -> None:
        self._claim: Any = None  # the open lock file, held until the process exits

    @staticmethod
    def _pool() -> list[str]:
        spec = os.environ.get("DDFORGE_GPUS", "").strip()
        if spec.lower() != "all":
            return [g.strip() for g in spec.split(",") if g.strip()]
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
        if visible:
            return [g.strip() for g in visible.split(",") if g.strip()]
        # counted without CUDA: once CUDA has started in a process it ignores CUDA_VISIBLE_DEVICES
        gpus = Path("/proc/driver/nvidia/gpus")
        return [str(i) for i in range(len(list(gpus.iterdir())) if gpus.is_dir() else 0)]

    @hook_impl(tryfirst=True)
    def before_node_run(self, node: Any) -> None:
        if self._claim is not None or "params:runtime" not in node.inputs:
            return
        pool = self._pool()
        if not pool:
            return
        folder = Path(os.environ.get("DDFORGE_GPU_LOCKS") or tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        waited = 0.0
        while True:
            for gpu in pool:
                handle = open(folder / f"ddforge-gpu-{gpu}.lock", "w")  # noqa: SIM115 (held open on purpose)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                self._claim = handle
                os.environ["CUDA_VISIBLE_DEVICES"] = gpu
                log.info("%s: GPU %s of pool %s (waited %.0f s)", node.name, gpu, ",".join(pool), waited)
                return
            time.sleep(1.0)
            waited += 1.0
