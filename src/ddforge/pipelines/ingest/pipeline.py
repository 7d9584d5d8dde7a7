"""Reading and preparing the data once, for every method; plus, for a method whose `<method>.preprocess`
differs from the shared `preprocess` (DataDAM without ZCA beside whitened trajectory methods), its own
`<method>.real_*` and `<method>.data_transform`.

Which methods have their own preparation is a parameter, and a pipeline's nodes are fixed before it runs:
the project's `PipelineShapeHook` reads it from the context's parameters (`--params` included) and calls
`use_own_preparations` before Kedro (or kedro-dagster) builds the pipelines."""
from kedro.pipeline import Pipeline, node, pipeline

from ddforge.methods.registry import METHODS

from .nodes import load_raw_dataset, make_own_preparation_node, preprocess

PREPARED = ["real_train", "real_val", "real_test", "data_transform"]

_own: frozenset[str] = frozenset()


def use_own_preparations(methods: set[str] | frozenset[str]) -> bool:
    """Sets the methods the next pipelines give their own prepared data; True if that changed."""
    global _own
    changed, _own = frozenset(methods) != _own, frozenset(methods)
    return changed


def shared_data(method: str, names: set[str]) -> set[str]:
    """Which of the prepared datasets `names` a pipeline namespaced as `method` reads un-namespaced: all
    of them, or none for a method with its own preparation (Kedro then reads `<method>.<name>`)."""
    return set() if method in _own else set(names)


def create_pipeline(**kwargs) -> Pipeline:
    shared = pipeline([
        node(load_raw_dataset, ["params:source", "params:preprocess"], "raw_dataset", name="load_raw_dataset"),
        node(preprocess, ["raw_dataset", "params:preprocess", "params:seed"], PREPARED, name="preprocess"),
    ])
    own = [  # `params:<m>.preprocess` is already qualified: listed in `parameters`, so not namespaced again
        pipeline(
            [node(make_own_preparation_node(m, METHODS[m].matches_trajectories),
                  ["raw_dataset", "params:preprocess", f"params:{m}.preprocess", "params:seed"], PREPARED,
                  name="preprocess")],
            namespace=m, inputs={"raw_dataset"},
            parameters={"params:preprocess", f"params:{m}.preprocess", "params:seed"},
        )
        for m in sorted(_own)
    ]
    return sum(own, shared)
