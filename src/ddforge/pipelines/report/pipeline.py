from kedro.pipeline import Pipeline, node, pipeline

from .nodes import comparison_table, render_image_grid


def create_report_pipeline(methods: list[str]) -> Pipeline:
    evaluations = [f"{m}.evaluation" for m in methods] + ["random_real.evaluation", "full_data.evaluation"]
    grids = [
        node(render_image_grid, [f"{m}.synthetic_set", "data_transform"], f"{m}.image_grid", name=f"{m}_image_grid")
        for m in methods
    ]
    return pipeline([
        node(comparison_table, evaluations, ["comparison_csv", "comparison_md", "report_metrics"],
             name="comparison_table"),
        *grids,
    ])
