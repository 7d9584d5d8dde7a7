"""The default run of two commits side by side: wall time, peak memory and the accuracy table.

Answers "did this change make the default run slower or worse?" (issue #11's last point). Each commit
is cloned into --workdir with its own .venv (its scripts/setup.sh); every run starts from a clean
tree (`git clean`, an empty torch.compile cache: as on a fresh machine) and runs `kedro run` as that
commit's scripts/run.sh does. The commits alternate A B B A A B ... in one sitting, so the host's
drift (10-30 % here) falls on both; the ratio is taken per round.

Accuracy: each set's final test accuracy per commit, and the paired difference head - base over the
test-set bootstrap replicates stored in both evaluations (the same seed draws the same images and
network slots, as the report pairs a set with random real). A commit's repeated runs must agree
to the last digit; the script says if they do not.

    python benchmarks/default_run.py --base b3fcff9 --head HEAD --rounds 2
    python benchmarks/default_run.py --base b3fcff9 --allocator tcmalloc   # the code alone
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from allocator_env import scripts_preload  # benchmarks/, this script's folder
from ddforge.core.caveats import paired_difference

ROOT = Path(__file__).resolve().parents[1]
EVALUATIONS = Path("data/08_reporting/evaluation")
# `own`: the commit's scripts/run.sh choice (older commits have no scripts/allocator.sh: glibc)
ALLOCATORS = ("own", "tcmalloc", "glibc")
OWN_ALLOCATOR = "[ -f scripts/allocator.sh ] && source scripts/allocator.sh; "


def run_order(rounds: int) -> list[int]:
    """0 = base, 1 = head: 0 1 1 0 0 1 ... so that neither commit always runs first."""
    return [k if r % 2 == 0 else 1 - k for r in range(rounds) for k in (0, 1)]


def prepare(sha: str, workdir: Path) -> Path:
    clone = workdir / sha[:10]
    if not clone.exists():
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", sha], check=True)
    subprocess.run(["bash", "scripts/setup.sh"], cwd=clone, check=True, stdout=subprocess.DEVNULL)
    return clone


def default_run(clone: Path, allocator: str, log: Path) -> dict:
    """One `kedro run` from a clean tree: {"seconds", "peak_rss_gib", "evaluations"}."""
    subprocess.run(["git", "clean", "-xdfq", "-e", ".venv", "-e", "*.egg-info"], cwd=clone, check=True)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env.update(KEDRO_DISABLE_TELEMETRY="1", DO_NOT_TRACK="true")
    if allocator == "tcmalloc":
        env.update(scripts_preload(force_tcmalloc=True))
    command = (OWN_ALLOCATOR if allocator == "own" else "") + "exec .venv/bin/kedro run"
    with tempfile.TemporaryDirectory() as cache, log.open("w") as out:
        env["TORCHINDUCTOR_CACHE_DIR"] = cache
        start = time.perf_counter()
        proc = subprocess.Popen(["bash", "-c", command], cwd=clone, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"kedro run failed in {clone}: see {log}")
    evaluations = {p.stem: json.loads(p.read_text()) for p in sorted((clone / EVALUATIONS).glob("*.json"))}
    return {"seconds": seconds, "peak_rss_gib": usage.ru_maxrss / 2**20, "evaluations": evaluations}


def network_accuracies(ev: dict) -> list[float]:
    """Final test accuracy of each evaluation network."""
    return [m["accuracy"] for m in ev["final"]["test"]["models"]]


def compare_accuracy(base: dict, head: dict) -> dict[str, dict]:
    """Per set both commits evaluated: mean ± std over networks (as the evaluation stored them), and
    head - base paired over the stored bootstrap replicates; in points."""
    def mean_std(ev: dict) -> tuple[float, float]:
        accuracy = ev["final"]["test"]["accuracy"]
        return 100 * accuracy["mean"], 100 * accuracy["std"]

    def replicates(ev: dict) -> list[float]:
        return [100 * v for v in ev["uncertainty"]["samples"]["accuracy"]]

    return {name: {"base": mean_std(base[name]), "head": mean_std(head[name]),
                   "paired": paired_difference(replicates(head[name]), replicates(base[name]))}
            for name in sorted(base.keys() & head.keys())}


def repeatable(runs: list[dict]) -> bool:
    """Do a commit's runs give the same accuracy for every set, to the last digit?"""
    first = {k: network_accuracies(v) for k, v in runs[0]["evaluations"].items()}
    return all({k: network_accuracies(v) for k, v in r["evaluations"].items()} == first for r in runs[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="the commit to compare against")
    p.add_argument("--head", default="HEAD")
    p.add_argument("--rounds", type=int, default=2, help="runs of each commit")
    p.add_argument("--allocator", choices=ALLOCATORS, default="own")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "ddforge_default_run")
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = p.parse_args()

    shas = [subprocess.run(["git", "rev-parse", c], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
            for c in (args.base, args.head)]
    args.workdir.mkdir(parents=True, exist_ok=True)
    clones = [prepare(sha, args.workdir) for sha in shas]
    runs: list[list[dict]] = [[], []]
    for n, which in enumerate(run_order(args.rounds)):
        log = args.workdir / f"{shas[which][:10]}.{len(runs[which]) + 1}.log"
        print(f"[default_run] {n + 1}/{2 * args.rounds}: {shas[which][:10]} ({args.allocator} allocator)", flush=True)
        runs[which].append(default_run(clones[which], args.allocator, log))
        print(f"[default_run]   {runs[which][-1]['seconds']:.1f} s, peak {runs[which][-1]['peak_rss_gib']:.2f} GiB",
              flush=True)

    print(f"\nwall time of `kedro run` (s), {args.allocator} allocator, alternating order in one sitting:")
    for which, label in enumerate(("base", "head")):
        print(f"  {label} {shas[which][:10]}: " + ", ".join(f"{r['seconds']:.1f}" for r in runs[which])
              + f"  (peak RSS {max(r['peak_rss_gib'] for r in runs[which]):.2f} GiB)")
    ratios = [h["seconds"] / b["seconds"] for b, h in zip(*runs)]
    print("  head / base per round: " + ", ".join(f"{r:.3f}" for r in ratios))
    accuracy = compare_accuracy(runs[0][0]["evaluations"], runs[1][0]["evaluations"])
    print("\nfinal test accuracy (%), mean ± std over the evaluation networks; head - base paired over "
          "the test-set bootstrap, 95 % interval:")
    for name, row in accuracy.items():
        d = row["paired"]
        print(f"  {name:12s} base {row['base'][0]:6.2f} ± {row['base'][1]:.2f}   head {row['head'][0]:6.2f} ± "
              f"{row['head'][1]:.2f}   {d['difference']:+.2f} [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}]"
              + ("" if d["excludes_zero"] else "  (not shown by this test set)"))
    for which, label in enumerate(("base", "head")):
        if not repeatable(runs[which]):
            print(f"  NOTE: {label}'s runs differ from each other: the table shows its first run")
    if args.out:
        args.out.write_text(json.dumps({"commits": shas, "allocator": args.allocator, "ratios": ratios,
                                        "seconds": [[r["seconds"] for r in rs] for rs in runs],
                                        "accuracy": accuracy}, indent=2))


if __name__ == "__main__":
    main()
