"""95 % intervals that account for the finite test set, not only for the evaluation networks.

Accuracy "77.8 ± 0.0" over three networks on a 9-image test set says the networks agree; it says
nothing about how far 7/9 is from what the model would score on the next 9 patients. The
stratified bootstrap resamples the test images within each class (class counts preserved) and,
per replicate, draws one evaluation network at random, so an interval pools both sources of error.

Every replicate is a set of multiplicities (how often each test image was drawn), so all metrics
are evaluated as weighted counts over the original images: one sort per network and class instead
of one per replicate. The weighted metrics equal `metrics.classification_metrics` on the
explicitly resampled images (tests/core/test_uncertainty.py checks this to 1e-12); a per-replicate
call to it costs ~34 ms at N = 10 000, K = 10, i.e. ~34 s for 1000 replicates.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ddforge.core.metrics import PER_CLASS_METRICS

Evaluate = Callable[[int, torch.Tensor], dict[str, torch.Tensor]]  # (network, weights [R, N]) -> [R] each


def per_class_key(name: str, c: int) -> str:
    """Flat key of a per-class metric in replicate dicts, e.g. `sensitivity[2]` for class index 2."""
    return f"{name}[{c}]"


def stratified_bootstrap_indices(labels: torch.Tensor, replicates: int, generator: torch.Generator) -> torch.Tensor:
    """[B, N] indices: position i of each replicate is a random test image of the class of image i.

    So `labels[indices[b]] == labels` for every b: class counts are those of the test set, and the
    same indices can be reused for every method's predictions, which makes comparisons paired.
    """
    labels = labels.cpu()
    out = torch.empty(replicates, labels.shape[0], dtype=torch.long)
    for c in torch.unique(labels):
        members = (labels == c).nonzero().flatten()
        draw = torch.randint(members.shape[0], (replicates, members.shape[0]), generator=generator)
        out[:, members] = members[draw]
    return out


def multiplicities(indices: torch.Tensor, size: int) -> torch.Tensor:
    """[R, size] float64: how many times each of `size` items appears in each row of `indices`."""
    counts = torch.zeros(indices.shape[0], size, dtype=torch.float64)
    return counts.scatter_add_(1, indices, torch.ones(indices.shape, dtype=torch.float64))


def _score_groups(scores: torch.Tensor, descending: bool) -> tuple[torch.Tensor, int]:
    """For each example, the rank of its score among the distinct scores (ties share one)."""
    ordered, order = scores.sort(descending=descending)
    group = torch.zeros_like(order)
    group[1:] = (ordered[1:] != ordered[:-1]).cumsum(0)
    return torch.empty_like(group).scatter_(0, order, group), int(group[-1]) + 1 if len(group) else 0


def weighted_class_counts(
    scores: torch.Tensor, positive: torch.Tensor, weights: torch.Tensor, descending: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted positives and negatives per distinct score, in score order: two [R, G] tensors.

    Tied scores fall into one group, so no threshold can separate them.
    """
    group, n_groups = _score_groups(scores.cpu(), descending)
    slot = group + n_groups * (~positive.cpu()).long()  # positives in [0, G), negatives in [G, 2G)
    counts = torch.zeros(weights.shape[0], 2 * n_groups, dtype=weights.dtype).index_add_(1, slot, weights)
    return counts[:, :n_groups], counts[:, n_groups:]


def weighted_binary_auroc(scores: torch.Tensor, positive: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[R] AUROCs, row r as if example i appeared `weights[r, i]` times (ties count half).

    Same definition as `metrics.binary_auroc` on the repeated examples; NaN without both classes.
    """
    pos, neg = weighted_class_counts(scores, positive, weights)
    twice_below_or_tied = 2 * neg.cumsum(1) - neg  # negatives strictly lower, ties counted half, ×2
    n_pos, n_neg = pos.sum(1), neg.sum(1)
    auroc = (pos * twice_below_or_tied).sum(1) / (2 * n_pos * n_neg)
    return auroc.masked_fill((n_pos == 0) | (n_neg == 0), float("nan"))


def weighted_classification_metrics(probabilities: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every metric of `metrics.classification_metrics`, one value per row of `weights` [R, N].

    Keys: SCALAR_METRICS, then `per_class_key(name, c)` for PER_CLASS_METRICS and c in range(K);
    NaN where a metric is undefined (a class without positives or without negatives).
    """
    k = probabilities.shape[1]
    labels = labels.cpu()
    cell = labels * k + probabilities.argmax(1).cpu()
    confusion = (weights @ F.one_hot(cell, k * k).to(weights.dtype)).view(-1, k, k)  # [R, true, predicted]
    hits = confusion.diagonal(dim1=1, dim2=2)
    true, predicted = confusion.sum(2), confusion.sum(1)
    total = true.sum(1, keepdim=True)
    sensitivity = hits / true
    specificity = (total - true - predicted + hits) / (total - true)
    aurocs = torch.stack([weighted_binary_auroc(probabilities[:, c], labels == c, weights) for c in range(k)], 1)
    out = {
        "accuracy": hits.sum(1) / total[:, 0],
        "balanced_accuracy": sensitivity.nanmean(1),
        "macro_auroc": aurocs.nanmean(1),
    }
    for name, values in zip(PER_CLASS_METRICS, (sensitivity, specificity)):
        out.update({per_class_key(name, c): values[:, c] for c in range(k)})
    return out


def pooled_replicates(
    num_networks: int, indices: torch.Tensor, size: int, generator: torch.Generator, evaluate: Evaluate, chunk: int = 128
) -> dict[str, torch.Tensor]:
    """Bootstrap replicates that pool the spread over networks with the resampling of examples.

    Replicate b is scored by one network drawn uniformly from `generator` on the examples in
    `indices[b]` (given to `evaluate` as multiplicities over `size` examples, in chunks of rows).
    """
    replicates = indices.shape[0]
    networks = torch.randint(num_networks, (replicates,), generator=generator)
    out: dict[str, torch.Tensor] = {}
    for m in range(num_networks):
        for rows in (networks == m).nonzero().flatten().split(chunk):
            for key, values in evaluate(m, multiplicities(indices[rows], size)).items():
                out.setdefault(key, torch.full((replicates,), float("nan"), dtype=torch.float64))[rows] = values
    return out


def metric_replicates(
    probabilities: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Every metric on every bootstrap replicate: {key: float64 [B]} (keys as in
    `weighted_classification_metrics`), from class probabilities [M, N, K] of M networks.

    Pass the same `indices` and an identically seeded `generator` for every method, so that
    replicate b of two methods uses the same test images and the same network slot (paired).
    """
    probabilities = probabilities.detach().cpu()

    def evaluate(m: int, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        return weighted_classification_metrics(probabilities[m], labels, weights)

    return pooled_replicates(probabilities.shape[0], indices, labels.shape[0], generator, evaluate)


def percentile_interval(values: torch.Tensor, level: float = 0.95) -> tuple[float, float]:
    """Central `level` percentile interval of bootstrap values (NaN replicates ignored)."""
    alpha = (1.0 - level) / 2
    lo, hi = torch.nanquantile(values.double(), torch.tensor([alpha, 1.0 - alpha], dtype=torch.float64))
    return float(lo), float(hi)


def paired_difference_interval(a: torch.Tensor, b: torch.Tensor, level: float = 0.95) -> dict:
    """Is method A better than B on this test set? Interval of the paired differences a − b.

    Returns {"difference": mean of the replicate differences a − b, "ci": [lo, hi],
    "excludes_zero": bool}; an interval excluding 0 means the gap is unlikely to be test-set luck.
    """
    d = a.double() - b.double()
    lo, hi = percentile_interval(d, level)
    return {"difference": float(d.nanmean()), "ci": [lo, hi], "excludes_zero": bool(lo > 0 or hi < 0)}


def summarise(
    probabilities: torch.Tensor, labels: torch.Tensor, replicates: dict[str, torch.Tensor], level: float = 0.95
) -> dict[str, dict]:
    """Per metric key, {"point": value on the full test set averaged over the M networks,
    "ci": [lo, hi] percentile interval of `replicates`}, for reports."""
    probabilities = probabilities.detach().cpu()
    ones = torch.ones(1, labels.shape[0], dtype=torch.float64)
    per_network = [weighted_classification_metrics(p, labels, ones) for p in probabilities]
    return {
        key: {"point": float(torch.cat([m[key] for m in per_network]).mean()), "ci": list(percentile_interval(values, level))}
        for key, values in replicates.items()
    }

