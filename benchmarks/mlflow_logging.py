"""Seconds to log a distillation's metric history to MLflow: kedro-mlflow's dataset (one `log_metric`
call per value) against ddforge's batched one, on a fresh sqlite store, in alternating order.

    python benchmarks/mlflow_logging.py --points 3000 --rounds 3   # DataDAM's 3000 iterations, 2 metrics
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import mlflow
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset

from ddforge.io.mlflow_metrics import BatchedMetricsHistoryDataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=3000, help="iterations: values per metric history")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    history = {f"m/{name}": [{"value": 1.0 / (i + 1), "step": i} for i in range(a.points)] for name in ("loss", "lr")}
    seconds: dict[str, list[float]] = {"kedro_mlflow": [], "batched": []}
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        with mlflow.start_run():  # the store's tables are created before any timing
            pass
        for r in range(a.rounds):
            order = [("kedro_mlflow", MlflowMetricsHistoryDataset), ("batched", BatchedMetricsHistoryDataset)]
            for name, cls in order if r % 2 == 0 else order[::-1]:
                with mlflow.start_run():
                    start = time.perf_counter()
                    cls(prefix="").save(history)
                    seconds[name].append(time.perf_counter() - start)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    print(json.dumps({"points_per_metric": a.points, "metrics": len(history), "seconds": seconds,
                      "median_s": median, "ratio": median["kedro_mlflow"] / median["batched"]}, indent=1))


if __name__ == "__main__":
    main()
