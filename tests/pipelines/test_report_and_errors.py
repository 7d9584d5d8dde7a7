import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    current = {"class_names": ["a", "b"], "data_fingerprint": "new"}
    table, markdown, metrics = comparison_table(
        {"metrics": ["accuracy", "balanced_accuracy", "macro_auroc", "sensitivity"]}, current,
        _evaluation("mtt", "new", 0.8), _evaluation("datm", "old", 0.99),
    )
    assert list(table["method"]) == ["mtt"]
    assert "Left out" in markdown and "datm" in markdown
    assert "mtt/test_acc_final" in metrics and "datm/test_acc_final" not in metrics
    assert table.loc[0, "sensitivity[b]"] == "80.00" and table.loc[0, "macro_auroc_final"] == "90.00 ± 0.00"


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
