"""Speed and memory figures for ddforge's core, printed as JSON.

Runs on any machine with torch (no Kedro needed), on random data of the configured shape (speed
does not depend on pixel values). Each distillation measurement runs in a fresh subprocess so its
peak memory is its own: process RSS on CPU, torch.cuda.max_memory_allocated on GPU. Every speed
is also given as a fraction of this machine's dense float32 matmul FLOP/s, measured in the same run.

    python benchmarks/bench.py                       # default config (conf/base sizes), all figures
    python benchmarks/bench.py --only memory         # constant-memory vs unrolled
    python benchmarks/bench.py --device cuda --width 128 --ipc 10
    python benchmarks/bench.py --env paper         # sizes from conf/base overridden by conf/paper
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ddforge.core.evaluation import EvalConfig, train_curriculum  # noqa: E402
from ddforge.core.experts import ExpertConfig, train_expert  # noqa: E402
from ddforge.core.networks import NetworkSpec, build_network  # noqa: E402
from ddforge.methods.base import DistillContext  # noqa: E402
from ddforge.methods.registry import METHODS, distill  # noqa: E402


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


def forward_flops(spec: NetworkSpec) -> int:
    """Multiply-adds ×2 of convolutions and the classifier for one image (norms/pools ignored)."""
    net, total = build_network(spec, 0), 0

    def count(module: nn.Module, inputs, output) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * module.in_channels * k * module.out_channels * output.shape[2] * output.shape[3]
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in net.modules()]
    net(torch.zeros(1, spec.in_channels, *spec.im_size))
    for h in hooks:
        h.remove()
    return total


def fake_data(spec: NetworkSpec, n: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, spec.in_channels, *spec.im_size, generator=g)
    y = torch.arange(n) % spec.num_classes
    return x.to(device), y.to(device)


EXPERT_MODES = {
    "eager": {},
    "channels_last": {"channels_last": True},
    "compiled": {"compile": True},
    "compiled_channels_last": {"compile": True, "channels_last": True},
}


def expert_speed(spec: NetworkSpec, device: torch.device, images: int, mode: dict) -> dict:
    """Images/s of expert training (DSA on, MTT's SGD) after a warm-up that also pays compilation."""
    x, y = fake_data(spec, images, device)
    cfg = ExpertConfig(epochs=1, **mode)
    t = time.perf_counter()
    warm = 1024 + images % cfg.batch_size  # the same partial last batch, so no recompilation is timed
    train_expert(spec, x[:warm], y[:warm], cfg, seed=0, generator=torch.Generator().manual_seed(0), device=device)
    warmup = time.perf_counter() - t
    sync(device)
    t = time.perf_counter()
    train_expert(spec, x, y, cfg, seed=1, generator=torch.Generator().manual_seed(0), device=device)
    sync(device)
    return {"images_per_s": images / (time.perf_counter() - t), "warmup_seconds": warmup}


def expert_accuracy(spec: NetworkSpec, device: torch.device, mode: dict, epochs: int) -> float | None:
    """Test accuracy of one expert on real Fashion-MNIST (if installed): speed must not cost accuracy."""
    from ddforge.core.transforms import apply_transform, fit_transform
    from ddforge.core.training import predict_logits
    from ddforge.io.readers import read_idx

    try:
        raw = read_idx(["/usr/share/datasets/fashion-mnist", "data/01_raw/fashion-mnist"])
    except Exception:  # noqa: BLE001 - optional check
        return None
    transform = fit_transform(raw.train_images[:5000], zca=False)
    x, y = apply_transform(raw.train_images[:5000], transform), raw.train_labels[:5000]
    tx, ty = apply_transform(raw.test_images[:2000], transform), raw.test_labels[:2000]
    from ddforge.core.flat import load_flat

    result = train_expert(spec, x.to(device), y.to(device), ExpertConfig(epochs=epochs, **mode), seed=0,
                          generator=torch.Generator().manual_seed(0), device=device)
    net = build_network(spec, 0, device)
    load_flat(net, result["trajectory"][-1].to(device))
    return (predict_logits(net, tx).argmax(1) == ty).float().mean().item()


def eval_speed(spec: NetworkSpec, device: torch.device, ipc: int, epochs: int) -> float:
    x, y = fake_data(spec, ipc * spec.num_classes, device)
    net = build_network(spec, 0, device)
    cfg = EvalConfig(epochs=epochs)
    sync(device)
    t = time.perf_counter()
    train_curriculum(net, [(x, y, 0.01)], cfg, torch.Generator().manual_seed(0))
    sync(device)
    return x.shape[0] * epochs / (time.perf_counter() - t)


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


def distill_once(args: argparse.Namespace) -> dict:
    """One method, one config, in this process: seconds per iteration and peak memory growth."""
    device = torch.device(args.device)
    spec = NetworkSpec(args.channels, args.classes, (args.size, args.size), width=args.width, depth=args.depth)
    x, y = fake_data(spec, args.classes * max(args.ipc, 20), device)
    trajectories = [torch.cumsum(0.01 * torch.randn(8, sum(p.numel() for p in build_network(spec, 0).parameters()),
                                                    generator=torch.Generator().manual_seed(e)), 0) for e in range(2)]
    ctx = DistillContext(x, y, [str(c) for c in range(args.classes)], spec, trajectories, seed=0, device=device)
    params = {"ipc": args.ipc, "iterations": args.iterations, "snapshot_every": 10**9, "checkpoint_every": 10**9,
              "log_every": 10**9, "syn_steps": args.syn_steps, "expert_epochs": 2, "max_start_epoch": 4,
              "inner_loop": args.inner_loop, "lr_img": 100.0}
    if args.method == "datadam":
        params = {k: v for k, v in params.items() if k not in ("syn_steps", "expert_epochs", "max_start_epoch", "inner_loop")}
        params.update(lr_img=1.0, batch_real=64)
    if args.method == "seqmatch":
        params.update(num_subsets=1)  # the matching step itself; conditioned experts are expert training
    sync(device)
    baseline = reset_peak_memory(device)  # data and model set up, no distillation yet
    distill(args.method, {**params, "iterations": 1}, ctx, run_key="warm", checkpoint_path=None)
    t = time.perf_counter()
    distill(args.method, params, ctx, run_key="bench", checkpoint_path=None)
    sync(device)
    seconds = (time.perf_counter() - t) / args.iterations
    return {"method": args.method, "inner_loop": args.inner_loop, "ipc": args.ipc, "syn_steps": args.syn_steps,
            "seconds_per_iteration": seconds, "peak_memory_bytes": peak_memory_bytes(device),
            "baseline_memory_bytes": baseline}


def run_child(args: argparse.Namespace, **overrides: object) -> dict:
    cmd = [sys.executable, __file__, "--child"]
    for k, v in {**vars(args), **overrides}.items():
        if k in ("child", "only", "out", "env"):
            continue
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def env_defaults(env: str | None) -> dict:
    """Network and distillation sizes of a Kedro environment (base, then the env's single-key overrides)."""
    import yaml

    conf = Path(__file__).resolve().parents[1] / "conf"
    merged: dict = {}
    for folder in ["base"] + ([env] if env and env != "base" else []):
        for name in ("parameters.yml", "parameters_mtt.yml"):
            path = conf / folder / name
            if path.exists():
                _merge(merged, yaml.safe_load(path.read_text()) or {})
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
    p.add_argument("--only", choices=["all", "memory", "speed"], default="all")
    p.add_argument("--out", default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    if known.env:
        p.set_defaults(**env_defaults(known.env))
    args = p.parse_args()
    if args.child:
        print(json.dumps(distill_once(args)))
        return
    device = torch.device(args.device)
    spec = NetworkSpec(args.channels, args.classes, (args.size, args.size), width=args.width, depth=args.depth)
    peak = matmul_peak(device)
    flops = forward_flops(spec)
    result: dict = {
        "env": args.env, "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "network": spec.as_dict(), "matmul_flops_per_s": peak, "forward_flops_per_image": flops,
    }
    if args.only in ("all", "speed"):
        experts = {}
        for name, mode in EXPERT_MODES.items():
            row = expert_speed(spec, device, args.expert_images, mode)
            row["fraction_of_matmul_peak"] = 3 * flops * row["images_per_s"] / peak
            row["speedup_vs_eager"] = row["images_per_s"] / experts["eager"]["images_per_s"] if experts else 1.0
            experts[name] = row
        for name in ("eager", "compiled_channels_last"):
            experts[name]["fmnist_test_accuracy_6_epochs"] = expert_accuracy(spec, device, EXPERT_MODES[name], 6)
        result["expert_training"] = experts
        ev = eval_speed(spec, device, args.ipc, epochs=50)
        result["evaluation_training"] = {"images_per_s": ev, "fraction_of_matmul_peak": 3 * flops * ev / peak}
        result["distillation"] = [run_child(args, method=m) for m in METHODS]
    if args.only in ("all", "memory"):
        rows = [run_child(args, method="mtt", inner_loop=mode, syn_steps=steps)
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
        result["constant_memory"] = {"runs": rows, "summary": summary}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
