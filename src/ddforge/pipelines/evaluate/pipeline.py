from kedro.pipeline import Pipeline, node, pipeline

from ddforge.pipelines.ingest.pipeline import shared_data

from .nodes import evaluate_full_data, evaluate_random_real, evaluate_synthetic_set

REAL = {"real_train", "real_val", "real_test"}
COMMON = ["params:network", "params:evaluation", "params:runtime", "params:seed"]


def baselines() -> Pipeline:
    """Random real subset of the same IPC, and the full training split; namespaced like methods."""
    random_real = pipeline(
        [node(evaluate_random_real, ["real_train", "real_val", "real_test", "params:network", "params:evaluation",
                                     "params:ipc", "params:runtime", "params:seed", "params:replicate"],
              "evaluation", name="evaluate")],
        namespace="random_real", inputs=REAL, parameters={*COMMON, "params:ipc", "params:replicate"},
    )
    full_data = pipeline(
        [node(evaluate_full_data, ["real_train", "real_val", "real_test", *COMMON], "evaluation", name="evaluate")],
        namespace="full_data", inputs=REAL, parameters=set(COMMON),
    )
    return random_real + full_data


def evaluate_method(method: str) -> Pipeline:
    """The method's set under its recipe: the shared `evaluation` block with `<method>.evaluation` over it,
    on its own `<method>.real_*` when it has its own preparation."""
    own = f"params:{method}.evaluation"  # already qualified: listed in `parameters`, so not namespaced again
    return pipeline(
        [node(evaluate_synthetic_set, ["synthetic_set", "real_train", "real_val", "real_test", *COMMON, own,
                                       "params:replicate"], "evaluation", name="evaluate")],
        namespace=method,
        inputs=shared_data(method, REAL),
        parameters={*COMMON, own, "params:replicate"},
    )
