from kedro.pipeline import Pipeline, node, pipeline

from ddforge.methods.base import Method
from ddforge.pipelines.ingest.pipeline import shared_data

from .nodes import comparison_table, render_image_grid


def create_report_pipeline(methods: list[Method]) -> Pipeline:
    """The comparison table, and per method its image grid plus the figures it declares itself
    (`Method.report_figures`, e.g. IADD's `importance_plot`)."""
    evaluations = [f"{m.name}.evaluation" for m in methods] + ["random_real.evaluation", "full_data.evaluation"]
    per_method = [
        pipeline(
            [node(render_image_grid, ["synthetic_set", "data_transform"], "image_grid", name="image_grid")]
            + [node(render, "synthetic_set", output, name=output) for output, render in m.report_figures.items()],
            namespace=m.name, inputs=shared_data(m.name, {"data_transform"}),
        )
        for m in methods
    ]
    return pipeline([
        node(comparison_table, ["params:report", "real_test", *evaluations],
             ["comparison_csv", "comparison_md", "report_metrics", "report_warnings"], name="comparison_table"),
        *per_method,
    ])
