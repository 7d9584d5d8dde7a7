"""What a reader must be told before trusting a figure, and which set (if any) to share.

Works on evaluation summaries (plain dicts, one per distilled set or baseline) that carry, for the
final checkpoint, test-set intervals (`uncertainty`), per-network predicted-class shares
(`predictions`) and the membership-inference audit (`membership`). Every caveat names the class or
set it is about and says what to do.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ddforge.core.uncertainty import paired_difference_interval

MIN_TEST_PER_CLASS = 10     # fewer test images than this make a class's figures noise
ONE_CLASS_SHARE = 0.95      # a network predicting one class this often has learnt the class mix
MAX_INTERVAL_WIDTH = 0.20   # an interval this wide cannot rank methods
SPLIT_ADVICE = "add images, raise preprocess.test_fraction, or give patient ids in a CSV manifest"


@dataclass
class Caveat:
    kind: str       # small_class | one_class | not_above_random | wide_interval | duplicates
    subject: str    # the class or the set it is about
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def paired_difference(a: list[float], b: list[float], level: float = 0.95) -> dict:
    """a − b over the same bootstrap replicates of the test set (as stored in two evaluations)."""
    return paired_difference_interval(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64), level)


def _by_name(evaluations: list[dict]) -> dict[str, dict]:
    return {ev["name"]: ev for ev in evaluations}


def random_real_for(ev: dict, random_real: dict | None) -> dict | None:
    """The random real subset a set is judged against: the one trained by the set's own recipe when it
    was evaluated otherwise than the shared protocol (its network, epochs, batch size ...), else the
    shared baseline. A gap measured under two recipes would credit the recipe to the set."""
    return ev.get("random_real_same_recipe") or random_real


def small_classes(class_names: list[str], test_counts: list[int]) -> list[Caveat]:
    return [
        Caveat("small_class", name, f"class {name!r} has {n} test image{'s' if n != 1 else ''} (fewer than "
               f"{MIN_TEST_PER_CLASS}): its sensitivity, and every figure it enters, is mostly chance; {SPLIT_ADVICE}.")
        for name, n in zip(class_names, test_counts) if n < MIN_TEST_PER_CLASS
    ]


def one_class_models(ev: dict, class_names: list[str], test_counts: list[int]) -> list[Caveat]:
    """Networks that predict (nearly) one class for every test image, beyond what the class mix
    explains or at chance-level balanced accuracy: their accuracy measures the mix, not skill."""
    total, k = sum(test_counts), len(class_names)
    chance = 1 / k
    balanced = ev["final"]["test"]["balanced_accuracy"]["mean"]
    flagged = [p for p in ev.get("predictions", [])
               if p["top_share"] >= ONE_CLASS_SHARE
               and (p["top_share"] - test_counts[p["top_class"]] / total >= 0.05 or balanced <= chance + 0.05)]
    if not flagged:
        return []
    top = max(flagged, key=lambda p: p["top_share"])
    n = len(ev.get("predictions", []))
    return [Caveat("one_class", ev["name"], f"{ev['name']}: {len(flagged)} of {n} evaluation networks predict "
                   f"{class_names[top['top_class']]!r} for {100 * top['top_share']:.0f} % of the test images "
                   f"(balanced accuracy {100 * balanced:.1f} %, chance {100 * chance:.1f} %): its accuracy reflects "
                   "the class mix, not skill. Do not share it; more images per class (ipc) or more data may help.")]


def not_above_random(ev: dict, random_real: dict) -> list[Caveat]:
    mine = ev["final"]["test"]["balanced_accuracy"]["mean"]
    theirs = random_real["final"]["test"]["balanced_accuracy"]["mean"]
    if mine > theirs:
        return []
    diff = paired_difference(ev["uncertainty"]["samples"]["balanced_accuracy"],
                             random_real["uncertainty"]["samples"]["balanced_accuracy"])
    lo, hi = diff["ci"]
    return [Caveat("not_above_random", ev["name"], f"{ev['name']}: balanced accuracy {100 * mine:.1f} % is not above "
                   f"random real's {100 * theirs:.1f} % (difference {100 * (mine - theirs):+.1f} points, 95 % CI "
                   f"{100 * lo:+.1f} to {100 * hi:+.1f}): the distilled set adds nothing over real images picked at "
                   "random. Do not share it; try more iterations, another method or more images per class.")]


def wide_intervals(ev: dict, metrics: list[str]) -> list[Caveat]:
    """One caveat per set listing every requested scalar metric whose interval is too wide."""
    ci = ev.get("uncertainty", {}).get("ci", {})
    wide = [f"{m} {100 * ci[m][0]:.1f}–{100 * ci[m][1]:.1f}" for m in metrics
            if m in ci and ci[m][1] - ci[m][0] > MAX_INTERVAL_WIDTH]
    if not wide:
        return []
    return [Caveat("wide_interval", ev["name"], f"{ev['name']}: 95 % intervals wider than "
                   f"{100 * MAX_INTERVAL_WIDTH:.0f} points ({'; '.join(wide)}): the test set is too small to tell "
                   f"sets apart; {SPLIT_ADVICE}.")]


def duplicate_leak(count: int, total: int) -> list[Caveat]:
    if not count:
        return []
    return [Caveat("duplicates", "test split", f"{count} of {total} test images are pixel-identical to training "
                   "images: every test figure is inflated. Deduplicate the source, or give patient ids in a CSV "
                   "manifest so the split is made by patient.")]


def find_caveats(evaluations: list[dict], class_names: list[str], test_counts: list[int], metrics: list[str],
                 duplicates_in_train: int = 0) -> list[Caveat]:
    """Every caveat of a report, the data's first, then per set in table order."""
    out = small_classes(class_names, test_counts) + duplicate_leak(duplicates_in_train, sum(test_counts))
    random_real = _by_name(evaluations).get("random_real")
    for ev in evaluations:
        out += one_class_models(ev, class_names, test_counts)
        if ev["kind"] == "distilled" and random_real_for(ev, random_real) is not None:
            out += not_above_random(ev, random_real_for(ev, random_real))
        out += wide_intervals(ev, metrics)
    return out


def share_recommendation(evaluations: list[dict], caveats: list[Caveat]) -> str:
    """One plain paragraph: which distilled set to share, if any, and why (or why none)."""
    by_name = _by_name(evaluations)
    random_real, full = by_name.get("random_real"), by_name.get("full_data")
    blocked = {c.subject for c in caveats if c.kind in ("one_class", "not_above_random")}
    distilled = [ev for ev in evaluations if ev["kind"] == "distilled"]
    if not distilled or random_real is None:
        return "No distilled set and random-real baseline to compare: nothing to recommend."
    gains = {ev["name"]: paired_difference(
        ev["uncertainty"]["samples"]["balanced_accuracy"],
        random_real_for(ev, random_real)["uncertainty"]["samples"]["balanced_accuracy"]) for ev in distilled}
    candidates = [ev for ev in distilled if ev["name"] not in blocked and gains[ev["name"]]["excludes_zero"]
                  and gains[ev["name"]]["difference"] > 0]
    provisional = any(c.kind in ("wide_interval", "small_class") for c in caveats)
    if not candidates:
        return ("Share none of the distilled sets yet: none beats a random real subset of the same size by a margin "
                "the test set can confirm (balanced accuracy, paired 95 % interval above zero)"
                + (", and the warnings above say why the figures are unreliable" if provisional else "")
                + ". Distil with more iterations or images per class, or on more data, and run again.")
    best = max(candidates, key=lambda ev: ev["final"]["test"]["balanced_accuracy"]["mean"])
    ci = best["uncertainty"]["ci"]["balanced_accuracy"]
    gain = gains[best["name"]]
    text = (f"If you share one set, share {best['name']}: it reaches "
            f"{100 * best['final']['test']['balanced_accuracy']['mean']:.1f} % balanced accuracy (95 % CI "
            f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}), {100 * gain['difference']:+.1f} points over random real images "
            f"({100 * gain['ci'][0]:+.1f} to {100 * gain['ci'][1]:+.1f})")
    if full is not None:
        gap = paired_difference(best["uncertainty"]["samples"]["balanced_accuracy"],
                                full["uncertainty"]["samples"]["balanced_accuracy"])
        text += f" and {100 * gap['difference']:+.1f} points against the full training data"
    mia = best.get("membership")
    if mia:
        lo, hi = mia["auroc"]["ci"]
        text += (f"; a loss-threshold membership-inference attack on networks trained on it scores AUROC "
                 f"{mia['auroc']['point']:.2f} ({lo:.2f}–{hi:.2f}; 0.50 means it reveals "
                 "nothing about who was in the training data")
        if full is not None and full.get("membership"):
            text += f", full data {full['membership']['auroc']['point']:.2f}"
        text += ")"
    text += (f". Before sharing, check its nearest-real-image report (data/08_reporting/privacy/{best['name']}_privacy.json)"
             " for near copies of patients' images.")
    if provisional:
        text += " The warnings above apply: treat this choice as provisional."
    return text
