"""The CPU tier's time floor (benchmarks/tier_floor.py): its arithmetic against hand-worked numbers;
the timings are the script's job."""
import math

import pytest

from tests.benchmark_script import load_benchmark

tier_floor = load_benchmark("tier_floor").tier_floor

# two methods: 1 s and 2 s per iteration, 100 and 200 FLOPs: 100 FLOP/s together
ROWS = [{"seconds_per_iteration": 1.0, "flops_per_iteration": 100},
        {"seconds_per_iteration": 2.0, "flops_per_iteration": 200}]


def test_minutes_at_measured_speed_and_at_peak():
    floor = tier_floor(ROWS, iterations=60, rest_minutes=30.0, budget_minutes=31.0, peak_flops=1000.0)
    assert floor["distillation_minutes_measured_speed"] == pytest.approx(3.0)   # 60 × 3 s
    assert floor["distillation_minutes_at_matmul_peak"] == pytest.approx(0.3)   # 60 × 300 FLOPs / 1000
    assert floor["tier_minutes_measured_speed"] == pytest.approx(33.0)
    assert floor["tier_minutes_at_matmul_peak"] == pytest.approx(30.3)
    # one minute is left for 3 minutes of distillation: 3x faster, 30 % of the peak instead of 10 %
    assert floor["speedup_needed"] == pytest.approx(3.0)
    assert floor["fraction_of_matmul_peak_measured"] == pytest.approx(0.1)
    assert floor["fraction_of_matmul_peak_needed"] == pytest.approx(0.3)
    assert floor["fits_at_matmul_peak"]


def test_no_room_left_cannot_fit_at_any_speed():
    floor = tier_floor(ROWS, iterations=60, rest_minutes=40.0, budget_minutes=31.0, peak_flops=1000.0)
    assert math.isinf(floor["speedup_needed"])
    assert not floor["fits_at_matmul_peak"]


def test_dense_share_counts_convolutions_and_matrix_products_only():
    module = load_benchmark("tier_floor")
    self_seconds = {"aten::mkldnn_convolution": 2.0, "aten::convolution_backward": 3.0, "aten::mm": 1.0,
                    "aten::native_group_norm": 2.0, "aten::avg_pool2d": 1.0, "aten::mul": 1.0}
    assert module.dense_share(self_seconds) == pytest.approx(0.6)   # 6 of 10 s
    assert not module.is_dense_op("aten::avg_pool2d_backward")
