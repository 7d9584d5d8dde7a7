import math

import pytest
import torch

from ddforge.core.metrics import (
    PER_CLASS_METRICS,
    SCALAR_METRICS,
    binary_auroc,
    classification_metrics,
)
from ddforge.core.seeding import make_generator
from ddforge.core.uncertainty import (
    metric_replicates,
    multiplicities,
    paired_difference_interval,
    per_class_key,
    percentile_interval,
    stratified_bootstrap_indices,
    summarise,
    weighted_binary_auroc,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def _probabilities_with_correct(correct: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """[N, K] probabilities whose argmax is the label where `correct`, the next class otherwise."""
    predicted = torch.where(correct, labels, (labels + 1) % k)
    return torch.full((labels.shape[0], k), 0.1 / (k - 1)).scatter(1, predicted[:, None], 0.9)


def _interval(probabilities: torch.Tensor, labels: torch.Tensor, key: str = "accuracy", replicates: int = 1000):
    indices = stratified_bootstrap_indices(labels, replicates, make_generator(0, "test-set"))
    values = metric_replicates(probabilities, labels, indices, make_generator(0, "networks"))[key]
    return percentile_interval(values)


def test_indices_resample_within_each_class_and_keep_class_counts():
    labels = torch.tensor([0] * 5 + [2] * 30 + [1] * 2 + [2] * 3)[torch.randperm(40, generator=torch.Generator().manual_seed(0))]
    indices = stratified_bootstrap_indices(labels, 200, make_generator(1, "boot"))
    assert indices.shape == (200, 40) and indices.dtype == torch.long
    assert torch.equal(labels[indices], labels.expand(200, -1))  # same class at every position
    counts = multiplicities(indices, 40)
    for c in range(3):
        assert torch.all(counts[:, labels == c].sum(1) == (labels == c).sum())
    assert counts.max() > 1 and (counts == 0).any()  # really resampled with replacement
    assert torch.equal(indices, stratified_bootstrap_indices(labels, 200, make_generator(1, "boot")))
    assert not torch.equal(indices, stratified_bootstrap_indices(labels, 200, make_generator(2, "boot")))


def test_replicates_equal_metrics_py_on_the_explicitly_resampled_images():
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 4, (60,), generator=g)
    logits = torch.randint(0, 3, (1, 60, 4), generator=g).float()  # many tied scores and argmax ties
    indices = stratified_bootstrap_indices(labels, 20, g)
    replicates = metric_replicates(logits.softmax(-1), labels, indices, g)
    assert set(replicates) == set(SCALAR_METRICS) | {per_class_key(n, c) for n in PER_CLASS_METRICS for c in range(4)}
    for b in range(20):
        expected = classification_metrics(logits[0, indices[b]], labels[indices[b]], 4)
        for key in SCALAR_METRICS:
            assert abs(replicates[key][b].item() - expected[key]) < 1e-6, key
        for name in PER_CLASS_METRICS:
            for c in range(4):
                assert abs(replicates[per_class_key(name, c)][b].item() - expected[name][c]) < 1e-6


def test_weighted_auroc_is_binary_auroc_of_the_repeated_examples():
    g = torch.Generator().manual_seed(4)
    scores = torch.randint(0, 6, (30,), generator=g).float()
    positive = torch.rand(30, generator=g) < 0.4
    weights = torch.randint(0, 4, (10, 30), generator=g).double()
    got = weighted_binary_auroc(scores, positive, weights)
    for r in range(10):
        repeated = torch.arange(30).repeat_interleave(weights[r].long())
        assert abs(got[r].item() - binary_auroc(scores[repeated], positive[repeated])) < 1e-12


def test_perfect_classifier_has_interval_one_to_one():
    labels = torch.arange(3).repeat(20)
    probabilities = torch.nn.functional.one_hot(labels, 3).float().expand(2, -1, -1)
    assert _interval(probabilities, labels) == (1.0, 1.0)
    assert _interval(probabilities, labels, "macro_auroc") == (1.0, 1.0)


def test_nine_test_images_give_a_wide_interval_and_two_thousand_a_narrow_one():
    def interval_width(n: int, n_correct: int) -> float:
        labels = torch.arange(3).repeat(n // 3)
        correct = torch.zeros(n, dtype=torch.bool)
        correct[torch.randperm(n, generator=torch.Generator().manual_seed(n))[:n_correct]] = True
        probabilities = _probabilities_with_correct(correct, labels, 3).expand(3, -1, -1)  # 3 agreeing networks
        lo, hi = _interval(probabilities, labels)
        return hi - lo

    assert interval_width(9, 7) > 0.20  # "77.8 ± 0.0" on 9 images
    assert interval_width(2001, 1556) < 0.05  # same per-image accuracy on 2001 images


def test_bootstrap_interval_matches_the_normal_approximation_for_bernoulli_correctness():
    n = 200
    labels = torch.zeros(n, dtype=torch.long)
    correct = torch.rand(n, generator=torch.Generator().manual_seed(5)) < 0.7
    p = correct.sum().item() / n  # observed accuracy: the centre of both intervals
    half = 1.96 * math.sqrt(p * (1 - p) / n)
    lo, hi = _interval(_probabilities_with_correct(correct, labels, 2)[None], labels, replicates=4000)
    assert abs(lo - (p - half)) < 0.02 and abs(hi - (p + half)) < 0.02


def test_networks_that_disagree_widen_the_interval():
    labels = torch.arange(2).repeat(150)
    g = torch.Generator().manual_seed(6)
    networks = torch.stack([_probabilities_with_correct(torch.rand(300, generator=g) < p, labels, 2) for p in (0.6, 0.75, 0.9)])
    lo_pooled, hi_pooled = _interval(networks, labels)
    lo_same, hi_same = _interval(networks[1:2].expand(3, -1, -1), labels)
    assert hi_pooled - lo_pooled > 1.5 * (hi_same - lo_same)


def test_paired_difference_of_identical_predictions_is_exactly_zero():
    g = torch.Generator().manual_seed(7)
    labels = torch.randint(0, 3, (50,), generator=g)
    probabilities = torch.rand(2, 50, 3, generator=g).softmax(-1)
    indices = stratified_bootstrap_indices(labels, 300, g)
    a = metric_replicates(probabilities, labels, indices, make_generator(0, "networks"))["balanced_accuracy"]
    b = metric_replicates(probabilities.clone(), labels, indices, make_generator(0, "networks"))["balanced_accuracy"]
    assert paired_difference_interval(a, b) == {"difference": 0.0, "ci": [0.0, 0.0], "excludes_zero": False}
    better = paired_difference_interval(a + 0.1, b)
    assert better["excludes_zero"] and abs(better["difference"] - 0.1) < 1e-9


def test_percentile_interval_by_hand():
    values = torch.arange(101, dtype=torch.float64)  # 0..100: the 2.5th and 97.5th percentiles
    assert percentile_interval(values) == pytest.approx((2.5, 97.5), abs=1e-12)
    assert percentile_interval(values, level=0.5) == pytest.approx((25.0, 75.0), abs=1e-12)


def test_summarise_points_are_metrics_py_on_the_full_test_set_averaged_over_networks():
    g = torch.Generator().manual_seed(8)
    labels = torch.randint(0, 3, (40,), generator=g)
    logits = torch.randn(2, 40, 3, generator=g)
    probabilities = logits.softmax(-1)
    replicates = metric_replicates(probabilities, labels, stratified_bootstrap_indices(labels, 100, g), g)
    summary = summarise(probabilities, labels, replicates)
    per_network = [classification_metrics(logits[m], labels, 3) for m in range(2)]
    for key in SCALAR_METRICS:
        assert abs(summary[key]["point"] - sum(m[key] for m in per_network) / 2) < 1e-6
        assert list(percentile_interval(replicates[key])) == summary[key]["ci"]
    assert abs(summary[per_class_key("specificity", 1)]["point"] - sum(m["specificity"][1] for m in per_network) / 2) < 1e-6
