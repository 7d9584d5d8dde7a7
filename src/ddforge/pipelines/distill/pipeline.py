"""`pipeline(template, namespace=method)`: parameters become `params:<method>.distill`; the shared
real data, buffer, `trajectory_matching` block and runtime settings stay un-namespaced. A method with its
own preparation (`ingest.pipeline.has_own_preparation`) reads its own `<method>.real_train`."""
from kedro.pipeline import Pipeline, node, pipeline

from ddforge.methods.base import Method
from ddforge.pipelines.ingest.pipeline import has_own_preparation

from .nodes import loss_history, make_distill_node

SHARED_PARAMS = {"params:network", "params:ipc", "params:runtime", "params:seed", "params:replicate"}
TRAJECTORY_INPUTS = ["params:trajectory_matching", "expert_buffer"]


def create_distill_pipeline(method: Method) -> Pipeline:
    inputs = ["real_train", "params:network", "params:distill", "params:ipc", "params:runtime", "params:seed",
              "params:replicate"]
    if method.matches_trajectories:
        inputs += TRAJECTORY_INPUTS
    template = pipeline([
        node(make_distill_node(method.name), inputs, "synthetic_set", name="distill"),
        node(loss_history, "synthetic_set", "loss_history", name="log_loss_history"),
    ])
    trajectory = method.matches_trajectories
    real = set() if has_own_preparation(method.name) else {"real_train"}
    return pipeline(
        template,
        namespace=method.name,
        inputs=real | ({"expert_buffer"} if trajectory else set()),
        parameters=SHARED_PARAMS | ({"params:trajectory_matching"} if trajectory else set()),
    )
