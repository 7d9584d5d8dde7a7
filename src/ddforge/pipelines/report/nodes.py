"""The comparison a user opens first: one table (CSV + Markdown) and one image grid per method."""
from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ddforge.core.metrics import PER_CLASS_METRICS, SCALAR_METRICS
from ddforge.core.sampling import describe_ipc
from ddforge.core.transforms import invert_transform
from ddforge.core.visualise import image_grid
from ddforge.errors import ConfigError

log = logging.getLogger(__name__)


def _pm(summary: dict[str, Any], key: str = "accuracy") -> str:
    return f"{100 * summary[key]['mean']:.2f} ± {100 * summary[key]['std']:.2f}"


def _per_class_mean(summary: dict[str, Any], key: str) -> list[float]:
    per_model = [m[key] for m in summary["models"]]
    return [sum(v[c] for v in per_model) / len(per_model) for c in range(len(per_model[0]))]


def comparison_table(report: dict[str, Any], class_names_source: dict, *evaluations: dict) -> tuple[pd.DataFrame, str, dict]:
    """Rows: each method and baseline; figures in percent (mean ± std over evaluation networks).

    `report.metrics` picks the columns: accuracy, balanced_accuracy, macro_auroc, and per-class
    sensitivity / specificity (medical runs).
    """
    metrics_wanted = report["metrics"]
    unknown = set(metrics_wanted) - set(SCALAR_METRICS) - set(PER_CLASS_METRICS)
    if unknown:
        raise ConfigError(f"report.metrics: unknown {sorted(unknown)}; known: {SCALAR_METRICS + PER_CLASS_METRICS}")
    class_names = class_names_source["class_names"]
    current = class_names_source["data_fingerprint"]
    stale = [ev["name"] for ev in evaluations if ev.get("data_fingerprint") != current]
    if stale:  # e.g. `--pipelines mtt,report` after a run on other data: never mix them in silently
        log.warning("report: leaving out %s, evaluated on other data or config than the current splits", stale)
    rows, metrics = [], {}
    for ev in (e for e in evaluations if e["name"] not in stale):
        final, best, val_sel = ev["final"]["test"], ev["best"]["test"], ev["val_selected"]["test"]
        row = {
            "method": ev["name"], "kind": ev["kind"], "ipc": describe_ipc(ev["ipc"]) if ev["ipc"] is not None else "all",
            "images": ev["num_images"],
            "test_acc_final": _pm(final),
            "test_acc_best_checkpoint": f"{_pm(best)} (it {ev['best']['iteration']})",
            "test_acc_val_selected": f"{_pm(val_sel)} (it {ev['val_selected']['iteration']})",
        }
        for key in metrics_wanted:
            if key in SCALAR_METRICS and key != "accuracy":
                row[f"{key}_final"] = _pm(final, key)
                metrics[f"{ev['name']}/{key}_final"] = {"value": final[key]["mean"], "step": 0}
            elif key in PER_CLASS_METRICS:
                for name, value in zip(class_names, _per_class_mean(final, key)):
                    row[f"{key}[{name}]"] = f"{100 * value:.2f}"
        rows.append(row)
        for label, summary in (("final", final), ("best", best), ("val_selected", val_sel)):
            metrics[f"{ev['name']}/test_acc_{label}"] = {"value": summary["accuracy"]["mean"], "step": 0}
        metrics[f"{ev['name']}/test_acc_final_std"] = {"value": final["accuracy"]["std"], "step": 0}
    table = pd.DataFrame(rows)
    markdown = _markdown(table)
    if stale:
        markdown += f"\nLeft out (evaluated on other data or config; rerun them): {', '.join(stale)}\n"
    return table, markdown, metrics


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
                      title=f"{synthetic_set['method']} (IPC {describe_ipc(synthetic_set['ipc'])})")
