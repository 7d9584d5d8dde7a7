"""`pipeline(template, namespace=method)`: parameters become `params:<method>.distill`; the shared
real data, buffer and runtime settings stay un-namespaced."""
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import loss_history, make_distill_node

SHARED_PARAMS = {"params:network", "params:ipc", "params:runtime", "params:seed"}


def distill_template(method: str, uses_buffer: bool) -> Pipeline:
    inputs = ["real_train", "params:network", "params:distill", "params:ipc", "params:runtime", "params:seed"]
    return pipeline([
        node(make_distill_node(method), inputs + (["expert_buffer"] if uses_buffer else []), "synthetic_set",
             name="distill"),
        node(loss_history, "synthetic_set", "loss_history", name="log_loss_history"),
    ])


def create_distill_pipeline(method: str, uses_buffer: bool = True) -> Pipeline:
    return pipeline(
        distill_template(method, uses_buffer),
        namespace=method,
        inputs={"real_train", "expert_buffer"} if uses_buffer else {"real_train"},
        parameters=SHARED_PARAMS,
    )
