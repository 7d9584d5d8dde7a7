"""`pipeline(template, namespace=method)`: parameters become `params:<method>.distill`; the shared
real data, buffer, `trajectory_matching` block and runtime settings stay un-namespaced. A method with its
own preparation (`ingest.pipeline.shared_data`) reads its own `<method>.real_train`."""
from kedro.pipeline import Pipeline, node, pipeline

from ddforge.methods.base import Method
from ddforge.pipelines.ingest.pipeline import shared_data

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
    return pipeline(
        template,
        namespace=method.name,
        inputs=shared_data(method.name, {"real_train"}) | ({"expert_buffer"} if trajectory else set()),
        parameters=SHARED_PARAMS | ({"params:trajectory_matching"} if trajectory else set()),
    )
