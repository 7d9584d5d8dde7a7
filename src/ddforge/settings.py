"""Kedro project settings."""
from kedro.config import OmegaConfigLoader  # noqa: F401

from ddforge import cli_errors
from ddforge.hooks import MlflowVersionedArtefactHook, RunManifestHook

cli_errors.install()

HOOKS = (RunManifestHook(), MlflowVersionedArtefactHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (covid, paper, ci) overrides single keys instead of whole top-level blocks.
    "merge_strategy": {"parameters": "soft"},
}
