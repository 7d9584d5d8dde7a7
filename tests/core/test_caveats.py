"""Each report warning fires on a built case where it should, and stays silent where it should not."""
import random

from ddforge.core.caveats import find_caveats, paired_difference, share_recommendation

NAMES = ["COVID", "Normal", "Pneumonia"]
ENOUGH = [40, 40, 40]


def evaluation(name: str, balanced: float, *, kind: str = "distilled", spread: float = 0.02,
               ci_width: float = 0.05, predictions: list[tuple[int, float]] | None = None,
               auroc: float = 0.5, seed: int = 0) -> dict:
    """An evaluation summary as the evaluate node writes it (final checkpoint), with bootstrap
    samples around `balanced` whose shared seed makes two sets' samples move together (paired)."""
    rng = random.Random(seed)
    noise = [rng.gauss(0, spread) for _ in range(400)]
    samples = [balanced + e for e in noise]
    summary = {"accuracy": {"mean": balanced, "std": 0.01}, "balanced_accuracy": {"mean": balanced, "std": 0.01}}
    return {
        "name": name, "kind": kind, "final": {"test": summary},
        "uncertainty": {"ci": {"accuracy": [balanced - ci_width / 2, balanced + ci_width / 2],
                               "balanced_accuracy": [balanced - ci_width / 2, balanced + ci_width / 2]},
                        "samples": {"accuracy": samples, "balanced_accuracy": samples}},
        "predictions": [{"top_class": c, "top_share": s} for c, s in (predictions or [(0, 0.4), (1, 0.4)])],
        "membership": {"auroc": {"point": auroc, "ci": [auroc - 0.03, auroc + 0.03]},
                       "tpr_at_fpr": {"point": 0.01, "ci": [0.0, 0.02]}},
    }


def healthy() -> list[dict]:
    return [evaluation("mtt", 0.80), evaluation("random_real", 0.60, kind="baseline"),
            evaluation("full_data", 0.90, kind="baseline", auroc=0.7)]


def kinds(caveats) -> list[tuple[str, str]]:
    return [(c.kind, c.subject) for c in caveats]


def test_no_warning_on_a_healthy_report():
    assert find_caveats(healthy(), NAMES, ENOUGH, ["accuracy", "balanced_accuracy"]) == []


def test_small_test_class_is_named_with_what_to_do():
    caveats = find_caveats(healthy(), NAMES, [40, 3, 10], ["accuracy"])
    assert kinds(caveats) == [("small_class", "Normal")]  # 10 is enough, 3 is not
    assert "3 test images" in caveats[0].message and "test_fraction" in caveats[0].message


def test_one_class_network_is_flagged_unless_the_class_mix_explains_it():
    evs = healthy()
    evs[0]["predictions"] = [{"top_class": 0, "top_share": 1.0}, {"top_class": 1, "top_share": 0.5}]
    caveats = find_caveats(evs, NAMES, ENOUGH, ["accuracy"])
    assert kinds(caveats) == [("one_class", "mtt")]
    assert "1 of 2 evaluation networks predict 'COVID' for 100 %" in caveats[0].message
    # a test set that is 96 % COVID and a network that predicts COVID 97 % of the time while scoring
    # well above chance on balanced accuracy is not the failure mode
    evs[0]["predictions"] = [{"top_class": 0, "top_share": 0.97}]
    mix = [960, 20, 20]
    assert find_caveats(evs, NAMES, mix, ["accuracy"]) == []
    evs[0]["final"]["test"]["balanced_accuracy"]["mean"] = 0.34  # ... but at chance it is
    assert ("one_class", "mtt") in kinds(find_caveats(evs, NAMES, mix, ["accuracy"]))


def test_distilled_set_not_above_random_real():
    evs = healthy()
    evs[0] = evaluation("mtt", 0.60)  # equal to random real: "not above"
    caveats = find_caveats(evs, NAMES, ENOUGH, ["accuracy"])
    assert kinds(caveats) == [("not_above_random", "mtt")]
    assert "60.0 % is not above random real's 60.0 %" in caveats[0].message
    evs[0] = evaluation("mtt", 0.61)  # above (the interval decides the recommendation, not this warning)
    assert find_caveats(evs, NAMES, ENOUGH, ["accuracy"]) == []


def test_wide_interval_lists_each_metric_once_per_set():
    evs = healthy()
    evs[1] = evaluation("random_real", 0.60, kind="baseline", ci_width=0.30)
    caveats = find_caveats(evs, NAMES, ENOUGH, ["accuracy", "balanced_accuracy"])
    assert kinds(caveats) == [("wide_interval", "random_real")]
    assert "accuracy 45.0–75.0" in caveats[0].message and "balanced_accuracy 45.0–75.0" in caveats[0].message
    evs[1] = evaluation("random_real", 0.60, kind="baseline", ci_width=0.19)
    assert find_caveats(evs, NAMES, ENOUGH, ["accuracy"]) == []


def test_duplicates_between_train_and_test_are_a_warning_with_counts():
    caveats = find_caveats(healthy(), NAMES, ENOUGH, ["accuracy"], duplicates_in_train=7)
    assert kinds(caveats) == [("duplicates", "test split")] and "7 of 120 test images" in caveats[0].message


def test_paired_difference_of_identical_samples_is_zero():
    same = paired_difference([0.5, 0.7, 0.6], [0.5, 0.7, 0.6])
    assert same == {"difference": 0.0, "ci": [0.0, 0.0], "excludes_zero": False}


def test_recommendation_names_the_best_confirmed_set_or_none():
    evs = healthy() + [evaluation("datm", 0.85, auroc=0.52)]
    text = share_recommendation(evs, [])
    assert text.startswith("If you share one set, share datm: it reaches 85.0 % balanced accuracy")
    assert "AUROC 0.52" in text and "full data 0.70" in text and "datm_privacy.json" in text
    flagged = find_caveats([*evs[:3], evaluation("datm", 0.85, predictions=[(0, 1.0)])], NAMES, ENOUGH, ["accuracy"])
    assert "share mtt" in share_recommendation([*evs[:3], evaluation("datm", 0.85, predictions=[(0, 1.0)])], flagged)
    # a gain the paired interval cannot confirm (independent noise, tiny gap) is no recommendation
    unsure = [evaluation("mtt", 0.61, seed=1, spread=0.1), evaluation("random_real", 0.60, kind="baseline", seed=2,
                                                                         spread=0.1)]
    assert share_recommendation(unsure, []).startswith("Share none of the distilled sets yet")
