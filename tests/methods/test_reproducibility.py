"""Same config and seed, bit-identical synthetic sets on CPU, for every method."""
from dataclasses import replace

import pytest
import torch

from ddforge.methods.registry import METHODS, distill, resolve_config

PARAMS = {
    "iterations": 3, "snapshot_every": 3, "checkpoint_every": 3, "log_every": 1,
    "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 3, "lr_img": 10.0,
}
EXTRA = {
    "datm": {"current_max_start_epoch": 1, "expansion_end_epoch": 2},
    "seqmatch": {"conditioned_num_experts": 1, "conditioned_expert_epochs": 4, "curriculum_epochs": 2},
    "datadam": {"batch_real": 4, "lr_img": 1.0},
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_two_runs_give_bit_identical_synthetic_sets(method, tiny_context):
    params = {**PARAMS, **EXTRA.get(method, {})}
    if method == "datadam":
        params = {k: v for k, v in params.items() if k not in ("syn_steps", "expert_epochs", "max_start_epoch")}
    cfg = resolve_config(method, params)
    a = distill(method, cfg, tiny_context, run_key="a", checkpoint_path=None)
    b = distill(method, cfg, tiny_context, run_key="b", checkpoint_path=None)
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["labels"], b["labels"])
    assert a["lr"] == b["lr"] and a["history"]["loss"] == b["history"]["loss"]
    assert not torch.equal(a["snapshots"][0]["images"], a["images"])  # and it did distil something
    c = distill(method, cfg, replace(tiny_context, seed=1), run_key="c", checkpoint_path=None)
    assert not torch.equal(a["images"], c["images"])  # the seed matters
