import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ddforge.cli_errors import user_error
from ddforge.errors import DataSourceError
from ddforge.pipelines.report.nodes import comparison_table
from tests.pipelines.test_end_to_end import ENV, make_project


def _evaluation(name: str, fingerprint: str, acc: float) -> dict:
    summary = {"accuracy": {"mean": acc, "std": 0.01}, "balanced_accuracy": {"mean": acc, "std": 0.01},
               "macro_auroc": {"mean": 0.9, "std": 0.0},
               "models": [{"sensitivity": [acc, acc], "specificity": [acc, acc]}]}
    pick = {"iteration": 0, "test": summary}
    return {"name": name, "kind": "distilled", "ipc": 1, "num_images": 2, "data_fingerprint": fingerprint,
            "final": pick, "best": pick, "val_selected": pick}


def test_report_leaves_out_evaluations_of_other_data():
    current = {"class_names": ["a", "b"], "data_fingerprint": "new", "labels": torch.tensor([0] * 12 + [1] * 30)}
    table, markdown, metrics, warnings = comparison_table(
        {"metrics": ["accuracy", "balanced_accuracy", "macro_auroc", "sensitivity"]}, current,
        _evaluation("mtt", "new", 0.8), _evaluation("datm", "old", 0.99),
    )
    assert list(table["method"]) == ["mtt"]
    assert "Left out" in markdown and "datm" in markdown
    assert "mtt/test_acc_final" in metrics and "datm/test_acc_final" not in metrics
    assert table.loc[0, "sensitivity[b] (n=30)"] == "80.00" and table.loc[0, "macro_auroc_final"] == "90.00 ± 0.00"
    assert table.loc[0, "test_images"] == "42 (a 12, b 30)" and warnings == []


def test_report_keeps_a_method_with_its_own_preparation_only_on_the_current_splits():
    """DataDAM's own preparation has its own data fingerprint (another transform of the same splits): it is
    compared when its splits are the current ones, and left out when they are not."""
    current = {"class_names": ["a", "b"], "data_fingerprint": "zca", "splits_fingerprint": "splits",
               "labels": torch.tensor([0] * 12 + [1] * 30)}
    own = {**_evaluation("datadam", "normalize", 0.7), "prepared_for": "datadam", "splits_fingerprint": "splits"}
    other_splits = {**_evaluation("iadd", "normalize-old", 0.7), "prepared_for": "iadd", "splits_fingerprint": "old"}
    not_own = {**_evaluation("datm", "normalize", 0.7), "splits_fingerprint": "splits"}
    table, markdown, _, _ = comparison_table({"metrics": ["accuracy"]}, current, _evaluation("mtt", "zca", 0.8),
                                             own, other_splits, not_own)
    assert sorted(table["method"]) == ["datadam", "mtt"]
    assert "Left out (evaluated on other data or config; rerun them): iadd, datm" in markdown


def test_report_opens_with_the_warnings_and_the_recommendation():
    current = {"class_names": ["a", "b"], "data_fingerprint": "new", "labels": torch.tensor([0] * 3 + [1] * 30)}
    _, markdown, _, warnings = comparison_table({"metrics": ["accuracy"]}, current, _evaluation("mtt", "new", 0.8))
    assert [w["kind"] for w in warnings] == ["small_class"] and warnings[0]["subject"] == "a"
    warning_at, share_at, table_at = (markdown.index(h) for h in ("## Warnings", "## Which set to share", "| method"))
    assert warning_at < markdown.index("class 'a' has 3 test images") < share_at < table_at


def test_user_error_is_found_through_wrapping():
    try:
        try:
            raise DataSourceError("x.png: truncated")
        except DataSourceError as exc:
            raise RuntimeError("node failed") from exc
    except RuntimeError as wrapped:
        assert str(user_error(wrapped)) == "x.png: truncated"
    assert user_error(ValueError("bug")) is None


@pytest.mark.slow
def test_missing_data_ends_the_run_with_one_message_and_no_traceback(tmp_path):
    root = make_project(tmp_path / "p")
    kedro = str(Path(sys.executable).with_name("kedro"))
    result = subprocess.run([kedro, "run", "--env", "ci", "--pipelines", "ingest", "--params",
                             "source.idx.search_dirs=[data/01_raw/nowhere]"], cwd=root, capture_output=True, text=True,
                            env={**os.environ, **ENV}, timeout=300)
    assert result.returncode != 0
    assert "ddforge: error:" in result.stderr and "data/01_raw/nowhere" in result.stderr
    assert "Traceback" not in result.stderr


def _ranked(name: str, kind: str, acc: float, **extra) -> dict:
    """An evaluation with constant bootstrap samples (every paired interval collapses to the gap)."""
    summary = {"accuracy": {"mean": acc, "std": 0.0}, "balanced_accuracy": {"mean": acc, "std": 0.0}, "models": []}
    pick = {"iteration": 0, "test": summary}
    return {"name": name, "kind": kind, "ipc": [1, 1], "num_images": 2, "data_fingerprint": "fp", "final": pick,
            "best": pick, "val_selected": pick,
            "uncertainty": {"ci": {"accuracy": [acc, acc], "balanced_accuracy": [acc, acc]},
                            "samples": {"accuracy": [acc] * 8, "balanced_accuracy": [acc] * 8}}, **extra}


def test_report_ior_uses_the_same_recipe_random_real_and_hlr_the_hard_label_accuracy():
    network = {"width": 4, "depth": 1, "norm": "instancenorm"}
    shared = {"network": network, "epochs": 300, "batch_size": 256, "lr": 0.01, "baseline_lr": None}
    own = {"network": {**network, "norm": "batchnorm"}, "epochs": 300, "batch_size": 64, "lr": None,
           "baseline_lr": 0.01, "same_as_shared": False}
    hard = {"labels": "hard", "test": {"accuracy": {"mean": 0.6}}}
    evaluations = [
        _ranked("mtt", "distilled", 0.6, hard_label=hard,
                protocol={**shared, "batch_size": 256, "lr": None, "baseline_lr": 0.01, "same_as_shared": True}),
        _ranked("datm", "distilled", 0.7, hard_label={"labels": "argmax", "test": {"accuracy": {"mean": 0.5}}}),
        _ranked("datadam", "distilled", 0.55, hard_label={"labels": "hard", "test": {"accuracy": {"mean": 0.55}}},
                protocol=own, random_real_same_recipe=_ranked("random_real", "baseline", 0.45)),
        _ranked("random_real", "baseline", 0.4, protocol=shared),
        _ranked("full_data", "baseline", 0.9),
    ]
    current = {"class_names": ["a", "b"], "data_fingerprint": "fp", "labels": torch.tensor([0] * 20 + [1] * 20)}
    table, markdown, metrics, _ = comparison_table({"metrics": ["accuracy"]}, current, *evaluations)
    rows = table.set_index("method")
    # IOR: 60 − 40, 70 − 40, and DataDAM against its own recipe's random real, 55 − 45 (not 55 − 40)
    assert list(rows.loc[["mtt", "datm", "datadam"], "IOR (pp)"]) == ["+20.0 [20.0, 20.0]", "+30.0 [30.0, 30.0]",
                                                                      "+10.0 [10.0, 10.0]"]
    assert rows.loc["datadam", "accuracy vs random_real"] == "+10.0 [10.0, 10.0]"
    # HLR: full data 90 minus the hard-label accuracy, 60, 50 (DATM's argmax labels, not its 70) and 55
    assert list(rows.loc[["mtt", "datm", "datadam"], "HLR (pp)"]) == ["+30.0", "+40.0", "+35.0"]
    assert metrics["datadam/ior"]["value"] == pytest.approx(0.10)
    assert metrics["datm/hlr"]["value"] == pytest.approx(0.40)
    assert "random_real/ior" not in metrics and "full_data/hlr" not in metrics
    assert rows.loc["mtt", "recipe"] == "shared" and rows.loc["datadam", "recipe"] == "norm batchnorm, batch_size 64"
    assert "datadam: norm batchnorm, batch_size 64" in markdown and "mtt: " not in markdown
