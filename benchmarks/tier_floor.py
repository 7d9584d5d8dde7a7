"""Could the CPU tier of docs/fidelity.md fit its 120 minutes with IPC 10 curves that have levelled off?

The tier's IPC 10 trajectory losses flatten after about 1000 iterations (docs/fidelity.md), and the
rest of the tier (IPC 1, the experts, both full-data and random-real baselines, DataDAM, every
evaluation) took `--rest-minutes` in the harness's from-scratch run. This script times one IPC 10
iteration of each trajectory method at the tier's size, counts its FLOPs (convolutions and matmuls,
double backward included; norms, pools and activations are not counted, so the count is a floor),
and prints how long those iterations take at the measured speed and at this machine's dense float32
matmul rate, which the counted work can hardly beat here. SeqMatch runs two subsets of IPC 5 one after the
other: the first student trains on 50 images, the second on 100 (the frozen first subset included).
A profile of one MTT iteration splits its time between convolutions and matmuls (what the FLOPs
count) and everything else (norms, pools, activations, elementwise work), which a faster
convolution would leave as it is.

    python benchmarks/tier_floor.py                      # the tier's sizes from conf/fidelity_cpu
    python benchmarks/tier_floor.py --iterations 400     # what a shorter run would need

Each method is timed in a fresh process (benchmarks/bench.py --child distill) on random data; the
profile runs the same MTT step in this process.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import distill_setup, env_defaults, matmul_peak, run_child  # noqa: E402

from ddforge.methods.registry import distill, resolve_config  # noqa: E402

# (method, IPC of the student's batch); SeqMatch twice, its two subsets
STEPS = (("mtt", 10), ("datm", 10), ("iadd", 10), ("seqmatch", 5), ("seqmatch", 10))
# the harness run of 2026-11-23 (docs/fidelity.md): 133.2 min, of which the IPC 10 trajectory
# distillations took 624.4 + 630.4 + 650.9 + 1044.5 s
REST_MINUTES = 133.2 - (624.4 + 630.4 + 650.9 + 1044.5) / 60


def step_args(method: str, ipc: int, sizes: dict, iterations: int) -> argparse.Namespace:
    """benchmarks/bench.py's arguments for `iterations` of one method's step at the tier's sizes."""
    return argparse.Namespace(**{**sizes, "method": method, "ipc": ipc, "iterations": iterations, "classes": 10,
                                 "inner_loop": "unrolled", "device": "cpu", "flops": 1})


def is_dense_op(name: str) -> bool:
    """Convolutions and matrix products (forward, backward, double backward): what the FLOPs count."""
    return "conv" in name or name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")


def dense_share(self_seconds: dict[str, float]) -> float:
    """The share of a step's own (self) op time spent in convolutions and matrix products."""
    return sum(t for name, t in self_seconds.items() if is_dense_op(name)) / sum(self_seconds.values())


def profile_step(args: argparse.Namespace) -> dict[str, float]:
    """Self CPU seconds per op of one iteration of the step bench.py times for `args`, after one
    unprofiled iteration."""
    ctx, params = distill_setup(args)
    one_iteration = resolve_config(args.method, {**params, "iterations": 1})
    distill(args.method, one_iteration, ctx, run_key="warm", checkpoint_path=None)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        distill(args.method, one_iteration, ctx, run_key="profile", checkpoint_path=None)
    return {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages() if e.self_cpu_time_total > 0}


def tier_floor(rows: list[dict], iterations: int, rest_minutes: float, budget_minutes: float,
               peak_flops: float) -> dict:
    """The tier's minutes with `iterations` of every row, at the measured speed and at `peak_flops`,
    and how much faster than measured the rows must run to fit `budget_minutes`."""
    measured = iterations * sum(r["seconds_per_iteration"] for r in rows) / 60
    at_peak = iterations * sum(r["flops_per_iteration"] for r in rows) / peak_flops / 60
    room = budget_minutes - rest_minutes
    needed_speedup = measured / room if room > 0 else float("inf")
    measured_rate = sum(r["flops_per_iteration"] for r in rows) / sum(r["seconds_per_iteration"] for r in rows)
    return {
        "iterations": iterations,
        "distillation_minutes_measured_speed": measured,
        "distillation_minutes_at_matmul_peak": at_peak,
        "tier_minutes_measured_speed": rest_minutes + measured,
        "tier_minutes_at_matmul_peak": rest_minutes + at_peak,
        "minutes_left_for_distillation": room,
        "speedup_needed": needed_speedup,
        "fraction_of_matmul_peak_measured": measured_rate / peak_flops,
        "fraction_of_matmul_peak_needed": needed_speedup * measured_rate / peak_flops,
        "fits_at_matmul_peak": rest_minutes + at_peak <= budget_minutes,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="fidelity_cpu", help="the Kedro environment whose sizes are timed")
    p.add_argument("--iterations", type=int, default=1000, help="IPC 10 iterations per method (per subset)")
    p.add_argument("--rest-minutes", type=float, default=REST_MINUTES,
                   help="the tier's minutes outside IPC 10 trajectory distillation (default: the 2026-11-23 run)")
    p.add_argument("--budget-minutes", type=float, default=120.0)
    p.add_argument("--timing-iterations", type=int, default=5, help="iterations timed per method")
    args = p.parse_args()
    sizes = env_defaults(args.env)
    peak = matmul_peak(torch.device("cpu"))
    rows = []
    for method, ipc in STEPS:
        row = run_child(step_args(method, ipc, sizes, args.timing_iterations), "distill")
        row["fraction_of_matmul_peak"] = row["flops_per_iteration"] / row["seconds_per_iteration"] / peak
        rows.append(row)
        print(f"[tier_floor] {method} IPC {ipc}: {row['seconds_per_iteration']:.2f} s/iteration, "
              f"{row['flops_per_iteration'] / 1e9:.1f} GFLOP, {row['fraction_of_matmul_peak']:.0%} of matmul peak",
              file=sys.stderr)
    self_seconds = profile_step(step_args("mtt", 10, sizes, 1))
    mtt = next(r for r in rows if r["method"] == "mtt")
    share = dense_share(self_seconds)
    floor = tier_floor(rows, args.iterations, args.rest_minutes, args.budget_minutes, peak)
    profiled = {"profiled_seconds": sum(self_seconds.values()), "dense_share": share,
                "other_seconds_per_iteration": (1 - share) * mtt["seconds_per_iteration"],
                "seconds_per_iteration_that_fits": mtt["seconds_per_iteration"] / floor["speedup_needed"],
                "slowest_other_ops": dict(sorted(((n, t) for n, t in self_seconds.items() if not is_dense_op(n)),
                                                 key=lambda item: -item[1])[:8])}
    result = {"env": args.env, "sizes": sizes, "threads": torch.get_num_threads(), "matmul_flops_per_s": peak,
              "rest_minutes": args.rest_minutes, "budget_minutes": args.budget_minutes, "steps": rows,
              "mtt_profile": profiled,
              "floor": floor}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
