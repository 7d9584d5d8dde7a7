"""The benchmark's yardsticks: the FLOPs its fractions of the matmul peak are computed from."""
from ddforge.core.networks import NetworkSpec
from tests.benchmark_script import load_benchmark

bench = load_benchmark("bench")


def test_training_flops_per_image_equal_a_hand_count():
    # conv 1->4 channels, 3x3, 8x8 output: 2*1*9*4*64 forward, the same again for its weight gradient
    # (no input gradient for the first layer); linear 64->10: 2*64*10 forward, twice that backward
    conv, linear = 2 * 1 * 9 * 4 * 64, 2 * 64 * 10
    spec = NetworkSpec(1, 10, (8, 8), width=4, depth=1)
    assert bench.training_flops_per_image(spec) == 2 * conv + 3 * linear


def test_targets_report_each_goal_against_its_threshold():
    summary = {"unrolled": {"peak_growth_40_vs_10": 2.7},
               "constant_memory": {"peak_growth_40_vs_10": 1.35}, "constant_vs_unrolled_time_at_40": 1.1}
    experts = {"eager": {"speedup_vs_plain_eager": 1.4, "fraction_of_matmul_peak": 0.2,
                         "fmnist_test_accuracy_6_epochs": 0.72},
               "compiled": {"speedup_vs_plain_eager": 1.6, "fraction_of_matmul_peak": 0.34,
                            "fmnist_test_accuracy_6_epochs": 0.705}}
    targets = bench.targets({"constant_memory": {"summary": summary}, "expert_training": experts,
                             "configured_expert_mode": "compiled"})
    assert {k: v["met"] for k, v in targets.items()} == {
        "constant_memory_peak_growth_below_1.3x": False,
        "constant_memory_time_at_most_1.3x_unrolled": True,
        "configured_experts_at_least_1.5x_plain_eager": True,
        "configured_experts_accuracy_within_1_point": False,
        "configured_experts_at_least_35pct_of_matmul_peak": False,
    }
