"""The default-run comparison's own arithmetic (benchmarks/default_run.py): run order, the accuracy
table and its paired differences, checked against hand-written numbers; the runs are the script's job."""
import statistics

import pytest

from tests.benchmark_script import load_benchmark

default_run = load_benchmark("default_run")


def _evaluation(network_accuracies: list[float], samples: list[float]) -> dict:
    """As an evaluation stores it: each network's accuracy, their mean and (population) std, and the
    bootstrap replicates."""
    accuracy = {"mean": statistics.mean(network_accuracies), "std": statistics.pstdev(network_accuracies)}
    return {"final": {"test": {"accuracy": accuracy, "models": [{"accuracy": a} for a in network_accuracies]}},
            "uncertainty": {"samples": {"accuracy": samples}}}


def test_commits_alternate_so_neither_always_runs_first():
    assert default_run.run_order(1) == [0, 1]
    assert default_run.run_order(3) == [0, 1, 1, 0, 0, 1]


def test_accuracy_table_and_paired_difference_in_points():
    base = {"mtt": _evaluation([0.70, 0.72], [0.70, 0.71, 0.72, 0.70]),
            "random_real": _evaluation([0.5], [0.5] * 4)}
    head = {"mtt": _evaluation([0.74, 0.74], [0.73, 0.73, 0.74, 0.75]),
            "random_real": _evaluation([0.5], [0.5] * 4), "only_in_head": _evaluation([0.9], [0.9] * 4)}
    table = default_run.compare_accuracy(base, head)
    assert set(table) == {"mtt", "random_real"}          # sets both commits evaluated
    assert table["mtt"]["base"] == pytest.approx((71.0, 1.0))
    assert table["mtt"]["head"] == pytest.approx((74.0, 0.0))
    # replicate differences 3, 2, 2, 5 points: head better, interval above 0
    assert table["mtt"]["paired"]["difference"] == pytest.approx(3.0)
    assert table["mtt"]["paired"]["excludes_zero"]
    assert table["random_real"]["paired"]["difference"] == pytest.approx(0.0)
    assert not table["random_real"]["paired"]["excludes_zero"]


def test_runs_that_differ_are_not_called_repeatable():
    run = {"evaluations": {"mtt": _evaluation([0.70, 0.72], [0.7])}}
    other = {"evaluations": {"mtt": _evaluation([0.70, 0.7201], [0.7])}}
    assert default_run.repeatable([run, run])
    assert not default_run.repeatable([run, other])
