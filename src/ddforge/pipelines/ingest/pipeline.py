from kedro.pipeline import Pipeline, node, pipeline

from .nodes import load_raw_dataset, preprocess


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(load_raw_dataset, ["params:source", "params:preprocess"], "raw_dataset", name="load_raw_dataset"),
        node(
            preprocess, ["raw_dataset", "params:preprocess", "params:seed"],
            ["real_train", "real_val", "real_test", "data_transform"], name="preprocess",
        ),
    ])
