from kedro.pipeline import Pipeline, node, pipeline

from .nodes import check_privacy, export_synthetic_set


def create_share_pipeline(methods: list[str]) -> Pipeline:
    """Per method: `<m>.privacy_report`, `<m>.privacy_pairs`, and the export folder."""
    return sum(
        (
            pipeline(
                [
                    node(check_privacy, ["synthetic_set", "real_train", "real_val", "data_transform", "expert_buffer",
                                         "params:privacy"], ["privacy_report", "privacy_pairs"], name="privacy_check"),
                    node(export_synthetic_set, ["synthetic_set", "data_transform", "parameters"],
                         ["export_images", "export_tensors", "export_manifest"], name="export"),
                ],
                namespace=m,
                inputs={"real_train", "real_val", "data_transform", "expert_buffer"},
                parameters={"params:privacy", "parameters"},
            )
            for m in methods
        ),
        Pipeline([]),
    )
