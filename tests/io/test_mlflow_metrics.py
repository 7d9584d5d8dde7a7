"""The batched metric-history dataset logs what kedro-mlflow's logs, in batches of MLflow's size limit."""
import mlflow
import pytest
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset

import ddforge.io.mlflow_metrics as mlflow_metrics
from ddforge.io.mlflow_metrics import BatchedMetricsHistoryDataset


@pytest.fixture
def tracking(tmp_path):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield
    mlflow.set_tracking_uri(previous)


def test_batched_history_reads_back_as_the_plain_one_logs_it(tracking, monkeypatch):
    monkeypatch.setattr(mlflow_metrics, "MAX_METRICS_PER_BATCH", 10)  # MLflow's 1000, scaled down for speed
    calls = []
    real_log_batch = mlflow.tracking.MlflowClient.log_batch
    monkeypatch.setattr(mlflow.tracking.MlflowClient, "log_batch",
                        lambda self, run_id, metrics, **kw: calls.append(len(metrics)) or real_log_batch(self, run_id, metrics, **kw))
    n = 23   # with the single value, 24 metrics: batches of 10, 10 and 4
    data = {"mtt/matching_loss": [{"value": 1.0 / (i + 1), "step": i} for i in range(n)],
            "mtt/iterations": {"value": float(n), "step": 0}}
    loaded = {}
    for cls in (MlflowMetricsHistoryDataset, BatchedMetricsHistoryDataset):
        with mlflow.start_run():
            cls(prefix="").save(data)
            loaded[cls] = MlflowMetricsHistoryDataset().load()   # no prefix: every metric of the run
    assert calls == [10, 10, 4]
    assert loaded[BatchedMetricsHistoryDataset] == loaded[MlflowMetricsHistoryDataset]
    history = loaded[BatchedMetricsHistoryDataset]["mtt/matching_loss"]
    assert [m["step"] for m in history] == list(range(n)) and history[-1]["value"] == pytest.approx(1.0 / n)
    assert loaded[BatchedMetricsHistoryDataset]["mtt/iterations"] == {"value": float(n), "step": 0}
