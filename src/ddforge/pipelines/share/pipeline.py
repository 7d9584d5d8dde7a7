from kedro.pipeline import Pipeline, node, pipeline

from ddforge.pipelines.ingest.pipeline import shared_data

from .nodes import check_privacy, export_synthetic_set, privacy_reference


def create_share_pipeline(methods: list[str]) -> Pipeline:
    """`privacy_reference` once, then per method: `<m>.privacy_report`, `<m>.privacy_pairs`, the export (each
    with the method's own `<m>.data_transform` when it has its own preparation)."""
    reference = Pipeline([
        node(privacy_reference, ["real_train", "real_val", "data_transform", "expert_buffer"], "privacy_reference",
             name="privacy_reference"),
    ])
    return sum(
        (
            pipeline(
                [
                    node(check_privacy, ["synthetic_set", "evaluation", "privacy_reference", "data_transform",
                                         "params:privacy"],
                         ["privacy_report", "privacy_pairs"], name="privacy_check"),
                    node(export_synthetic_set, ["synthetic_set", "data_transform", "parameters"],
                         ["export_images", "export_tensors", "export_manifest"], name="export"),
                ],
                namespace=m,
                inputs={"privacy_reference"} | shared_data(m, {"data_transform"}),
                parameters={"params:privacy", "parameters"},
            )
            for m in methods
        ),
        reference,
    )
