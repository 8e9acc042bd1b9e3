"""Component ``register``: the model into the registry, then the promotion gate.

A side effect (it changes the registry's aliases), so it is never cached; the registry's S3
credentials reach it only as environment variables from a Kubernetes Secret.
"""

from typing import Any

from kfp import dsl
from kfp.dsl.base_component import BaseComponent

from selfsup.pipeline.images import DEFAULT_IMAGE
from selfsup.pipeline.task_settings import Resources

NAME = "register"
RESOURCES = Resources(cpu_request="500m", cpu_limit="1", memory_request="1Gi", memory_limit="2Gi")


def container(image: str) -> BaseComponent:
    """The container component for ``image`` (the project image, CPU variant)."""

    @dsl.container_component
    def register(
        registry_params: dict[str, Any],
        model: dsl.Input[dsl.Model],
        evaluation: dsl.Input[dsl.Artifact],
        metrics: dsl.Output[dsl.Metrics],
    ) -> dsl.ContainerSpec:
        """Register the model and promote it to champion only if the gate says so."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "register"],
            args=[
                "--params-json", registry_params,
                "--model", model.path,
                "--evaluation", evaluation.path,
                "--metrics", metrics.path,
                "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )  # fmt: skip

    return register


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def register(
    registry_params: dict[str, Any],
    model: dsl.Input[dsl.Model],
    evaluation: dsl.Input[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
) -> None:
    """Local twin of :func:`container`: the same task function, run by the subprocess runner."""
    from pathlib import Path

    from selfsup.pipeline import tasks

    with tasks.one_line_errors():
        values = tasks.run_register(registry_params, Path(model.path), Path(evaluation.path))
        tasks.record_metrics(metrics, values)


twin = register
