"""The method-contract refactor (issue #10) changed no result: every method, run on the tiny problem
with every key given explicitly, reproduces the synthetic set recorded from the code before it
(commit 823772d, `data/pre_refactor_sets.pt`: final images, labels, learned lr, loss history)."""
from pathlib import Path

import pytest
import torch

from ddforge.methods.registry import METHODS, distill, resolve_config

RECORDED = torch.load(Path(__file__).parent / "data" / "pre_refactor_sets.pt", weights_only=True)
PARAMS = {"iterations": 3, "snapshot_every": 3, "checkpoint_every": 3, "log_every": 1,
          "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 3, "lr_img": 10.0, "lr_lr": 1e-5,
          "lr_teacher": 0.01, "momentum": 0.5, "min_start_epoch": 0, "lr_update": "log"}
OWN = {
    "datm": {"current_max_start_epoch": 1, "expansion_end_epoch": 2, "pix_init": "samples_predicted_correctly",
             "lr_y": 2.0, "momentum_y": 0.9, "threshold": 1.0, "sequential_generation": True},
    "seqmatch": {"conditioned_num_experts": 1, "conditioned_expert_epochs": 4, "curriculum_epochs": 2,
                 "num_subsets": 2},
    "datadam": {"iterations": 3, "snapshot_every": 3, "checkpoint_every": 3, "log_every": 1, "lr_img": 1.0,
                "momentum": 0.5, "batch_real": 4, "power": 4, "norm": "batchnorm"},
    "iadd": {"lr_importance": 1.0, "momentum_importance": 0.5, "importance_granularity": "tensor",
             "importance_normalise": "all"},
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_synthetic_set_equals_the_pre_refactor_one(method, tiny_context):
    params = OWN[method] if method == "datadam" else {**PARAMS, **OWN.get(method, {})}
    result = distill(method, resolve_config(method, params), tiny_context, run_key="r", checkpoint_path=None)
    recorded = RECORDED[method]
    # atol 1e-5, not 1e-6: on a 2026-11-22 host (AMX-capable Xeon) one SeqMatch pixel of 256 came out
    # 1.7e-6 from the recording, on every thread count and ATen/oneDNN ISA cap tried; a changed
    # result, which this test is for, moves images far more (lr_img 10 -> 10.01: 4e-4 to 2e-2).
    torch.testing.assert_close(result["images"], recorded["images"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(result["labels"], recorded["labels"], rtol=1e-5, atol=1e-6)
    assert result["lr"] == pytest.approx(float(recorded["lr"]), rel=1e-6)
    assert result["history"]["loss"] == pytest.approx(recorded["loss"].tolist(), rel=1e-5)
