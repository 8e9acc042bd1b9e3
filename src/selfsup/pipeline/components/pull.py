"""Component ``pull``: a model from the registry (by id or alias, e.g. ``champion``).

Reads the registry on S3 with the store's credentials (Secret → environment); never cached,
because what an alias names changes between runs.
"""

from typing import Any

from kfp import dsl
from kfp.dsl.base_component import BaseComponent

from selfsup.pipeline.images import DEFAULT_IMAGE
from selfsup.pipeline.task_settings import Resources

NAME = "pull"
RESOURCES = Resources(cpu_request="500m", cpu_limit="1", memory_request="1Gi", memory_limit="2Gi")


def container(image: str) -> BaseComponent:
    """The container component for ``image`` (the project image, CPU variant)."""

    @dsl.container_component
    def pull(
        registry_params: dict[str, Any],
        ref: str,
        model: dsl.Output[dsl.Model],
        metrics: dsl.Output[dsl.Metrics],
    ) -> dsl.ContainerSpec:
        """Download the registry's model ``ref`` (verified file by file)."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "pull"],
            args=[
                "--params-json", registry_params,
                "--ref", ref,
                "--model", model.path,
                "--metrics", metrics.path,
                "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )  # fmt: skip

    return pull


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def pull(
    registry_params: dict[str, Any],
    ref: str,
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
) -> None:
    """Local twin of :func:`container`: the same task function, run by the subprocess runner."""
    from pathlib import Path

    from selfsup.pipeline import tasks

    with tasks.one_line_errors():
        values = tasks.run_registry_pull(registry_params, ref, Path(model.path))
        tasks.record_metrics(metrics, values)


twin = pull
