"""`train_experts` as one node, or as `experts.shards` nodes whose buffers `gather_experts` joins.

The number of shards is a parameter, and a pipeline's nodes are fixed before it runs: the project's
`PipelineShapeHook` reads `experts.shards` from the context's parameters (`--params` included) and
calls `use_shards` before Kedro (or kedro-dagster) builds the pipelines."""
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import gather_experts, make_shard_node, summarise_experts, train_experts

INPUTS = ["real_train", "real_val", "params:network", "params:experts", "params:runtime", "params:seed"]

_shards = 1


def use_shards(shards: int) -> bool:
    """Sets the number of expert shards the next `create_pipeline()` builds; True if it changed."""
    global _shards
    changed, _shards = shards != _shards, shards
    return changed


def shard_dataset(shard: int, shards: int) -> str:
    """Catalog name of one shard's buffer (`expert_buffer_shard_{k}_of_{K}` in catalog.yml)."""
    return f"expert_buffer_shard_{shard}_of_{shards}"


def create_pipeline(shards: int | None = None, **kwargs) -> Pipeline:
    shards = _shards if shards is None else shards
    if shards == 1:
        training = [node(train_experts, INPUTS, "expert_buffer", name="train_experts")]
    else:
        parts = [shard_dataset(k, shards) for k in range(shards)]
        training = [node(make_shard_node(k), INPUTS, parts[k], name=f"train_experts_shard_{k}") for k in range(shards)]
        training.append(node(gather_experts, ["params:experts", *parts], "expert_buffer", name="gather_experts"))
    return pipeline([
        *training,
        node(summarise_experts, "expert_buffer", "expert_metrics", name="summarise_experts"),
    ])
