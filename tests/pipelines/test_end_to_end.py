"""The whole DAG through a real KedroSession on conf/ci, a real MLflow sqlite store and kedro-viz."""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ddforge.methods.registry import METHODS
from tests.io.readers.helpers import write_idx

PROJECT = Path(__file__).resolve().parents[2]
ENV = {"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "true"}


def tiny_fashion_like(seed: int = 0) -> dict[str, np.ndarray]:
    """10 classes, each a distinct bright bar position plus noise: learnable in a few steps."""
    rng = np.random.default_rng(seed)

    def make(n_per_class: int):
        images, labels = [], []
        for c in range(10):
            for _ in range(n_per_class):
                img = rng.integers(0, 60, (28, 28))
                img[2 * c + 3 : 2 * c + 6, 4:24] += 180
                images.append(img.clip(0, 255))
                labels.append(c)
        return np.array(images, dtype=np.uint8), np.array(labels, dtype=np.uint8)

    train_x, train_y = make(16)
    test_x, test_y = make(5)
    return {"train_images": train_x, "train_labels": train_y, "test_images": test_x, "test_labels": test_y}


def latest(path: Path) -> Path:
    """A versioned catalog entry is a folder of versions, each holding the file."""
    if path.is_dir():
        return sorted(path.iterdir())[-1] / path.name
    return path


def make_project(root: Path) -> Path:
    shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copy(PROJECT / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()  # the package itself is installed; kedro only checks the folder exists
    write_idx(root / "data" / "01_raw" / "ci-idx", tiny_fashion_like())
    return root


@contextlib.contextmanager
def inside_project(root: Path, env: dict[str, str] | None = None):
    """cwd in the project (the catalog's paths are relative) and the given environment variables,
    both restored afterwards."""
    overrides = {**ENV, **(env or {})}
    old_cwd, old_env = os.getcwd(), {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    root = make_project(tmp_path_factory.mktemp("ddforge-ci"))
    # The run itself goes through the CLI as a user runs it; a process of its own also keeps
    # MLflow's process-wide state (tracking URI, active experiment) out of other tests.
    result = subprocess.run([str(Path(sys.executable).with_name("kedro")), "run", "--env", "ci"], cwd=root,
                            env={**os.environ, **ENV}, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    with inside_project(root):
        bootstrap_project(root)
        with KedroSession.create(project_path=root, env="ci") as session:
            context = session.load_context()
        yield root, context


@pytest.mark.slow
def test_every_catalog_output_exists(ci_run):
    from kedro.framework.project import pipelines

    root, context = ci_run
    catalog = context.catalog
    file_outputs = ["raw_dataset", "real_train", "real_val", "real_test", "data_transform"] + [
        f"{m}.synthetic_set" for m in METHODS
    ]
    for name in file_outputs:
        assert catalog.exists(name), name
    assert len(list((root / "data/06_models/expert_buffer").glob("expert_*.pt"))) == 2
    reports = ["evaluation/random_real.json", "evaluation/full_data.json", "comparison.csv", "comparison.md",
               "run_manifest.json", "iadd_importance.png", "report_warnings.json"]
    reports += [f"evaluation/{m}.json" for m in METHODS] + [f"{m}_synthetic_images.png" for m in METHODS]
    reports += [f"privacy/{m}_privacy.json" for m in METHODS] + [f"privacy/{m}_closest_pairs.png" for m in METHODS]
    reports += [f"export/{m}/synthetic_set.pt" for m in METHODS] + [f"export/{m}/manifest.json" for m in METHODS]
    for path in reports:
        assert latest(root / "data/08_reporting" / path).is_file(), path
    outputs = pipelines["__default__"].all_outputs()
    for m in METHODS:
        assert {f"{m}.synthetic_set", f"{m}.evaluation", f"{m}.image_grid"} <= outputs
    assert "comparison_md" in outputs


@pytest.mark.slow
def test_synthetic_set_and_metrics_are_finite(ci_run):
    root, context = ci_run
    for method in METHODS:
        synthetic = context.catalog.load(f"{method}.synthetic_set")
        assert synthetic["images"].shape == (20, 1, 28, 28)  # ipc 2 x 10 classes
        assert torch.isfinite(synthetic["images"]).all() and synthetic["lr"] > 0
        assert [s["iteration"] for s in synthetic["snapshots"]] == [0, 2, 4]
    assert context.catalog.load("datm.synthetic_set")["labels"].is_floating_point()  # learned soft labels
    import json

    for name in (*METHODS, "random_real", "full_data"):
        ev = json.loads((root / f"data/08_reporting/evaluation/{name}.json").read_text())
        for key in ("final", "best", "val_selected"):
            acc = ev[key]["test"]["accuracy"]
            assert math.isfinite(acc["mean"]) and 0 <= acc["mean"] <= 1 and math.isfinite(acc["std"])
        lo, hi = ev["uncertainty"]["ci"]["accuracy"]  # the test set's interval around the final accuracy
        assert 0 <= lo <= hi <= 1 and len(ev["uncertainty"]["samples"]["accuracy"]) == 200
        assert 0 <= ev["membership"]["auroc"]["point"] <= 1 and ev["membership"]["n_networks"] >= 1
    table = latest(root / "data/08_reporting/comparison.md").read_text()
    for name in (*METHODS, "random_real", "full_data"):
        assert f"| {name} |" in table
    assert table.index("## Warnings") < table.index("## Which set to share") < table.index("| method")
    assert "nan" not in table
    # 5 test images per class in the ci data: every class is flagged as too small to trust
    warnings = json.loads(latest(root / "data/08_reporting/report_warnings.json").read_text())
    assert len({w["subject"] for w in warnings if w["kind"] == "small_class"}) == 10
    privacy = json.loads(latest(root / "data/08_reporting/privacy/mtt_privacy.json").read_text())
    assert privacy["membership_inference"]["auroc"]["ci"][0] <= privacy["membership_inference"]["auroc"]["point"]


@pytest.mark.slow
def test_mlflow_run_has_params_metrics_artifacts_and_provenance(ci_run):
    from mlflow.tracking import MlflowClient

    root, _ = ci_run
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ddforge")
    (run,) = client.search_runs([experiment.experiment_id])
    metrics = run.data.metrics
    for key in [f"{m}/test_acc_final" for m in (*METHODS, "random_real", "full_data")] + ["mtt/matching_loss"]:
        assert key in metrics and math.isfinite(metrics[key]), key
    assert len(client.get_metric_history(run.info.run_id, "mtt/matching_loss")) == 4
    assert run.data.params["trajectory_matching.syn_steps"] == "2"  # the YAML's shared block ...
    assert run.data.params["mtt.config.syn_steps"] == "2"  # ... and each method's resolved config
    assert run.data.params["datm.config.expansion_end_epoch"] == "2"
    assert run.data.params["datadam.config.lr_img"] == "1.0"  # a code default, logged too
    assert run.data.tags["ddforge.data_fingerprint.real_train"]
    assert int(run.data.tags["ddforge.warnings"]) >= 10  # every class of the ci data has 5 test images
    assert any(k.startswith("ddforge.warning.") and k.endswith(".small_class") for k in run.data.tags)
    assert 0 <= metrics["mtt/mia_auroc"] <= 1 and "mtt/balanced_accuracy_vs_random_real" in metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/comparison.md", "report/comparison.csv", "report/mtt_synthetic_images.png"} <= artifacts


@pytest.mark.slow
def test_kedro_viz_build_succeeds_offline(ci_run):
    root, _ = ci_run
    kedro = Path(sys.executable).with_name("kedro")
    result = subprocess.run([str(kedro), "viz", "build"], cwd=root, capture_output=True, text=True,
                            env={**os.environ, **ENV}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    main = (root / "build" / "api" / "main").read_text()
    assert "train_experts" in main and all(f"{m}.distill" in main for m in METHODS)


@pytest.mark.slow
def test_export_round_trips_through_the_image_folder_reader(ci_run):
    import json

    from ddforge.io.readers import read_image_folder

    root, _ = ci_run
    export = root / "data/08_reporting/export/mtt"
    manifest = json.loads((export / "manifest.json").read_text())
    tensors = torch.load(export / "synthetic_set.pt", weights_only=True)
    back = read_image_folder(export / "images")
    assert back.class_names == sorted(manifest["class_folders"])
    order = [manifest["class_folders"].index(c) for c in back.class_names]
    expected = torch.cat([tensors["display_uint8"][tensors["labels"] == c] for c in order])
    assert torch.equal(back.train_images, expected)
    assert manifest["code"]["commit"] is None or len(manifest["code"]["commit"]) == 40
    assert manifest["packages"]["torch"].startswith("2.14.1")
    assert manifest["distillation"]["data_fingerprint"]


@pytest.mark.slow
def test_privacy_report_flags_an_undistilled_copy(ci_run):
    import json

    root, _ = ci_run
    report = json.loads((root / "data/08_reporting/privacy/mtt_privacy.json").read_text())
    assert report["num_synthetic"] == 20 and len(report["images"]) == 20   # ipc 2 x 10 classes
    for entry in report["images"]:
        assert entry["pixel_rmse"] >= 0 and entry["feature_cosine_distance"] >= -1e-9
        assert entry["near_copy"] == (entry["pixel_rmse"] < report["thresholds"]["pixel_rmse"]
                                      or entry["feature_cosine_distance"] < report["thresholds"]["feature_cosine"])


@pytest.mark.slow
def test_each_set_is_ranked_under_its_own_recipe(ci_run):
    """DataDAM (batch norm by default) is evaluated on its own network against a random real subset
    trained the same way; DATM's soft labels get a hard-label evaluation; IOR/HLR reach the report."""
    import json

    from mlflow.tracking import MlflowClient

    root, _ = ci_run
    evs = {m: json.loads((root / f"data/08_reporting/evaluation/{m}.json").read_text()) for m in METHODS}
    assert evs["datadam"]["protocol"]["network"]["norm"] == "batchnorm"
    assert evs["datadam"]["random_real_same_recipe"]["protocol"]["network"]["norm"] == "batchnorm"
    assert evs["mtt"]["protocol"]["same_as_shared"] and "random_real_same_recipe" not in evs["mtt"]
    assert evs["datm"]["hard_label"]["labels"].startswith("argmax") and evs["mtt"]["hard_label"]["labels"] == "hard"
    table = latest(root / "data/08_reporting/comparison.md").read_text()
    assert "IOR (pp)" in table and "HLR (pp)" in table and "datadam: norm batchnorm" in table
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("ddforge").experiment_id])
    for m in METHODS:
        assert math.isfinite(run.data.metrics[f"{m}/ior"]) and math.isfinite(run.data.metrics[f"{m}/hlr"])


@pytest.mark.slow
def test_datadam_distils_on_its_own_unwhitened_preparation_beside_whitened_experts(ci_run):
    """conf/ci whitens (`preprocess.zca: true`); DataDAM's paper does not (`datadam.preprocess.zca: false`):
    it gets the same splits under its own transform, is evaluated and ranked on them, and exports
    through its own transform."""
    import json

    from ddforge.core.transforms import invert_transform
    from ddforge.io.export import to_uint8

    root, _ = ci_run
    data = root / "data/05_model_input"
    shared = {n: torch.load(data / f"{n}.pt", weights_only=True) for n in ("real_train", "real_test", "data_transform")}
    own = {n: torch.load(data / "datadam" / f"{n}.pt", weights_only=True)
           for n in ("real_train", "real_test", "data_transform")}
    assert shared["data_transform"]["kind"] == "zca" and own["data_transform"]["kind"] == "normalize"
    for split in ("real_train", "real_test"):
        assert torch.equal(own[split]["labels"], shared[split]["labels"])
        assert torch.allclose(invert_transform(own[split]["images"], own["data_transform"]),
                              invert_transform(shared[split]["images"], shared["data_transform"]), atol=1e-4)
    evs = {m: json.loads((root / f"data/08_reporting/evaluation/{m}.json").read_text()) for m in ("datadam", "mtt")}
    assert evs["mtt"]["protocol"]["data"] == "zca (eps 0.1)" and evs["datadam"]["protocol"]["data"] == "normalize"
    assert evs["datadam"]["random_real_same_recipe"]["protocol"]["data"] == "normalize"
    assert "data normalize (shared: zca (eps 0.1))" in latest(root / "data/08_reporting/comparison.md").read_text()
    export = torch.load(root / "data/08_reporting/export/datadam/synthetic_set.pt", weights_only=True)
    assert export["transform"]["kind"] == "normalize"
    assert torch.equal(export["display_uint8"], to_uint8(invert_transform(export["images"], own["data_transform"])))
