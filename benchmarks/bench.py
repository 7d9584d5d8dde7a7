"""Speed and memory figures for ddforge's core, printed as JSON.

Runs on any machine with torch (no Kedro needed), on random data of the configured shape (speed
does not depend on pixel values). Each measurement runs in a fresh subprocess, so its peak memory
is its own (process RSS on CPU, torch.cuda.max_memory_allocated on GPU) and no compiled code is
shared between modes. Training modes run in alternating rounds and report the median. Every speed
is also a fraction of this machine's dense float32 matmul FLOP/s, measured in the same run, with
FLOPs counted by torch's FlopCounterMode; `targets` sets the issue's goals beside the figures.

    python benchmarks/bench.py                       # default config (conf/base sizes), all figures
    python benchmarks/bench.py --only memory         # constant-memory vs unrolled
    python benchmarks/bench.py --only allocators --width 128 --ipc 10 --syn-steps 10 --iterations 2 --rounds 1
    python benchmarks/bench.py --device cuda --width 128 --ipc 10
    python benchmarks/bench.py --env paper_fmnist  # sizes from conf/base overridden by conf/paper_fmnist
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # as `import ddforge` does, before torch's first allocation

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # allocator_env, also when bench is loaded by path

from allocator_env import scripts_preload

from ddforge.core.evaluation import EvalConfig, train_curriculum
from ddforge.core.experts import ExpertConfig, train_expert
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.core.training import classification_loss
from ddforge.methods.base import DistillContext
from ddforge.methods.registry import METHODS, distill, resolve_config


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, n: int = 2048, reps: int = 10) -> float:
    """Dense float32 matmul FLOP/s: the yardstick every other figure is divided by."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 * reps / best


def counted_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matmuls and convolutions `fn` runs, forward and backward (double backward
    included), as torch's FlopCounterMode counts them; norms, pools and activations are not counted."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def training_flops_per_image(spec: NetworkSpec, batch: int = 64) -> int:
    """One SGD step's FLOPs per image: forward plus backward (no input gradient for the first layer)."""
    net = build_network(spec, 0)
    x, y = fake_data(spec, batch, torch.device("cpu"))
    return counted_flops(lambda: classification_loss(net(x), y).backward()) // batch


def fake_data(spec: NetworkSpec, n: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, spec.in_channels, *spec.im_size, generator=g)
    y = torch.arange(n) % spec.num_classes
    return x.to(device), y.to(device)


TRAINING_MODES = {  # name: (ExpertConfig / EvalConfig options, PyTorch's huge-page allocation)
    "eager_plain": ({}, False),  # the plain eager loop, baseline of every speed-up
    "eager": ({}, True),
    "compiled_without_huge_pages": ({"compile": True}, False),
    "compiled": ({"compile": True}, True),
    "compiled_channels_last": ({"compile": True, "channels_last": True}, True),
}


def _median_rate(run: Callable[[], None], items: int, device: torch.device, repeats: int) -> dict:
    """Items/s of `run`, median of `repeats` timings (this shared machine varies by 10-20 % run to run)."""
    rates = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        run()
        sync(device)
        rates.append(items / (time.perf_counter() - t))
    return {"images_per_s": statistics.median(rates), "images_per_s_each": rates}


def expert_speed(spec: NetworkSpec, device: torch.device, images: int, mode: dict, repeats: int) -> dict:
    """Images/s of expert training (DSA on, MTT's SGD) after a warm-up that also pays compilation."""
    x, y = fake_data(spec, images, device)
    cfg = ExpertConfig(epochs=1, **mode)
    t = time.perf_counter()
    warm = 1024 + images % cfg.batch_size  # the same partial last batch, so no recompilation is timed
    train_expert(spec, x[:warm], y[:warm], cfg, seed=0, generator=torch.Generator().manual_seed(0), device=device)
    warmup = time.perf_counter() - t
    row = _median_rate(lambda: train_expert(spec, x, y, cfg, seed=1, generator=torch.Generator().manual_seed(0),
                                            device=device), images, device, repeats)
    return {**row, "warmup_seconds": warmup}


def expert_accuracy(spec: NetworkSpec, device: torch.device, mode: dict, epochs: int) -> float | None:
    """Test accuracy of one expert on real Fashion-MNIST (if installed): speed must not cost accuracy."""
    from ddforge.core.flat import load_flat
    from ddforge.core.training import predict_logits
    from ddforge.core.transforms import apply_transform, fit_transform
    from ddforge.io.readers import read_idx

    try:
        raw = read_idx(["/usr/share/datasets/fashion-mnist", "data/01_raw/fashion-mnist"])
    except Exception:  # noqa: BLE001 - optional check
        return None
    transform = fit_transform(raw.train_images[:5000], zca=False)
    x, y = apply_transform(raw.train_images[:5000], transform), raw.train_labels[:5000]
    tx, ty = apply_transform(raw.test_images[:2000], transform), raw.test_labels[:2000]
    result = train_expert(spec, x.to(device), y.to(device), ExpertConfig(epochs=epochs, **mode), seed=0,
                          generator=torch.Generator().manual_seed(0), device=device)
    net = build_network(spec, 0, device)
    load_flat(net, result["trajectory"][-1].to(device))
    return (predict_logits(net, tx).argmax(1) == ty).float().mean().item()


def eval_speed(spec: NetworkSpec, device: torch.device, ipc: int, epochs: int, mode: dict, repeats: int) -> dict:
    """Images/s of the evaluation protocol on an IPC-sized set; the first network pays compilation."""
    x, y = fake_data(spec, ipc * spec.num_classes, device)
    cfg = EvalConfig(epochs=epochs, **mode)
    nets = iter(range(repeats + 1))

    def run() -> None:
        net = build_network(spec, next(nets), device)
        train_curriculum(net, [(x, y, 0.01)], cfg, torch.Generator().manual_seed(0))

    t = time.perf_counter()
    run()
    warmup = time.perf_counter() - t
    return {**_median_rate(run, x.shape[0] * epochs, device, repeats), "warmup_seconds": warmup}


def _proc_status(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_memory(device: torch.device) -> int:
    """Starts a fresh peak measurement; returns the memory in use now (the baseline)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    try:  # Linux: writing 5 to clear_refs resets the RSS high-water mark (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _proc_status("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated()
    return _proc_status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def distill_setup(args: argparse.Namespace) -> tuple[DistillContext, dict]:
    """Random data, random expert trajectories and the method's parameters for `args` (pixel values
    do not change a step's cost)."""
    device = torch.device(args.device)
    spec = NetworkSpec(args.channels, args.classes, (args.size, args.size), width=args.width, depth=args.depth)
    x, y = fake_data(spec, args.classes * max(args.ipc, 20), device)
    trajectories = [torch.cumsum(0.01 * torch.randn(8, sum(p.numel() for p in build_network(spec, 0).parameters()),
                                                    generator=torch.Generator().manual_seed(e)), 0) for e in range(2)]
    ctx = DistillContext(x, y, [str(c) for c in range(args.classes)], spec, trajectories, seed=0, device=device,
                         ipc=[args.ipc] * args.classes, final_parameters=[t[-1] for t in trajectories])
    params = {"iterations": args.iterations, "snapshot_every": 10**9, "checkpoint_every": 10**9,
              "log_every": 10**9, "syn_steps": args.syn_steps, "expert_epochs": 2, "max_start_epoch": 4,
              "inner_loop": args.inner_loop, "lr_img": 100.0}
    if args.method == "datadam":
        params = {k: v for k, v in params.items() if k not in ("syn_steps", "expert_epochs", "max_start_epoch", "inner_loop")}
        params.update(lr_img=1.0, batch_real=64)
    if args.method == "seqmatch":
        params.update(num_subsets=1)  # the matching step itself; conditioned experts are expert training
    return ctx, params


def distill_once(args: argparse.Namespace) -> dict:
    """One method, one config, in this process: seconds per iteration and peak memory growth."""
    device = torch.device(args.device)
    ctx, params = distill_setup(args)
    sync(device)
    baseline = reset_peak_memory(device)  # data and model set up, no distillation yet
    one_iteration = resolve_config(args.method, {**params, "iterations": 1})
    distill(args.method, one_iteration, ctx, run_key="warm", checkpoint_path=None)
    t = time.perf_counter()
    distill(args.method, resolve_config(args.method, params), ctx, run_key="bench", checkpoint_path=None)
    sync(device)
    seconds = (time.perf_counter() - t) / args.iterations
    peak = peak_memory_bytes(device)
    # counted last: the counting mode's bookkeeping must not add to the peak memory measured above
    flops = counted_flops(lambda: distill(args.method, one_iteration, ctx, run_key="count",
                                          checkpoint_path=None)) if args.flops else None
    return {"method": args.method, "inner_loop": args.inner_loop, "ipc": args.ipc, "syn_steps": args.syn_steps,
            "seconds_per_iteration": seconds, "flops_per_iteration": flops, "peak_memory_bytes": peak,
            "baseline_memory_bytes": baseline}


def allocators() -> dict[str, dict[str, str]]:
    """The CPU memory allocators compared by `--only allocators` (name: environment of the child).
    An unrolled MTT step at width 128 allocates and frees tensors of tens of MiB; glibc maps each
    afresh from the OS and the kernel zeroes and faults it in every time, which a caching
    allocator avoids. The preloaded ones need their Debian packages (scripts/setup.sh installs
    tcmalloc's)."""
    out = {"glibc": {"THP_MEM_ALLOC_ENABLE": "0"}, "glibc+thp": {"THP_MEM_ALLOC_ENABLE": "1"},
           # glibc told never to mmap and never to trim: freed blocks stay in its heap for reuse
           "glibc-heap": {"THP_MEM_ALLOC_ENABLE": "0", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}}
    tcmalloc = scripts_preload(force_tcmalloc=True)  # where scripts/allocator.sh finds it
    if tcmalloc:
        out["tcmalloc"] = {**tcmalloc, "THP_MEM_ALLOC_ENABLE": "0"}
        out["tcmalloc+thp"] = {**tcmalloc, "THP_MEM_ALLOC_ENABLE": "1"}
    return out


def compare_allocators(args: argparse.Namespace) -> dict:
    """Every allocator on the unrolled and constant-memory step and on expert training, each in a
    fresh process, `rounds` passes in alternating order; medians."""
    variants = allocators()
    tasks = {"unrolled": ("distill", {"inner_loop": "unrolled", "flops": 0}),
             "constant_memory": ("distill", {"inner_loop": "constant_memory", "flops": 0}),
             "experts": ("experts", {"mode": "compiled_without_huge_pages"})}  # huge pages come from the variant
    runs: dict[str, dict[str, list[dict]]] = {v: {t: [] for t in tasks} for v in variants}
    for r in range(args.rounds):
        for variant in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            for task, (child, overrides) in tasks.items():
                row = run_child(args, child, env=variants[variant], **overrides)
                runs[variant][task].append(row)
                print(f"[allocators] round {r + 1} {variant:13s} {task:15s} "
                      + (f"{row['images_per_s']:.0f} images/s" if child == "experts" else
                         f"{row['seconds_per_iteration']:.2f} s/it, peak {row['peak_memory_bytes'] / 2**20:.0f} MiB"),
                      file=sys.stderr, flush=True)
    summary = {}
    for variant, by_task in runs.items():
        summary[variant] = {"env": variants[variant]}
        for task, rows in by_task.items():
            if task == "experts":
                summary[variant]["experts_images_per_s"] = statistics.median(r["images_per_s"] for r in rows)
            else:
                summary[variant][f"{task}_seconds_per_iteration"] = statistics.median(r["seconds_per_iteration"] for r in rows)
                summary[variant][f"{task}_peak_mib"] = statistics.median(r["peak_memory_bytes"] / 2**20 for r in rows)
    return {"summary": summary, "runs": runs}


def run_task(args: argparse.Namespace, spec: NetworkSpec, device: torch.device) -> dict:
    mode = TRAINING_MODES[args.mode][0]
    if args.child == "experts":
        row = expert_speed(spec, device, args.expert_images, mode, args.repeats)
        return {**row, "accuracy": expert_accuracy(spec, device, mode, 6) if args.accuracy else None}
    if args.child == "evaluation":
        return eval_speed(spec, device, args.ipc, 50, mode, args.repeats)
    return distill_once(args)


def training_modes(args: argparse.Namespace, task: str, flops_per_image: int, peak: float,
                   modes: tuple[str, ...] = tuple(TRAINING_MODES)) -> dict:
    """Each mode in its own process, `rounds` times in alternating order so slow spells of this
    shared machine fall on every mode alike; images/s is the median of all timings."""
    timings: dict[str, list[float]] = {m: [] for m in modes}
    rows: dict[str, dict] = {}
    for r in range(args.rounds):
        for mode in (modes if r % 2 == 0 else modes[::-1]):
            huge_pages = TRAINING_MODES[mode][1]
            row = run_child(args, task, env={"THP_MEM_ALLOC_ENABLE": str(int(huge_pages))}, mode=mode,
                            accuracy=int(r == 0 and huge_pages))  # huge pages do not change the numbers
            timings[mode] += row["images_per_s_each"]
            rows.setdefault(mode, row)
    out = {}
    for mode in modes:
        rate = statistics.median(timings[mode])
        out[mode] = {**rows[mode], "images_per_s": rate, "images_per_s_each": timings[mode],
                     "fraction_of_matmul_peak": flops_per_image * rate / peak,
                     "huge_pages": TRAINING_MODES[mode][1],
                     "speedup_vs_plain_eager": rate / statistics.median(timings["eager_plain"])}
    return out


def with_fraction(row: dict, peak: float) -> dict:
    row["fraction_of_matmul_peak"] = row["flops_per_iteration"] / row["seconds_per_iteration"] / peak
    return row


def targets(result: dict) -> dict:
    """The issue's targets next to the figures of this run (only those this run measured)."""
    out: dict = {}
    if "constant_memory" in result:
        summary = result["constant_memory"]["summary"]
        growth = summary["constant_memory"]["peak_growth_40_vs_10"]
        ratio = summary["constant_vs_unrolled_time_at_40"]
        out["constant_memory_peak_growth_below_1.3x"] = {"value": growth, "met": growth < 1.3}
        out["constant_memory_time_at_most_1.3x_unrolled"] = {"value": ratio, "met": ratio <= 1.3}
    if "expert_training" in result:
        experts = result["expert_training"]
        mode = experts[result["configured_expert_mode"]]
        accuracy = [experts[m]["fmnist_test_accuracy_6_epochs"] for m in ("eager", result["configured_expert_mode"])]
        out["configured_experts_at_least_1.5x_plain_eager"] = {"value": mode["speedup_vs_plain_eager"],
                                                               "met": mode["speedup_vs_plain_eager"] >= 1.5}
        if None not in accuracy:
            gap = 100 * abs(accuracy[0] - accuracy[1])
            out["configured_experts_accuracy_within_1_point"] = {"value": gap, "met": gap <= 1.0}
        out["configured_experts_at_least_35pct_of_matmul_peak"] = {
            "value": mode["fraction_of_matmul_peak"], "met": mode["fraction_of_matmul_peak"] >= 0.35}
    return out


def run_child(args: argparse.Namespace, task: str = "distill", env: dict[str, str] | None = None,
              **overrides: object) -> dict:
    """One measurement in a fresh process: its own peak memory, and no compiled code or recompilation
    left over from another mode (torch.compile's caches are per process)."""
    cmd = [sys.executable, __file__, "--child", task]
    for k, v in {**vars(args), **overrides}.items():
        if k in ("child", "only", "out", "env", "expert_mode", "rounds"):
            continue
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


def env_parameters(env: str | None) -> dict:
    """conf/base's parameters overridden by the environment's (as Kedro's soft merge does); empty
    without PyYAML, so the benchmark still runs where only torch is installed."""
    try:
        import yaml
    except ImportError:
        return {}

    conf = Path(__file__).resolve().parents[1] / "conf"
    merged: dict = {}
    for folder in ["base"] + ([env] if env and env != "base" else []):
        for name in ("parameters.yml", "parameters_mtt.yml"):
            path = conf / folder / name
            if path.exists():
                _merge(merged, yaml.safe_load(path.read_text()) or {})
    return merged


def configured_expert_mode(env: str | None) -> str:
    experts = env_parameters(env).get("experts", {})
    mode = {"compile": bool(experts.get("compile")), "channels_last": bool(experts.get("channels_last"))}
    return next(name for name, (m, huge_pages) in TRAINING_MODES.items()
                if huge_pages and {"compile": False, "channels_last": False, **m} == mode)


def env_defaults(env: str | None) -> dict:
    """Network and distillation sizes of a Kedro environment (base, then the env's single-key overrides)."""
    merged = env_parameters(env)
    network, pre = merged.get("network", {}), merged.get("preprocess", {})
    size = pre.get("image_size") or 28
    ipc = merged.get("ipc", 10)
    return {"width": network.get("width", 32), "depth": network.get("depth", 3),
            "size": size if isinstance(size, int) else size[0], "channels": pre.get("channels") or 1,
            "syn_steps": merged.get("mtt", {}).get("distill", {}).get("syn_steps", 20),
            "ipc": ipc if isinstance(ipc, int) else max(ipc)}


def _merge(into: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def main() -> None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env", default=None)
    known, _ = pre.parse_known_args()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[pre])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--syn-steps", type=int, default=20)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--method", default="mtt")
    p.add_argument("--inner-loop", default="unrolled")
    p.add_argument("--expert-images", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=3, help="timings per training figure (the median is kept)")
    p.add_argument("--expert-mode", choices=list(TRAINING_MODES), default=configured_expert_mode(known.env),
                   help="the mode the Kedro environment trains experts in (for the targets)")
    p.add_argument("--only", choices=["all", "memory", "speed", "allocators"], default="all")
    p.add_argument("--out", default=None)
    p.add_argument("--mode", choices=list(TRAINING_MODES), default="eager", help=argparse.SUPPRESS)
    p.add_argument("--accuracy", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--flops", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=2, help="passes over the training modes, alternating order")
    p.add_argument("--child", choices=["distill", "experts", "evaluation"], default=None, help=argparse.SUPPRESS)
    if known.env:
        p.set_defaults(**env_defaults(known.env))
    args = p.parse_args()
    device = torch.device(args.device)
    spec = NetworkSpec(args.channels, args.classes, (args.size, args.size), width=args.width, depth=args.depth)
    if args.child:
        print(json.dumps(run_task(args, spec, device)))
        return
    peak = matmul_peak(device)
    train_flops = training_flops_per_image(spec)
    result: dict = {
        "env": args.env, "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "network": spec.as_dict(), "matmul_flops_per_s": peak, "training_flops_per_image": train_flops,
        "configured_expert_mode": args.expert_mode,
    }

    if args.only in ("all", "speed"):
        experts = training_modes(args, "experts", train_flops, peak)
        for name in TRAINING_MODES:
            experts[name]["fmnist_test_accuracy_6_epochs"] = experts[name].pop("accuracy", None)
        result["expert_training"] = experts
        result["evaluation_training"] = training_modes(args, "evaluation", train_flops, peak,
                                                       modes=("eager_plain", "eager", "compiled"))
        result["distillation"] = [with_fraction(run_child(args, method=m), peak) for m in METHODS]
    if args.only == "allocators":
        result["allocators"] = compare_allocators(args)
    if args.only in ("all", "memory"):
        rows = [with_fraction(run_child(args, method="mtt", inner_loop=mode, syn_steps=steps), peak)
                for mode in ("unrolled", "constant_memory") for steps in (10, 40)]
        summary = {}
        for mode in ("unrolled", "constant_memory"):
            a, b = [r for r in rows if r["inner_loop"] == mode]
            growth = [(r["peak_memory_bytes"] - r["baseline_memory_bytes"]) or 1 for r in (a, b)]
            summary[mode] = {"peak_growth_40_vs_10": b["peak_memory_bytes"] / a["peak_memory_bytes"],
                             "distillation_memory_growth_40_vs_10": growth[1] / growth[0],
                             "seconds_per_iteration_10": a["seconds_per_iteration"],
                             "seconds_per_iteration_40": b["seconds_per_iteration"]}
        summary["constant_vs_unrolled_time_at_40"] = (summary["constant_memory"]["seconds_per_iteration_40"]
                                                      / summary["unrolled"]["seconds_per_iteration_40"])
        # glibc keeps freed heap memory, so process RSS also counts allocator retention, which varies
        # run to run. With the mmap threshold fixed at 1 MiB every freed tensor goes back to the OS
        # and RSS follows live memory (3x slower, so these runs are for memory only).
        live = [run_child(args, env={"MALLOC_MMAP_THRESHOLD_": str(2**20)}, method="mtt", inner_loop="constant_memory",
                          syn_steps=steps, iterations=1) for steps in (10, 40)]
        summary["constant_memory"]["peak_growth_40_vs_10_without_allocator_retention"] = (
            live[1]["peak_memory_bytes"] / live[0]["peak_memory_bytes"])
        result["constant_memory"] = {"runs": rows, "runs_without_allocator_retention": live, "summary": summary}
    result["targets"] = targets(result)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
