"""Component ``evaluate``: kNN, linear probe, RankMe, ECE (``selfsup evaluate``'s library call).

Outputs the stage's metrics (scalars in the UI), the linear probe's confusion matrix on the test
split (a ClassificationMetrics artifact, drawn by the UI), the self-contained HTML report (rendered
by the UI's HTML viewer) and the full evaluation directory (metrics.json, plots, manifest).
"""

from typing import Any

from kfp import dsl
from kfp.dsl.base_component import BaseComponent

from selfsup.pipeline.images import DEFAULT_IMAGE
from selfsup.pipeline.task_settings import Resources

NAME = "evaluate"
RESOURCES = Resources(cpu_request="2", cpu_limit="4", memory_request="4Gi", memory_limit="8Gi")


def container(image: str) -> BaseComponent:
    """The container component for ``image`` (the project image, CPU variant)."""

    @dsl.container_component
    def evaluate(
        evaluate_params: dict[str, Any],
        data_hash: str,
        dataset: dsl.Input[dsl.Dataset],
        model: dsl.Input[dsl.Model],
        metrics: dsl.Output[dsl.Metrics],
        confusion: dsl.Output[dsl.ClassificationMetrics],
        report: dsl.Output[dsl.HTML],
        evaluation: dsl.Output[dsl.Artifact],
    ) -> dsl.ContainerSpec:
        """Evaluate the encoder against a random-init floor; write metrics and the report."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "evaluate"],
            args=[
                "--params-json", evaluate_params,
                "--data-hash", data_hash,
                "--dataset", dataset.path,
                "--model", model.path,
                "--metrics", metrics.path,
                "--confusion", confusion.path,
                "--report", report.path,
                "--evaluation", evaluation.path,
                "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )  # fmt: skip

    return evaluate


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def evaluate(
    evaluate_params: dict[str, Any],
    data_hash: str,
    dataset: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    confusion: dsl.Output[dsl.ClassificationMetrics],
    report: dsl.Output[dsl.HTML],
    evaluation: dsl.Output[dsl.Artifact],
) -> None:
    """Local twin of :func:`container`: the same task function, run by the subprocess runner."""
    from pathlib import Path

    from selfsup.pipeline import tasks

    with tasks.one_line_errors():
        tasks.check_data_hash(Path(dataset.path), data_hash)
        values = tasks.run_evaluate(
            evaluate_params,
            Path(dataset.path),
            Path(model.path),
            Path(evaluation.path),
            Path(report.path),
        )
        tasks.record_metrics(metrics, values)
        tasks.record_confusion(confusion, Path(evaluation.path))


twin = evaluate
