"""Records every run's manifest (config, code version, packages, data fingerprint) on disk and in MLflow,
and checks parameters that are first used late before any node runs."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl

from ddforge.provenance_manifest import run_manifest

log = logging.getLogger(__name__)


class RunManifestHook:
    def __init__(self) -> None:
        self._manifest: dict[str, Any] | None = None
        self._logged = False
        self._fingerprints: dict[str, str] = {}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        params = {k[len("params:"):]: catalog.load(k) for k in catalog.filter(name_regex=r"^params:[^.]+$")} \
            if hasattr(catalog, "filter") else {}
        self._manifest = {
            **run_manifest(params, run_params.get("env"), run_params.get("project_path") or "."),
            "pipeline": run_params.get("pipeline_names") or run_params.get("pipeline_name"),
        }
        self._logged = False
        self._fingerprints = {}

    def _record_fingerprint(self, name: str, data: Any) -> None:
        if isinstance(data, dict) and isinstance(data.get("data_fingerprint"), str):
            self._fingerprints[name] = data["data_fingerprint"]
            if mlflow.active_run() is not None:
                mlflow.set_tag(f"ddforge.data_fingerprint.{name}", data["data_fingerprint"])

    @hook_impl
    def before_node_run(self) -> None:
        # kedro-mlflow opens its run in its own before_pipeline_run; by the first node it exists.
        if self._logged or self._manifest is None or mlflow.active_run() is None:
            return
        mlflow.log_dict(self._manifest, "run_manifest.json")
        mlflow.set_tags({
            "ddforge.git_commit": self._manifest["code"]["commit"] or "unknown",
            "ddforge.git_dirty": str(self._manifest["code"]["dirty"]),
        })
        self._logged = True

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

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        if self._manifest is None:
            return
        manifest = {**self._manifest, "data_fingerprints": self._fingerprints}
        path = Path(run_params.get("project_path") or ".") / "data" / "08_reporting" / "run_manifest.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest, indent=2, default=str))
        log.info("run manifest written to %s", path)


class ParameterCheckHook:
    """Checks, before any node runs, the form of parameters that are first used late: `ipc` is read by
    the distill nodes, after expert training, so `--params ipc=abc` would otherwise fail an hour in."""

    @hook_impl(tryfirst=True)  # before other plugins' hooks (kedro-mlflow) open a run for nothing
    def before_pipeline_run(self, catalog: Any) -> None:
        if "params:ipc" in catalog:
            # imported here: it imports torch, and every `kedro` command loads these hooks
            from ddforge.core.sampling import check_ipc_form

            check_ipc_form(catalog.load("params:ipc"))


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
