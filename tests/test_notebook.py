"""notebooks/explore_results.ipynb runs top to bottom against a finished ci run (cells as plain Python)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ddforge.methods.registry import METHODS
from tests.pipelines.test_end_to_end import ci_run, inside_project  # noqa: F401  (ci_run: fixture for this module)

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore_results.ipynb"


def test_notebook_is_valid_nbformat4_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["nbformat"] == 4
    assert nb["cells"][0]["cell_type"] == "markdown"
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code_cells
    for cell in code_cells:
        assert cell["outputs"] == [] and cell["execution_count"] is None
        assert not any(line.lstrip().startswith(("%", "!")) for line in cell["source"])


@pytest.mark.slow
def test_notebook_executes_against_ci_run(ci_run):  # noqa: F811
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.figure import Figure

    root, _ = ci_run
    nb = json.loads(NOTEBOOK.read_text())
    namespace: dict = {"__name__": "__main__"}
    try:
        with inside_project(root, {"DDFORGE_PROJECT": str(root), "DDFORGE_ENV": "ci"}):
            for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
                exec(compile("".join(cell["source"]), f"<notebook cell {i}>", "exec"), namespace)
    finally:
        session = namespace.get("session")
        if session is not None:
            session.close()

    comparisons = [v for v in namespace.values() if isinstance(v, pd.DataFrame)]
    assert any(len(df) == len(METHODS) and set(df.index) == set(METHODS) for df in comparisons)
    comparison = namespace["comparison"]
    assert ((comparison["mean"] >= 0) & (comparison["mean"] <= 1)).all()
    figures = [v for v in namespace.values() if isinstance(v, Figure)]
    assert figures
    plt.close("all")
