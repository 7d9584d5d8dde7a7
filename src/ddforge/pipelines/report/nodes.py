"""The comparison a user opens first: warnings, which set to share, one table (CSV + Markdown) with
intervals, and one image grid per method."""
from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from ddforge.core.caveats import Caveat, find_caveats, paired_difference, random_real_for, share_recommendation
from ddforge.core.metrics import PER_CLASS_METRICS, SCALAR_METRICS
from ddforge.core.sampling import describe_ipc
from ddforge.core.transforms import invert_transform
from ddforge.core.visualise import image_grid
from ddforge.errors import ConfigError

log = logging.getLogger(__name__)


def _interval(ci: list[float] | None, scale: float = 100.0, digits: int = 1) -> str:
    return f" [{scale * ci[0]:.{digits}f}, {scale * ci[1]:.{digits}f}]" if ci else ""


def _pm(summary: dict[str, Any], key: str = "accuracy", ci: dict | None = None) -> str:
    """mean ± std over evaluation networks, then, given the final set's intervals `ci`, the 95 %
    interval that includes the test set's sampling error (what a reader should judge a gap by)."""
    return f"{100 * summary[key]['mean']:.2f} ± {100 * summary[key]['std']:.2f}{_interval((ci or {}).get(key))}"


def _per_class_mean(summary: dict[str, Any], key: str) -> list[float]:
    per_model = [m[key] for m in summary["models"]]
    return [sum(v[c] for v in per_model) / len(per_model) for c in range(len(per_model[0]))]


def _test_counts(real_test: dict) -> list[int]:
    return torch.bincount(real_test["labels"].long(), minlength=len(real_test["class_names"])).tolist()


def _describe_counts(class_names: list[str], counts: list[int]) -> str:
    if len(set(counts)) == 1:
        return f"{sum(counts)} ({counts[0]} per class)"
    return f"{sum(counts)} (" + ", ".join(f"{name} {n}" for name, n in zip(class_names, counts)) + ")"


def _current(ev: dict, real_test: dict) -> bool:
    """Evaluated on the current splits and preparation, or, for a method with its own preparation
    (`<method>.preprocess`), on the current splits under its transform (shown in the `recipe` column)."""
    if ev.get("data_fingerprint") == real_test["data_fingerprint"]:
        return True
    return ev.get("prepared_for") is not None and ev.get("splits_fingerprint") == real_test.get("splits_fingerprint")


def _difference(ev: dict, other: dict | None, key: str) -> dict | None:
    samples = [e.get("uncertainty", {}).get("samples", {}).get(key) for e in (ev, other or {})]
    return paired_difference(*samples) if all(samples) else None


def _recipe(ev: dict, shared: dict | None) -> str:
    """How a set's evaluation recipe differs from the shared one (`shared` when it does not): the network
    it was trained on, the `<method>.evaluation` keys, a fixed lr."""
    mine = ev.get("protocol")
    if mine is None:
        return "—"
    theirs = (shared or {}).get("protocol")
    if theirs is None:
        diffs = [] if mine.get("same_as_shared") else ["own"]
    else:
        diffs = [f"{k} {v}" for k, v in mine["network"].items() if theirs["network"].get(k) != v]
        diffs += [f"{k} {v}" for k, v in mine.items()
                  if k not in ("network", "lr", "baseline_lr", "same_as_shared", "data") and theirs.get(k) != v]
        if "data" in theirs and mine.get("data") != theirs["data"]:   # its own preparation (`<method>.preprocess`)
            diffs.append(f"data {mine.get('data')} (shared: {theirs.get('data')})")
        if mine.get("baseline_lr") is not None and mine["baseline_lr"] != theirs.get("lr"):
            diffs.append(f"baseline_lr {mine['baseline_lr']}")
    if mine.get("lr") is not None:
        diffs.append(f"lr {mine['lr']} (fixed)")
    return ", ".join(diffs) or "shared"


def _ior_and_hlr(ev: dict, random_real: dict | None, full_data: dict | None) -> tuple[dict, dict]:
    """DD-Ranking's figures of a distilled set (test accuracy of the final networks, as fractions): improvement
    over a random real subset of the same size trained by the same recipe (IOR, with the paired bootstrap
    interval when both carry samples), and hard-label recovery, full data minus the set trained with hard
    labels (HLR)."""
    row, metrics = {}, {}
    if random_real is not None:
        diff = _difference(ev, random_real, "accuracy")
        value = ev["final"]["test"]["accuracy"]["mean"] - random_real["final"]["test"]["accuracy"]["mean"]
        row["IOR (pp)"] = f"{100 * value:+.1f}" + (_interval(diff["ci"]) if diff else "")
        metrics[f"{ev['name']}/ior"] = {"value": value, "step": 0}
    hard = ev.get("hard_label")
    if hard is not None and full_data is not None:
        value = full_data["final"]["test"]["accuracy"]["mean"] - hard["test"]["accuracy"]["mean"]
        row["HLR (pp)"] = f"{100 * value:+.1f}"
        metrics[f"{ev['name']}/hlr"] = {"value": value, "step": 0}
    return row, metrics


def comparison_table(report: dict[str, Any], real_test: dict, *evaluations: dict
                     ) -> tuple[pd.DataFrame, str, dict, list[dict]]:
    """Rows: each method and baseline; figures in percent, mean ± std over evaluation networks with
    the 95 % interval over test-set resampling and networks; first the warnings a reader must see,
    and which set to share.

    `report.metrics` picks the columns: accuracy, balanced_accuracy, macro_auroc, and per-class
    sensitivity / specificity (medical runs).
    """
    metrics_wanted = report["metrics"]
    unknown = set(metrics_wanted) - set(SCALAR_METRICS) - set(PER_CLASS_METRICS)
    if unknown:
        raise ConfigError(f"report.metrics: unknown {sorted(unknown)}; known: {SCALAR_METRICS + PER_CLASS_METRICS}")
    class_names = real_test["class_names"]
    stale = [ev["name"] for ev in evaluations if not _current(ev, real_test)]
    if stale:  # e.g. `--pipelines mtt,report` after a run on other data: never mix them in silently
        log.warning("report: leaving out %s, evaluated on other data or config than the current splits", stale)
    current_evaluations = [ev for ev in evaluations if ev["name"] not in stale]
    counts = _test_counts(real_test)
    caveats = find_caveats(current_evaluations, class_names, counts, [k for k in metrics_wanted if k in SCALAR_METRICS],
                           int(real_test.get("duplicates_in_train") or 0))
    for caveat in caveats:
        log.warning("report: %s", caveat.message)
    by_name = {ev["name"]: ev for ev in current_evaluations}
    gap_key = "balanced_accuracy" if "balanced_accuracy" in metrics_wanted else "accuracy"
    rows, metrics, recipes = [], {}, []
    for ev in current_evaluations:
        final, best, val_sel = ev["final"]["test"], ev["best"]["test"], ev["val_selected"]["test"]
        ci = ev.get("uncertainty", {}).get("ci", {})
        row = {
            "method": ev["name"], "kind": ev["kind"], "ipc": describe_ipc(ev["ipc"]) if ev["ipc"] is not None else "all",
            "images": ev["num_images"], "test_images": _describe_counts(class_names, counts),
            "test_acc_final": _pm(final, ci=ci),
            "test_acc_best_checkpoint": f"{_pm(best)} (it {ev['best']['iteration']})",
            "test_acc_val_selected": f"{_pm(val_sel)} (it {ev['val_selected']['iteration']})",
        }
        for key in metrics_wanted:
            if key in SCALAR_METRICS and key != "accuracy":
                row[f"{key}_final"] = _pm(final, key, ci)
                metrics[f"{ev['name']}/{key}_final"] = {"value": final[key]["mean"], "step": 0}
            elif key in PER_CLASS_METRICS:
                intervals = ci.get(key) or [None] * len(class_names)
                for c, (name, value) in enumerate(zip(class_names, _per_class_mean(final, key))):
                    row[f"{key}[{name}] (n={counts[c]})"] = f"{100 * value:.2f}{_interval(intervals[c])}"
        if ev["kind"] == "distilled":
            random_real = random_real_for(ev, by_name.get("random_real"))
            for other, reference in (("random_real", random_real), ("full_data", by_name.get("full_data"))):
                diff = _difference(ev, reference, gap_key)
                if diff is not None:
                    row[f"{gap_key} vs {other}"] = f"{100 * diff['difference']:+.1f}{_interval(diff['ci'])}"
                    metrics[f"{ev['name']}/{gap_key}_vs_{other}"] = {"value": diff["difference"], "step": 0}
            ranking_row, ranking_metrics = _ior_and_hlr(ev, random_real, by_name.get("full_data"))
            row.update(ranking_row)
            metrics.update(ranking_metrics)
            row["recipe"] = _recipe(ev, by_name.get("random_real"))
            if row["recipe"] not in ("shared", "—"):
                recipes.append(f"{ev['name']}: {row['recipe']}")
        mia = ev.get("membership")
        if mia:
            auroc, tpr = mia["auroc"], mia["tpr_at_fpr"]
            row["mia_auroc"] = f"{auroc['point']:.2f}{_interval(auroc['ci'], 1.0, 2)}"
            row["mia_tpr_at_1%_fpr"] = f"{100 * tpr['point']:.1f}{_interval(tpr['ci'])}"
            metrics[f"{ev['name']}/mia_auroc"] = {"value": auroc["point"], "step": 0}
            metrics[f"{ev['name']}/mia_tpr_at_1pct_fpr"] = {"value": tpr["point"], "step": 0}
        rows.append(row)
        for label, summary in (("final", final), ("best", best), ("val_selected", val_sel)):
            metrics[f"{ev['name']}/test_acc_{label}"] = {"value": summary["accuracy"]["mean"], "step": 0}
        metrics[f"{ev['name']}/test_acc_final_std"] = {"value": final["accuracy"]["std"], "step": 0}
        for key in (k for k in SCALAR_METRICS if k in ci):
            metrics[f"{ev['name']}/{key}_final_ci_low"] = {"value": ci[key][0], "step": 0}
            metrics[f"{ev['name']}/{key}_final_ci_high"] = {"value": ci[key][1], "step": 0}
    table = pd.DataFrame(rows)
    markdown = _markdown(table, caveats, share_recommendation(current_evaluations, caveats), recipes)
    if stale:
        markdown += f"\nLeft out (evaluated on other data or config; rerun them): {', '.join(stale)}\n"
    return table, markdown, metrics, [c.as_dict() for c in caveats]


NOTES = (
    "Figures in % on the real test split: mean ± std over independently trained evaluation networks, then the 95 "
    "% interval [low, high] from a stratified bootstrap over test images pooled with the spread over networks "
    "(the test set's size, not the networks, usually dominates it). `... vs random_real` / `... vs full_data`: "
    "paired difference in points over the same bootstrap resamples, with its interval; a gap whose interval "
    "contains 0 is not shown by this test set; a set evaluated with its own recipe (column `recipe`) is compared "
    "with a random real subset trained by that same recipe. `IOR`: DD-Ranking's improvement over random, accuracy "
    "of the set minus that of the same-size random real subset under the identical recipe, in points. `HLR`: "
    "hard-label recovery, full training data's accuracy minus the set's trained with hard labels (soft-label sets "
    "such as DATM's are retrained on the argmax of their labels), in points: lower is better. `mia_*`: a "
    "loss-threshold membership-inference attack on the evaluation networks (members: real training images, "
    "non-members: as many held-out real images of the same classes; AUROC 0.50 means the networks reveal nothing "
    "about membership; TPR at 1 % FPR in %). `final`: the last distillation iteration; `best_checkpoint`: the "
    "best test accuracy over checkpoints (the papers' convention, selected on test); `val_selected`: the "
    "checkpoint chosen on the validation split."
)


def _markdown(table: pd.DataFrame, caveats: list[Caveat], recommendation: str, recipes: list[str]) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    # a cell that does not apply to a row (a baseline's gap to itself) is NaN in the frame
    lines = ["| " + " | ".join(str(v) if v == v else "—" for v in row) + " |" for row in table.itertuples(index=False)]
    warnings = ("\n".join(f"- **{c.kind.replace('_', ' ')}**: {c.message}" for c in caveats) if caveats
                else "None: every class has at least 10 test images, no evaluation network predicts one class for "
                     "nearly everything, every distilled set beats random real, every interval is narrower than "
                     "20 points.")
    return ("# ddforge comparison\n\n## Warnings\n\n" + warnings + "\n\n## Which set to share\n\n" + recommendation
            + "\n\n## Results\n\n" + "\n".join([header, rule, *lines]) + "\n\n" + _recipe_note(recipes) + NOTES + "\n")


def _recipe_note(recipes: list[str]) -> str:
    if not recipes:
        return ""
    return ("Evaluated with their own recipe (what differs from the shared `evaluation` block, `network` and data "
            "preparation): " + "; ".join(recipes) + ". Their `IOR` and `vs random_real` compare them with a random "
            "real subset trained by the same recipe, on the same preparation; their `HLR` and `vs full_data` use "
            "the shared full-data networks.\n\n")


def render_image_grid(synthetic_set: dict, data_transform: dict) -> Figure:
    """Images back in display space through the stored transform, one row per class."""
    images = invert_transform(synthetic_set["images"], data_transform)
    return image_grid(images, synthetic_set["labels"], synthetic_set["class_names"],
                      title=f"{synthetic_set['method']} (IPC {describe_ipc(synthetic_set['ipc'])})")
