"""The comparison a user opens first: one table (CSV + Markdown) and one image grid per method."""
from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ddforge.core.transforms import invert_transform
from ddforge.core.visualise import image_grid


def _pm(summary: dict[str, Any], key: str = "accuracy") -> str:
    return f"{100 * summary[key]['mean']:.2f} ± {100 * summary[key]['std']:.2f}"


def comparison_table(*evaluations: dict) -> tuple[pd.DataFrame, str, dict]:
    """Rows: each method and baseline; accuracies in percent (mean ± std over evaluation models)."""
    rows, metrics = [], {}
    for ev in evaluations:
        final, best, val_sel = ev["final"]["test"], ev["best"]["test"], ev["val_selected"]["test"]
        rows.append({
            "method": ev["name"], "kind": ev["kind"], "ipc": ev["ipc"] if ev["ipc"] is not None else "all",
            "images": ev["num_images"],
            "test_acc_final": _pm(final),
            "test_acc_best_checkpoint": f"{_pm(best)} (it {ev['best']['iteration']})",
            "test_acc_val_selected": f"{_pm(val_sel)} (it {ev['val_selected']['iteration']})",
            "balanced_acc_final": _pm(final, "balanced_accuracy"),
        })
        for label, summary in (("final", final), ("best", best), ("val_selected", val_sel)):
            metrics[f"{ev['name']}/test_acc_{label}"] = {"value": summary["accuracy"]["mean"], "step": 0}
        metrics[f"{ev['name']}/test_acc_final_std"] = {"value": final["accuracy"]["std"], "step": 0}
        metrics[f"{ev['name']}/balanced_acc_final"] = {"value": final["balanced_accuracy"]["mean"], "step": 0}
    table = pd.DataFrame(rows)
    return table, _markdown(table), metrics


def _markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    lines = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    notes = (
        "\nAccuracy in % on the real test split, mean ± std over independently trained evaluation networks. "
        "`final`: the last distillation iteration; `best_checkpoint`: the best test accuracy over checkpoints "
        "(the papers' convention, selected on test); `val_selected`: the checkpoint chosen on the validation split.\n"
    )
    return "# ddforge comparison\n\n" + "\n".join([header, rule, *lines]) + "\n" + notes


def render_image_grid(synthetic_set: dict, data_transform: dict) -> Figure:
    """Images back in display space through the stored transform, one row per class."""
    images = invert_transform(synthetic_set["images"], data_transform)
    return image_grid(images, synthetic_set["labels"], synthetic_set["class_names"],
                      title=f"{synthetic_set['method']} (IPC {synthetic_set['ipc']})")
