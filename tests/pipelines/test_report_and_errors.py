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
