from kedro.pipeline import Pipeline, node, pipeline

from .nodes import summarise_experts, train_experts


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(
            train_experts,
            ["real_train", "real_val", "params:network", "params:experts", "params:runtime", "params:seed"],
            "expert_buffer", name="train_experts",
        ),
        node(summarise_experts, "expert_buffer", "expert_metrics", name="summarise_experts"),
    ])
