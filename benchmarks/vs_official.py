"""ddforge side by side with the official MTT code (GeorgeCazenavette/mtt-distillation), issue #14.

Runs the official scripts from a checkout you point at (never copied into this repository) and
ddforge on one configuration, on CPU, each measurement in a fresh process, in alternating order:
- distillation: seconds per iteration and peak memory of the official distill.py against ddforge's
  MTT with the unrolled and the constant-memory inner loop;
- expert training: images/s of the official buffer.py against ddforge's expert training;
- optionally (--expert-epochs E) the test accuracy of one expert after E epochs on each side.

The official scripts run as they are, from a scratch copy with the few text substitutions in
SUBSTITUTIONS (Fashion-MNIST and CPU support); this file, re-run as a child under the official
side's Python, only adds timing hooks around them. It prints a table and writes JSON.

    .venv/bin/python benchmarks/vs_official.py --official /path/to/mtt-distillation \\
        --official-python /path/to/official-venv/bin/python
    ... --only distill --rounds 3 --width 128 --ipc 10 --syn-steps 10 --iterations 6
    ... --only experts --expert-epochs 6
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import io
import itertools
import json
import math
import os
import runpy
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from allocator_env import scripts_preload  # benchmarks/, this script's folder

# No torch at the top: the parent only orchestrates, and an official child must not import ddforge
# (bench.py) nor set its allocator variable.

REPO = Path(__file__).resolve().parents[1]
RESULT = "VS_OFFICIAL_RESULT "   # prefix of the one line of JSON a child prints last
OFFICIAL_FILES = ("distill.py", "buffer.py", "utils.py", "networks.py", "reparam_module.py")
OFFICIAL_PACKAGES = ("torch", "torchvision", "tqdm", "scipy", "kornia", "wandb")
FMNIST = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
EXPERT_EPOCHS, MAX_START_EPOCH = 2, 1   # official matching window: start at epoch 0, match epoch 2
BATCH = 256                             # buffer.py's --batch_train default, as ddforge's ExpertConfig
WARM_STEPS = 4                          # official expert warm-up: 1024 images, as bench.py's warm-up
ACCURACY_IMAGES = (5000, 2000)          # train / test images of bench.expert_accuracy (the first ones)

FMNIST_BRANCH = """    elif dataset == 'FashionMNIST':
        channel = 1
        im_size = (28, 28)
        num_classes = 10
        mean = [0.2861]
        std = [0.3530]
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean=mean, std=std)])
        dst_train = datasets.FashionMNIST(data_path, train=True, download=False, transform=transform)
        dst_test = datasets.FashionMNIST(data_path, train=False, download=False, transform=transform)
        class_names = dst_train.classes
        class_map = {x: x for x in range(num_classes)}

    elif dataset == 'Tiny':
"""

# (file, old, new, occurrences, why): everything the official code needs to run here, applied to the
# scratch copy only. A missing `old` means the checkout changed: the run stops rather than guess.
SUBSTITUTIONS = [
    ("utils.py", "    elif dataset == 'Tiny':\n", FMNIST_BRANCH, 1,
     ("get_dataset has no Fashion-MNIST branch; this one is the DC code's (1x28x28, 10 classes, mean 0.2861, "
      "std 0.3530), with download=False since the raw idx files are in place")),
    ("networks.py",
     "get_device())\n        out = self.features(x)\n        out = out.view(out.size(0), -1)\n",
     "get_device())\n        out = self.features(x)\n        out = out.reshape(out.size(0), -1)\n", 1,
     "ConvNet.forward: DSA's crop leaves 1-channel batches in a channels-last stride, which view() rejects"),
    ("distill.py", "image_save = image_syn.cuda()", "image_save = image_syn.to(args.device)", 1,
     "the evaluation at iteration 0 saves the images through .cuda(), which fails without a GPU"),
    ("buffer.py", "[p.detach().cpu() for p in teacher_net.parameters()]",
     "[p.detach().cpu().clone() for p in teacher_net.parameters()]", 2,
     "on CPU .cpu() returns the parameter itself, so every saved epoch would alias the final weights"),
]


# ---------------------------------------------------------------- preparing the scratch folder

def patch_checkout(checkout: Path, dest: Path) -> None:
    """Copies the official scripts into `dest` and applies SUBSTITUTIONS there (never to the checkout)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in OFFICIAL_FILES:
        if not (checkout / name).is_file():
            sys.exit(f"{checkout} has no {name}: is it a checkout of GeorgeCazenavette/mtt-distillation?")
        shutil.copy2(checkout / name, dest / name)
    for name, old, new, count, why in SUBSTITUTIONS:
        text = (dest / name).read_text()
        if text.count(old) != count:
            sys.exit(f"{checkout / name}: expected {count} occurrence(s) of {old!r}, found {text.count(old)}.\n"
                     f"The official code has changed; the substitution was needed because {why}.")
        (dest / name).write_text(text.replace(old, new))


def write_fmnist(gz_dir: Path, root: Path, train: int | None = None, test: int | None = None) -> None:
    """Uncompressed idx files where torchvision's FashionMNIST(root, download=False) reads them,
    optionally only the first `train` / `test` images."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem in FMNIST:
        source = gz_dir / f"{stem}.gz"
        if not source.is_file():
            sys.exit(f"{source} not found (--fmnist: a folder with Fashion-MNIST's four .gz idx files)")
        data = gzip.decompress(source.read_bytes())
        limit = train if stem.startswith("train") else test
        (raw / stem).write_bytes(_first_items(data, limit) if limit else data)


def _first_items(idx: bytes, n: int) -> bytes:
    ndim = idx[3]
    dims = struct.unpack(f">{ndim}I", idx[4:4 + 4 * ndim])
    n, size = min(n, dims[0]), math.prod(dims[1:])
    return idx[:4] + struct.pack(f">{ndim}I", n, *dims[1:]) + idx[4 + 4 * ndim:4 + 4 * ndim + n * size]


def official_distill_flags(a: argparse.Namespace, scratch: Path) -> list[str]:
    """distill.py's flags. Iteration 0 always evaluates (eval_it_pool starts at 0): eval_it past the
    last iteration keeps it to that one, and 0 (evaluation) and 1 (first step after it) are warm-up.
    Left at their defaults: batch_syn (the whole set), DSA on, no --zca, pix_init real, lr_img 1000."""
    return ["--dataset=FashionMNIST", "--model=ConvNet", f"--ipc={a.ipc}", f"--syn_steps={a.syn_steps}",
            f"--expert_epochs={EXPERT_EPOCHS}", f"--max_start_epoch={MAX_START_EPOCH}",
            f"--Iteration={a.iterations + 1}", f"--eval_it={a.iterations + 2}", "--epoch_eval_train=1",
            "--num_eval=1", f"--data_path={scratch / 'data'}", f"--buffer_path={scratch / 'buffers'}"]


def official_buffer_flags(scratch: Path, data: str, epochs: int, buffers: str) -> list[str]:
    """buffer.py's flags; its defaults are MTT's expert recipe: lr 0.01, no momentum, DSA on."""
    return ["--dataset=FashionMNIST", "--model=ConvNet", "--num_experts=1", f"--train_epochs={epochs}",
            "--save_interval=1", f"--batch_train={BATCH}", f"--data_path={scratch / data}",
            f"--buffer_path={scratch / buffers}"]


# ---------------------------------------------------------------- children (one measurement each)

def _status_bytes(key: str) -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


def _reset_peak() -> int | None:
    """As bench.reset_peak_memory on CPU (not imported: an official child must not load ddforge):
    restarts the RSS high-water mark, returns the RSS now (the baseline)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def _official(a: argparse.Namespace):
    """Imports the patched official utils from the scratch copy; widths other than its hard-coded 128
    are set by replacing get_default_convnet_setting (for small smoke runs)."""
    os.chdir(a.scratch / "official")
    sys.path.insert(0, str(a.scratch / "official"))
    import utils
    width, *rest = utils.get_default_convnet_setting()
    if a.width != width:
        utils.get_default_convnet_setting = lambda: (a.width, *rest)
    return utils


def _run_official(script: str, flags: list[str]) -> None:
    sys.argv = [script, *flags]
    runpy.run_path(script, run_name="__main__")


def child_official_buffer(a: argparse.Namespace) -> dict:
    """A replay buffer for timing: perturbed initial weights of the official ConvNet, in buffer.py's
    layout (trajectories of per-epoch parameter lists), more trajectories than iterations: distill.py
    reloads the file once it has used every one."""
    utils = _official(a)
    import torch
    start = [p.detach().clone() for p in utils.get_network("ConvNet", 1, 10, (28, 28), dist=False).parameters()]
    torch.manual_seed(0)
    trajectories = []
    for _ in range(a.iterations + 3):   # distill.py runs iterations 0..iterations+1
        epochs = [start]
        for _ in range(EXPERT_EPOCHS + MAX_START_EPOCH):
            epochs.append([p + 0.01 * torch.randn_like(p) for p in epochs[-1]])
        trajectories.append(epochs)
    folder = a.scratch / "buffers" / "FashionMNIST" / "ConvNet"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(trajectories, folder / "replay_buffer_0.pt")
    return {"trajectories": len(trajectories), "parameters": sum(p.numel() for p in start)}


def child_official_distill(a: argparse.Namespace) -> dict:
    """distill.py as it is; each iteration starts with wandb.log({"Progress": it}) and the run ends
    with wandb.finish(), so wrapping those (wandb.init installs wandb.log) timestamps the iterations.
    The high-water mark restarts at iteration 1, after the evaluation at 0, and is read at the end."""
    _official(a)
    import torch
    import wandb
    marks: list[float] = []
    memory: dict = {}
    init = wandb.init

    def timed_init(*args, **kwargs):
        run = init(*args, **kwargs)
        log = wandb.log

        def timed_log(data, *args, **kwargs):
            if "Progress" in data:
                marks.append(time.perf_counter())
                if data["Progress"] == 1:
                    memory["baseline"] = _reset_peak()
            return log(data, *args, **kwargs)

        wandb.log = timed_log
        return run

    finish = wandb.finish

    def timed_finish(*args, **kwargs):
        marks.append(time.perf_counter())
        memory["peak"] = _status_bytes("VmHWM")
        return finish(*args, **kwargs)

    wandb.init, wandb.finish = timed_init, timed_finish
    _run_official("distill.py", official_distill_flags(a, a.scratch))
    seconds = [b - t for t, b in itertools.pairwise(marks)]
    return {"seconds_each": seconds, "timed": seconds[2:], "peak_memory_bytes": memory["peak"],
            "baseline_memory_bytes": memory.get("baseline"), "torch": torch.__version__,
            "threads": torch.get_num_threads()}


class _Enough(Exception):
    """Raised from the optimiser hook once the timed steps are done: stops buffer.py mid-epoch."""


def child_official_experts(a: argparse.Namespace) -> dict:
    """buffer.py as it is, timed by a global optimiser post-step hook: WARM_STEPS steps of warm-up,
    then `expert_repeats` blocks of ceil(expert_images / 256) full batches, each block one rate."""
    _official(a)
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook
    steps = math.ceil(a.expert_images / BATCH)
    total = WARM_STEPS + a.expert_repeats * steps
    marks: list[float] = []

    def hook(optimizer, args, kwargs):
        marks.append(time.perf_counter())
        if len(marks) == total:
            raise _Enough

    register_optimizer_step_post_hook(hook)
    try:
        _run_official("buffer.py", official_buffer_flags(a.scratch, "data", 1, "buffers-experts"))
        raise RuntimeError(f"buffer.py's epoch ended after {len(marks)} of {total} steps: use fewer --expert-images")
    except _Enough:
        pass
    ends = [marks[WARM_STEPS - 1 + b * steps] for b in range(a.expert_repeats + 1)]
    rates = [steps * BATCH / (t1 - t0) for t0, t1 in itertools.pairwise(ends)]
    return {"images_per_s": statistics.median(rates), "images_per_s_each": rates, "steps_per_timing": steps,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def child_official_accuracy(a: argparse.Namespace) -> dict:
    """One expert of buffer.py, E epochs, on the first 5000 training images; test accuracy on the
    first 2000 test images (bench.expert_accuracy's split), read from its `epoch` function."""
    utils = _official(a)
    accuracies: list[float] = []
    epoch = utils.epoch

    def recording_epoch(mode, *args, **kwargs):
        loss, acc = epoch(mode, *args, **kwargs)
        if mode == "test":
            accuracies.append(float(acc))
        return loss, acc

    utils.epoch = recording_epoch   # buffer.py imports it from utils when it starts
    _run_official("buffer.py", official_buffer_flags(a.scratch, "data-accuracy", a.expert_epochs, "buffers-accuracy"))
    return {"accuracy": accuracies[-1], "accuracy_each_epoch": accuracies}


def _bench():
    """benchmarks/bench.py as a module (it sets ddforge's huge-page variable before importing torch)."""
    spec = importlib.util.spec_from_file_location("bench", Path(__file__).with_name("bench.py"))
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = bench
    spec.loader.exec_module(bench)
    return bench


def _bench_child(bench, argv: list[str]) -> dict:
    sys.argv = ["bench.py", *argv]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bench.main()
    return json.loads(out.getvalue().strip().splitlines()[-1])


def _expert_mode(bench, a: argparse.Namespace) -> str:
    mode = bench.configured_expert_mode(None) if a.expert_mode == "configured" else a.expert_mode
    if mode not in bench.TRAINING_MODES:
        raise SystemExit(f"--expert-mode: one of configured, {', '.join(bench.TRAINING_MODES)}")
    return mode


def child_ddforge_distill(a: argparse.Namespace) -> dict:
    """bench.py --child distill (one warm-up iteration, then `iterations` timed, peak memory from
    the setup on), with each iteration timestamped through ddforge's Progress and bench.py's
    FLOP-counting iteration skipped (not reported here, and it would cost a whole iteration)."""
    bench = _bench()
    from ddforge.core.progress import Progress
    runs: list[list[float]] = []
    init, update = Progress.__init__, Progress.update

    def timed_init(self, *args, **kwargs):
        runs.append([time.perf_counter()])
        init(self, *args, **kwargs)

    def timed_update(self, *args, **kwargs):
        runs[-1].append(time.perf_counter())
        update(self, *args, **kwargs)

    Progress.__init__, Progress.update = timed_init, timed_update
    bench.counted_flops = lambda fn: 0
    row = _bench_child(bench, ["--child", "distill", "--device", "cpu", "--width", str(a.width), "--ipc", str(a.ipc),
                               "--syn-steps", str(a.syn_steps), "--iterations", str(a.iterations),
                               "--inner-loop", a.inner_loop])
    marks = [m for m in runs if len(m) == a.iterations + 1][-1]   # the timed run, after the 1-iteration warm-up
    seconds = [b - t for t, b in itertools.pairwise(marks)]
    import torch
    return {"seconds_each": seconds, "timed": seconds, "peak_memory_bytes": row["peak_memory_bytes"],
            "baseline_memory_bytes": row["baseline_memory_bytes"], "bench_mean_seconds": row["seconds_per_iteration"],
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "huge_pages": os.environ.get("THP_MEM_ALLOC_ENABLE")}


def child_ddforge_experts(a: argparse.Namespace) -> dict:
    """bench.py --child experts: warm-up (compilation included), then `expert_repeats` epochs of
    `expert_images` images, each one rate."""
    bench = _bench()
    mode = _expert_mode(bench, a)
    row = _bench_child(bench, ["--child", "experts", "--device", "cpu", "--width", str(a.width), "--expert-images",
                               str(a.expert_images), "--mode", mode, "--repeats", str(a.expert_repeats)])
    row.pop("accuracy", None)   # bench.py's own 6-epoch check, not run here
    return {**row, "mode": mode}


def child_ddforge_accuracy(a: argparse.Namespace) -> dict:
    bench = _bench()
    import torch

    from ddforge.core.networks import NetworkSpec
    mode = _expert_mode(bench, a)
    accuracy = bench.expert_accuracy(NetworkSpec(1, 10, (28, 28), width=a.width), torch.device("cpu"),
                                     bench.TRAINING_MODES[mode][0], a.expert_epochs)
    return {"accuracy": accuracy, "mode": mode}


CHILDREN = {"official-buffer": child_official_buffer, "official-distill": child_official_distill,
            "official-experts": child_official_experts, "official-accuracy": child_official_accuracy,
            "ddforge-distill": child_ddforge_distill, "ddforge-experts": child_ddforge_experts,
            "ddforge-accuracy": child_ddforge_accuracy}


# ---------------------------------------------------------------- the parent

def run_child(name: str, a: argparse.Namespace, python: str, env: dict, cwd: Path, log: Path, **extra) -> dict:
    """One child in a fresh process, its output in `log`. Also returns its whole-life peak RSS
    (ru_maxrss from wait4, the same for both sides) and its wall time."""
    argv = [python, str(Path(__file__).resolve()), "--child", name, "--scratch", str(a.scratch)]
    for key in ("width", "ipc", "syn_steps", "iterations", "expert_images", "expert_repeats", "expert_mode",
                "expert_epochs"):
        argv += [f"--{key.replace('_', '-')}", str(extra.get(key, getattr(a, key)))]
    argv += [f"--inner-loop={extra.get('inner_loop', 'unrolled')}"]
    t = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        sys.exit(f"child {name} failed (exit {proc.returncode}); log {log}:\n{tail}")
    return {**json.loads(lines[-1][len(RESULT):]), "process_peak_rss_bytes": usage.ru_maxrss * 1024,
            "wall_seconds": time.perf_counter() - t}


def check_official_python(python: str, env: dict) -> None:
    """Stops with what to install when the official side's Python lacks a package it imports."""
    probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if not u.find_spec(m)))"
    try:
        out = subprocess.run([python, "-c", probe, *OFFICIAL_PACKAGES], capture_output=True, text=True, env=env,
                             check=False)
        missing = out.stdout.strip() if out.returncode == 0 else f"a working interpreter ({out.stderr.strip()})"
    except OSError as err:
        missing = f"a working interpreter ({err})"
    if missing:
        import sysconfig
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        sys.exit(f"{python} lacks: {missing}. The official code imports {', '.join(OFFICIAL_PACKAGES)}. For example,\n"
                 f"a venv that sees ddforge's torch (the same torch build on both sides) and adds kornia and wandb:\n"
                 f"  {sys.executable} -m venv /tmp/official-venv\n"
                 f"  echo {sysconfig.get_paths()['purelib']} \\\n"
                 f"    > /tmp/official-venv/lib/{version}/site-packages/ddforge.pth\n"
                 f"  /tmp/official-venv/bin/pip install kornia wandb\n"
                 f"then pass --official-python /tmp/official-venv/bin/python")


def _git(path: Path, *args: str) -> str | None:
    """Read-only git output for the record; None where `path` is not a repository's root."""
    if not (path / ".git").exists():
        return None
    out = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def alternating_rounds(a: argparse.Namespace, sides: tuple[str, ...], measure) -> list[dict]:
    """`a.rounds` rounds, each measuring every side once (`measure(side, round)`, a fresh process),
    in order and then reversed, so a slow spell of this shared machine falls on every side alike."""
    rounds = []
    for r in range(a.rounds):
        row: dict = {"round": r, "order": list(sides if r % 2 == 0 else sides[::-1])}
        for side in row["order"]:
            row[side] = measure(side, r)
        rounds.append(row)
    return rounds


def distillation(a: argparse.Namespace, envs: dict, logs: Path) -> dict:
    """Official, unrolled, constant-memory in alternating rounds."""
    sides = ("official", "unrolled", "constant_memory")

    def measure(side: str, r: int) -> dict:
        if side == "official":
            res = run_child("official-distill", a, a.official_python, envs["official"], a.scratch / "official",
                            logs / f"distill-official-{r}.log")
        else:
            res = run_child("ddforge-distill", a, sys.executable, envs["ddforge"], REPO,
                            logs / f"distill-{side}-{r}.log", inner_loop=side)
        res["seconds_per_iteration"] = _median(res["timed"])
        print(f"  round {r} {side:16s} {res['seconds_per_iteration']:8.3f} s/iteration  "
              f"peak {res['peak_memory_bytes'] / 2**20:8.0f} MiB", flush=True)
        return res

    rounds = alternating_rounds(a, sides, measure)
    for row in rounds:
        for side in sides[1:]:
            official = row["official"]
            row[f"{side}_speed_vs_official"] = official["seconds_per_iteration"] / row[side]["seconds_per_iteration"]
            row[f"{side}_peak_vs_official"] = row[side]["peak_memory_bytes"] / official["peak_memory_bytes"]
    summary = {side: {"seconds_per_iteration": _median([r[side]["seconds_per_iteration"] for r in rounds]),
                      "peak_memory_bytes": _median([r[side]["peak_memory_bytes"] for r in rounds]),
                      "baseline_memory_bytes": _median([r[side]["baseline_memory_bytes"] or 0 for r in rounds]),
                      "process_peak_rss_bytes": _median([r[side]["process_peak_rss_bytes"] for r in rounds])}
               for side in sides}
    for side in sides[1:]:
        for key in ("speed_vs_official", "peak_vs_official"):
            summary[f"{side}_{key}"] = _median([r[f"{side}_{key}"] for r in rounds])
        growth = [summary[s]["peak_memory_bytes"] - summary[s]["baseline_memory_bytes"] for s in (side, "official")]
        summary[f"{side}_growth_vs_official"] = growth[0] / growth[1] if growth[1] > 0 else float("nan")
    return {"official_flags": official_distill_flags(a, a.scratch),
            "timed_iterations": {"official": f"2..{a.iterations + 1} (0 evaluates, 1 is the first step after it)",
                                 "ddforge": f"all {a.iterations} after bench.py's separate 1-iteration warm-up"},
            "rounds": rounds, "summary": summary}


def expert_training(a: argparse.Namespace, envs: dict, logs: Path) -> dict:
    sides = ("official", "ddforge")

    def measure(side: str, r: int) -> dict:
        if side == "official":
            res = run_child("official-experts", a, a.official_python, envs["official"], a.scratch / "official",
                            logs / f"experts-official-{r}.log")
        else:
            res = run_child("ddforge-experts", a, sys.executable, envs["ddforge"], REPO, logs / f"experts-ddforge-{r}.log")
        print(f"  round {r} {side:16s} {res['images_per_s']:8.0f} images/s", flush=True)
        return res

    rounds = alternating_rounds(a, sides, measure)
    for row in rounds:
        row["speed_vs_official"] = row["ddforge"]["images_per_s"] / row["official"]["images_per_s"]
    summary = {side: {"images_per_s": _median([x for r in rounds for x in r[side]["images_per_s_each"]])}
               for side in sides}
    summary["ddforge"]["mode"] = rounds[0]["ddforge"]["mode"]
    summary["speed_vs_official"] = summary["ddforge"]["images_per_s"] / summary["official"]["images_per_s"]
    summary["paired_speed_vs_official"] = _median([r["speed_vs_official"] for r in rounds])
    result: dict = {"official_flags": official_buffer_flags(a.scratch, "data", 1, "buffers-experts"), "rounds": rounds,
                    "summary": summary}
    if a.expert_epochs:
        official = run_child("official-accuracy", a, a.official_python, envs["official"], a.scratch / "official",
                             logs / "accuracy-official.log")
        ours = run_child("ddforge-accuracy", a, sys.executable, envs["ddforge"], REPO, logs / "accuracy-ddforge.log")
        result["accuracy"] = {"epochs": a.expert_epochs, "train_images": ACCURACY_IMAGES[0],
                              "test_images": ACCURACY_IMAGES[1], "official": official["accuracy"],
                              "official_each_epoch": official["accuracy_each_epoch"], "ddforge": ours["accuracy"],
                              "ddforge_mode": ours["mode"],
                              "official_flags": official_buffer_flags(a.scratch, "data-accuracy", a.expert_epochs,
                                                                      "buffers-accuracy")}
    return result


def targets(result: dict) -> dict:
    """Issue #14's goals next to this run's paired medians."""
    out: dict = {}
    if "distillation" in result:
        s = result["distillation"]["summary"]
        out["unrolled_at_least_1.5x_official_speed"] = {"value": s["unrolled_speed_vs_official"],
                                                         "met": s["unrolled_speed_vs_official"] >= 1.5}
        out["constant_memory_at_least_1.3x_official_speed"] = {"value": s["constant_memory_speed_vs_official"],
                                                                "met": s["constant_memory_speed_vs_official"] >= 1.3}
        out["constant_memory_at_most_0.4x_official_peak"] = {"value": s["constant_memory_peak_vs_official"],
                                                              "met": s["constant_memory_peak_vs_official"] <= 0.4}
    if "expert_training" in result:
        e = result["expert_training"]
        ratio = e["summary"]["paired_speed_vs_official"]
        out["experts_at_least_1.5x_official_images_per_s"] = {"value": ratio, "met": ratio >= 1.5}
        acc = e.get("accuracy")
        if acc and acc["ddforge"] is not None:
            gap = 100 * abs(acc["official"] - acc["ddforge"])
            out["expert_accuracy_within_1_point"] = {"value": gap, "met": gap <= 1.0}
    return out


def print_tables(result: dict) -> None:
    gib = 2**30
    if "distillation" in result:
        d = result["distillation"]
        print("\nDistillation: seconds/iteration (median of timed iterations) and peak RSS from the setup on")
        print(f"{'round':>5}  {'official':>18}  {'unrolled':>18}  {'constant_memory':>18}")
        for r in d["rounds"] + [{"round": "median", **d["summary"]}]:
            cells = [f"{r[s]['seconds_per_iteration']:7.3f} s {r[s]['peak_memory_bytes'] / gib:6.2f} GiB"
                     for s in ("official", "unrolled", "constant_memory")]
            print(f"{r['round']:>5}  " + "  ".join(f"{c:>18}" for c in cells))
        s = d["summary"]
        print(f"paired official/ddforge time: unrolled {s['unrolled_speed_vs_official']:.2f}x (target >= 1.5), "
              f"constant-memory {s['constant_memory_speed_vs_official']:.2f}x (target >= 1.3)")
        print(f"paired ddforge/official peak: unrolled {s['unrolled_peak_vs_official']:.2f}x, "
              f"constant-memory {s['constant_memory_peak_vs_official']:.2f}x (target <= 0.4); above each side's "
              f"baseline: {s['unrolled_growth_vs_official']:.2f}x, {s['constant_memory_growth_vs_official']:.2f}x")
    if "expert_training" in result:
        e = result["expert_training"]
        print("\nExpert training: images/s (median of all timings)")
        for r in e["rounds"]:
            print(f"{r['round']:>5}  official {r['official']['images_per_s']:8.0f}  "
                  f"ddforge {r['ddforge']['images_per_s']:8.0f}  ratio {r['speed_vs_official']:.2f}x")
        s = e["summary"]
        print(f"median  official {s['official']['images_per_s']:8.0f}  ddforge ({s['ddforge']['mode']}) "
              f"{s['ddforge']['images_per_s']:8.0f}  paired ratio {s['paired_speed_vs_official']:.2f}x (target >= 1.5)")
        if "accuracy" in e:
            acc = e["accuracy"]
            ours = "n/a (no Fashion-MNIST for bench.py)" if acc["ddforge"] is None else f"{acc['ddforge']:.4f}"
            print(f"test accuracy after {acc['epochs']} epoch(s): official {acc['official']:.4f}  ddforge {ours}")
    print("\nTargets:")
    for name, t in result["targets"].items():
        print(f"  {'met ' if t['met'] else 'MISS'}  {name}: {t['value']:.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", type=Path, help="a checkout of GeorgeCazenavette/mtt-distillation (read only)")
    p.add_argument("--official-python", default=sys.executable,
                   help="Python for the official side, with torch torchvision tqdm scipy kornia wandb "
                        "(default: this one)")
    p.add_argument("--ddforge-allocator", choices=["project", "glibc"], default="project",
                   help="project: as scripts/allocator.sh sets it (tcmalloc where installed); glibc: none preloaded")
    p.add_argument("--official-allocator", choices=["glibc", "tcmalloc"], default="glibc",
                   help="the official side's allocator (default: glibc, as it runs out of the box)")
    p.add_argument("--official-huge-pages", action="store_true",
                   help="THP_MEM_ALLOC_ENABLE=1 for the official side too (default: unset, PyTorch's default)")
    p.add_argument("--scratch", type=Path, default=None,
                   help="patched copy, data, buffer and logs (default: a temp dir, removed after a run)")
    p.add_argument("--fmnist", type=Path, default=Path("/usr/share/datasets/fashion-mnist"),
                   help="folder with Fashion-MNIST's four .gz idx files")
    p.add_argument("--train-images", type=int, default=0, help="official side: only the first N training images "
                   "(smoke runs; 0 = all 60000)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--syn-steps", type=int, default=10)
    p.add_argument("--iterations", type=int, default=6, help="timed distillation iterations per run")
    p.add_argument("--expert-images", type=int, default=5120, help="images per expert-training timing")
    p.add_argument("--expert-repeats", type=int, default=3, help="expert-training timings per run")
    p.add_argument("--expert-mode", default="configured",
                   help="ddforge's bench.py training mode (default: the one conf/base configures)")
    p.add_argument("--expert-epochs", type=int, default=0,
                   help="E > 0: one expert's test accuracy after E epochs, on each side")
    p.add_argument("--only", choices=["all", "distill", "experts"], default="all")
    p.add_argument("--out", type=Path, default=REPO / "data" / "08_reporting" / "vs_official" / "results.json")
    p.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    p.add_argument("--inner-loop", default="unrolled", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(RESULT + json.dumps(CHILDREN[a.child](a)), flush=True)
        return
    if a.official is None:
        p.error("--official is required")
    a.official = a.official.resolve()
    envs = {"official": {**os.environ, "WANDB_MODE": "disabled", "WANDB_SILENT": "true", "CUDA_VISIBLE_DEVICES": ""},
            "ddforge": {**os.environ, "CUDA_VISIBLE_DEVICES": ""}}
    envs["official"].pop("THP_MEM_ALLOC_ENABLE", None)
    if a.official_huge_pages:
        envs["official"]["THP_MEM_ALLOC_ENABLE"] = "1"
    # each side's allocator: ddforge's as its scripts set it, the official code's as it runs by default
    envs["ddforge"].pop("LD_PRELOAD", None)
    envs["official"].pop("LD_PRELOAD", None)
    if a.ddforge_allocator == "project":
        envs["ddforge"].update(scripts_preload())
    if a.official_allocator == "tcmalloc":
        envs["official"].update(scripts_preload(force_tcmalloc=True))
    check_official_python(a.official_python, envs["official"])
    keep = a.scratch is not None
    a.scratch = (a.scratch or Path(tempfile.mkdtemp(prefix="vs_official_"))).resolve()
    logs = a.scratch / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    train = a.train_images or 60000
    if a.only != "distill" and WARM_STEPS + a.expert_repeats * math.ceil(a.expert_images / BATCH) > train // BATCH:
        sys.exit("--expert-images x --expert-repeats does not fit in one official epoch: lower them")

    print(f"scratch: {a.scratch}", flush=True)
    patch_checkout(a.official, a.scratch / "official")
    write_fmnist(a.fmnist, a.scratch / "data", train=a.train_images or None)
    if a.expert_epochs and a.only != "distill":
        write_fmnist(a.fmnist, a.scratch / "data-accuracy", *ACCURACY_IMAGES)
    result: dict = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()
                   if k not in ("child", "inner_loop")},
        "official": {"checkout": str(a.official), "commit": _git(a.official, "rev-parse", "HEAD"),
                     "python": a.official_python,
                     "huge_pages": envs["official"].get("THP_MEM_ALLOC_ENABLE"),
                     "LD_PRELOAD": envs["official"].get("LD_PRELOAD")},
        "ddforge_allocator": envs["ddforge"].get("LD_PRELOAD") or "glibc",
        "ddforge": {"commit": _git(REPO, "rev-parse", "HEAD"), "python": sys.executable,
                    "uncommitted_changes": bool(_git(REPO, "status", "--porcelain", "--untracked-files=no"))},
        "machine": {"cpus": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "substitutions": [{"file": f, "old": o, "new": n, "occurrences": c, "why": w}
                          for f, o, n, c, w in SUBSTITUTIONS],
    }
    if a.only in ("all", "distill"):
        print("distillation:", flush=True)
        result["buffer"] = run_child("official-buffer", a, a.official_python, envs["official"], a.scratch / "official",
                                     logs / "buffer.log")
        result["distillation"] = distillation(a, envs, logs)
    if a.only in ("all", "experts"):
        print("expert training:", flush=True)
        result["expert_training"] = expert_training(a, envs, logs)
    result["targets"] = targets(result)
    print_tables(result)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    print(f"\nJSON: {a.out}")
    if not keep:
        shutil.rmtree(a.scratch)


if __name__ == "__main__":
    main()
