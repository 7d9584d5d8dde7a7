from kedro.pipeline import Pipeline, node, pipeline

from .nodes import comparison_table, render_image_grid, render_importance

METHODS_WITH_IMPORTANCE = {"iadd"}


def create_report_pipeline(methods: list[str]) -> Pipeline:
    evaluations = [f"{m}.evaluation" for m in methods] + ["random_real.evaluation", "full_data.evaluation"]
    per_method = [
        pipeline(
            [node(render_image_grid, ["synthetic_set", "data_transform"], "image_grid", name="image_grid")]
            + ([node(render_importance, "synthetic_set", "importance_plot", name="importance_plot")]
               if m in METHODS_WITH_IMPORTANCE else []),
            namespace=m, inputs={"data_transform"},
        )
        for m in methods
    ]
    return pipeline([
        node(comparison_table, ["params:report", "real_test", *evaluations], ["comparison_csv", "comparison_md", "report_metrics"],
             name="comparison_table"),
        *per_method,
    ])
