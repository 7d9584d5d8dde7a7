"""Scale-out figures: the same DAG under `kedro run` and under Dagster's multiprocess executor.

    python benchmarks/scale_out.py                          # ci DAG, expert stage, default DAG; 2 rounds
    python benchmarks/scale_out.py --stages ci --rounds 3   # only the ci DAG
    python benchmarks/scale_out.py --stages ci experts --variants kedro dagster dagster_all_cores

Needs the dagster extra (`pip install -e ".[dagster]"`). Every run starts from a fresh copy of the
project (conf/ without conf/local, pyproject.toml) in a scratch folder, so no checkpoint, expert
buffer or evaluation of another run is reused; the code is the installed package, and every run has
the allocator scripts/run.sh preloads (tcmalloc where installed). The variants:

    kedro              `kedro run --env <env>`: one process, torch's default threads (one per core)
    kedro_one_thread   the same with OMP_NUM_THREADS=1 (the thread count of the Dagster steps, to tell
                       what the thread count changes from what the executor does)
    dagster            `dagster job execute -m ddforge.definitions -j <env>__<job>`, at most 2 step
                       processes at once, `experts.shards: 2`; each step's torch gets the cores
                       divided among the concurrent steps (the project's default: one thread here)
    dagster_all_cores  the same with DDFORGE_STEP_THREADS=<cores>: each step's torch takes every
                       core, as it would without the project's setting (oversubscribed)

The stages: `ci` (the ci DAG, Fashion-MNIST's files as its source), `experts` (`kedro run --pipelines
experts` against the job `local__experts`, which the scratch copy's conf/local/dagster.yml declares,
after an untimed ingest) and `default` (the default DAG,
as `bash scripts/run.sh` runs it). The variants' order alternates from round to round, so a slow
stretch of this shared machine does not land on one variant only. Printed per variant: each run's
wall seconds, the median, the paired ratio kedro / variant (> 1: faster than `kedro run`), whether
the accuracy table (test accuracy of every set in comparison.csv) equals `kedro run`'s, and for the
Dagster runs the step start-up (Dagster's STEP_WORKER_STARTING to STEP_START, per step), how long two
steps ran at once, and when the expert shards started. Results:
data/08_reporting/scale_out/results.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from allocator_env import scripts_preload  # benchmarks/: the allocator scripts/run.sh runs with
from fidelity import latest  # benchmarks/: a versioned catalog entry's newest file

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
OUT = ROOT / "data" / "08_reporting" / "scale_out"
VARIANTS = ("kedro", "dagster", "dagster_all_cores", "kedro_one_thread")
STAGES = {"ci": ("ci", "default"), "experts": ("local", "experts"), "default": ("local", "default")}
# both sides with the allocator scripts/run.sh and scripts/run_dagster.sh preload (tcmalloc where installed)
BASE_ENV = {"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "true", **scripts_preload()}


def fresh_project(parent: Path, env: str) -> Path:
    """A copy of the project's configuration with an empty data/: nothing from another run."""
    root = Path(tempfile.mkdtemp(prefix=f"{env}-", dir=parent))
    shutil.copytree(ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()  # the package is installed; kedro only checks that the folder exists
    if env == "ci":  # the ci environment reads data/01_raw/ci-idx: Fashion-MNIST's files, subsampled by its config
        (root / "data" / "01_raw").mkdir(parents=True)
        (root / "data" / "01_raw" / "ci-idx").symlink_to(FASHION_MNIST)
    return root


def run(cmd: list[str], root: Path, env: dict[str, str], log: Path) -> float:
    """Runs `cmd` in `root`; its wall seconds (raises with the log's tail if it fails)."""
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(cmd, check=False, cwd=root, env={**os.environ, **BASE_ENV, **env}, stdout=out,
                              stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"[scale-out] {' '.join(cmd)} failed ({code}); log {log}:\n{log.read_text()[-3000:]}")
    return seconds


def accuracy_table(root: Path) -> dict[str, str]:
    """Each set's final test accuracy as comparison.csv writes it (newest version)."""
    path = root / "data" / "08_reporting" / "comparison.csv"
    if not path.exists():
        return {}
    with latest(path).open() as f:
        return {row["method"]: row["test_acc_final"] for row in csv.DictReader(f)}


def distill_threads(root: Path) -> list[int]:
    """The torch threads each distillation ran with (its synthetic set's provenance records them)."""
    import torch

    sets = sorted((root / "data" / "07_model_output").glob("*/synthetic_set.pt"))
    return [torch.load(latest(p), weights_only=False)["meta"]["provenance"]["machine"]["torch_threads"] for p in sets]


def step_timeline(home: Path) -> dict:
    """From the Dagster run's event log: seconds from launching each step's process to the step
    starting; each step's start and end, in seconds after the run started; and how long two or more
    steps ran at once."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home))
    startups, spans = [], {}
    for record in instance.get_runs():
        launched, started, ended, run_start = {}, {}, {}, None
        for entry in instance.all_logs(record.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            kind = event.event_type_value
            if kind == "RUN_START":
                run_start = entry.timestamp
            elif kind == "STEP_WORKER_STARTING":
                launched[event.step_key] = entry.timestamp
            elif kind == "STEP_START":
                started[event.step_key] = entry.timestamp
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                ended[event.step_key] = entry.timestamp
        startups += [started[k] - launched[k] for k in started if k in launched]
        origin = run_start or min(started.values(), default=0.0)
        spans |= {k: (started[k] - origin, ended[k] - origin) for k in started if k in ended}
    edges = sorted({t for span in spans.values() for t in span})
    overlap = sum(b - a for a, b in zip(edges, edges[1:])
                  if sum(s <= a and b <= e for s, e in spans.values()) >= 2)
    return {"step_startup_seconds": startups, "step_spans": spans, "seconds_two_or_more_steps": overlap}


def one_run(stage: str, variant: str, scratch: Path, logs: Path, tag: str) -> dict:
    env, job = STAGES[stage]
    root = fresh_project(scratch, env)
    if stage == "experts":  # its input, untimed
        run([str(BIN / "kedro"), "run", "--env", env, "--pipelines", "ingest"], root, {}, logs / f"{tag}-ingest.log")
    if variant.startswith("kedro"):
        extra = {"OMP_NUM_THREADS": "1"} if variant == "kedro_one_thread" else {}
        cmd = [str(BIN / "kedro"), "run", "--env", env] + (["--pipelines", "experts"] if stage == "experts" else [])
    else:
        (root / "conf" / env / "parameters_shards.yml").write_text("experts:\n  shards: 2\n")
        if job != "default":  # the environment's jobs replaced by this one (two jobs may not share a node)
            (root / "conf" / env / "dagster.yml").write_text(f"jobs:\n  {job}:\n    pipeline:\n      pipeline_name: {job}\n")
        home = root / ".dagster"
        home.mkdir()
        (home / "dagster.yaml").write_text("")
        cmd = [str(BIN / "dagster"), "job", "execute", "-m", "ddforge.definitions", "-j", f"{env}__{job}"]
        extra = {"KEDRO_ENV": env, "DAGSTER_HOME": str(home), "DDFORGE_DAGSTER_MAX_CONCURRENT": "2"}
        if variant == "dagster_all_cores":
            extra["DDFORGE_STEP_THREADS"] = str(os.cpu_count() or 1)
    print(f"[scale-out] {tag}: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}"
          f"  {' '.join(f'{k}={v}' for k, v in extra.items() if k != 'DAGSTER_HOME')}", flush=True)
    seconds = run(cmd, root, extra, logs / f"{tag}.log")
    result = {"stage": stage, "variant": variant, "seconds": seconds, "accuracy": accuracy_table(root),
              "torch_threads_in_distillation": distill_threads(root)}
    if variant.startswith("dagster"):
        result |= step_timeline(root / ".dagster")
    print(f"[scale-out] {tag}: {seconds:.1f} s", flush=True)
    shutil.rmtree(root)
    return result


def summarise(results: list[dict]) -> str:
    lines = []
    for stage in dict.fromkeys(r["stage"] for r in results):
        runs = [r for r in results if r["stage"] == stage]
        reference = [r for r in runs if r["variant"] == "kedro"]
        lines.append(f"## {stage}  ({len(reference)} rounds)")
        for variant in VARIANTS:
            mine = [r for r in runs if r["variant"] == variant]
            if not mine:
                continue
            times = [r["seconds"] for r in mine]
            line = f"{variant:17s} median {statistics.median(times):7.1f} s   runs " + ", ".join(f"{t:.1f}" for t in times)
            if variant != "kedro" and reference:
                ratios = [k["seconds"] / r["seconds"] for k, r in zip(reference, mine)]
                line += f"   kedro/{variant} per round " + ", ".join(f"{x:.2f}" for x in ratios)
                line += f" (median {statistics.median(ratios):.2f})"
                same = all(r["accuracy"] == reference[0]["accuracy"] for r in mine)
                line += "   accuracy table " + ("identical" if same else "DIFFERS")
                startups = [s for r in mine for s in r.get("step_startup_seconds", [])]
                if startups:
                    line += (f"   step start-up median {statistics.median(startups):.2f} s, "
                             f"max {max(startups):.2f} s over {len(startups)} steps")
            lines.append(line)
            for r in mine:
                if r.get("step_spans"):
                    shards = [span[0] for step, span in r["step_spans"].items() if step.startswith("train_experts")]
                    lines.append(f"  {variant} {r['seconds']:.0f} s run: steps ran two at a time for "
                                 f"{r['seconds_two_or_more_steps']:.0f} s; expert shards started at "
                                 + ", ".join(f"{t:.0f}" for t in sorted(shards)) + " s after the run's start")
        differing = {v: r["accuracy"] for v in VARIANTS for r in runs if r["variant"] == v
                     and reference and r["accuracy"] != reference[0]["accuracy"]}
        for variant, table in differing.items():
            lines.append(f"  {variant} accuracy: {table}")
        if reference and reference[0]["accuracy"]:
            lines.append(f"  kedro accuracy: {reference[0]['accuracy']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), default=["ci", "experts", "default"])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["kedro", "dagster"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the fresh project copies go (each is deleted after its run)")
    args = parser.parse_args()
    try:
        import dagster  # noqa: F401
    except ImportError:
        raise SystemExit('[scale-out] needs the dagster extra: pip install -e ".[dagster]"')
    logs = OUT / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results_path = OUT / "results.json"
    results: list[dict] = []
    for stage in args.stages:
        for round_ in range(args.rounds):
            order = args.variants if round_ % 2 == 0 else list(reversed(args.variants))
            for variant in order:
                results.append(one_run(stage, variant, args.scratch, logs, f"{stage}-{variant}-r{round_ + 1}"))
                results_path.write_text(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=1))
    summary = summarise(results)
    (OUT / "summary.txt").write_text(summary + "\n")
    print(summary)


if __name__ == "__main__":
    main()
