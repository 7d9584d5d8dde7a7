"""A method's parameters: resolved once, from one source of defaults, with a documented precedence."""
from dataclasses import fields
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.cli.utils import _split_params

from ddforge.core.distill_loop import LoopConfig
from ddforge.core.matching import MatchingConfig
from ddforge.errors import ConfigError
from ddforge.methods.base import InitConfig
from ddforge.methods.registry import METHODS, resolve_config
from ddforge.settings import CONFIG_LOADER_ARGS

CONF = Path(__file__).resolve().parents[2] / "conf"


def parameters(env: str, params: str | None = None) -> dict:
    """The project's parameters as `kedro run --env <env> --params <params>` sees them."""
    runtime = _split_params(None, None, params) if params else None
    loader = OmegaConfigLoader(str(CONF), env=env, runtime_params=runtime, **CONFIG_LOADER_ARGS)
    return loader["parameters"]


def resolved(params: dict, method: str):
    shared = params["trajectory_matching"] if METHODS[method].matches_trajectories else None
    return resolve_config(method, params[method]["distill"], shared)


def test_precedence_defaults_method_defaults_shared_own_preset():
    assert resolve_config("mtt", {}).matching.syn_steps == MatchingConfig().syn_steps
    assert resolve_config("datadam", {}).matching.lr_img == 1.0                       # DataDAM.defaults
    assert resolve_config("datadam", {}, {"lr_img": 5.0}).matching.lr_img == 5.0       # shared beats it
    assert resolve_config("mtt", {"syn_steps": 7}, {"syn_steps": 3}).matching.syn_steps == 7   # own beats shared
    datm = resolve_config("datm", {"preset": "cifar10_ipc10", "syn_steps": 7})
    assert datm.matching.syn_steps == 80 and datm.extra.expansion_end_epoch == 1000    # a preset replaces its keys
    with pytest.raises(ConfigError, match="unknown parameters for mtt: \\['sym_steps'\\]"):
        resolve_config("mtt", {"sym_steps": 3})
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_config("datadam", {"preset": "nope"})


def test_base_configuration_repeats_no_default():
    """conf/base lists only what differs from the code's defaults: a copied default would be a second
    source that silently drifts (as lr_img 1000 vs 100 once did)."""
    params = parameters("base")
    for key, value in params["trajectory_matching"].items():
        assert getattr(MatchingConfig(), key, getattr(LoopConfig(), key, None)) != value, key
    for name, method in METHODS.items():
        default = resolve_config(name, {})
        for key, value in params[name]["distill"].items():
            assert default.as_dict().get(key) != value, f"{name}.distill.{key} repeats its default"


def test_every_method_reads_the_shared_block_and_its_own_command_line_override():
    params = parameters("ci", "mtt.distill.syn_steps=30")
    assert resolved(params, "mtt").matching.syn_steps == 30
    for name in ("datm", "seqmatch", "iadd"):  # the ci block, written once, reaches all four
        cfg = resolved(params, name)
        assert (cfg.matching.syn_steps, cfg.loop.iterations) == (2, 4), name
    assert resolved(params, "datadam").matching.syn_steps == MatchingConfig().syn_steps  # not a trajectory method
    everyone = parameters("ci", "trajectory_matching.syn_steps=9")
    assert {resolved(everyone, n).matching.syn_steps for n in ("mtt", "datm", "seqmatch", "iadd")} == {9}


def test_resolved_config_lists_every_field_once():
    cfg = resolve_config("iadd", {})
    names = [f.name for c in (MatchingConfig, InitConfig, LoopConfig, METHODS["iadd"].ExtraConfig) for f in fields(c)]
    assert len(names) == len(set(names)) and list(cfg.as_dict()) == names
