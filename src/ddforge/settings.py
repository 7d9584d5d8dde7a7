"""Kedro project settings."""
from pathlib import Path

from kedro.config import OmegaConfigLoader  # noqa: F401

from ddforge import cli_errors
from ddforge.hooks import (
    FreshCompilerHook,
    GpuPoolHook,
    MlflowParamsSettingsHook,
    MlflowVersionedArtefactHook,
    ParameterCheckHook,
    PipelineShapeHook,
    RunManifestHook,
)

cli_errors.install()

HOOKS = (ParameterCheckHook(), RunManifestHook(), MlflowVersionedArtefactHook(), PipelineShapeHook(),
         MlflowParamsSettingsHook(), GpuPoolHook(), FreshCompilerHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (covid, paper_fmnist, ci, ...) overrides single keys instead of whole top-level blocks.
    "merge_strategy": {"parameters": "soft"},
    # `${cwd:}` in mlflow.yml: kedro runs from the project root, and an absolute sqlite path keeps
    # two projects used from one Python process (tests, notebooks) in their own tracking stores.
    "custom_resolvers": {"cwd": lambda: Path.cwd().as_posix()},
}
