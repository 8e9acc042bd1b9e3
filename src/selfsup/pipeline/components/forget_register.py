"""Component ``forget-register``: the unlearned model into the registry, then the deletion audit.

The encoder is registered with the request in its lineage and becomes ``champion`` only when it
was unlearned from the current champion and its audit is within the registry's
``max_forget_gap`` / ``max_attack_gap`` of retraining (see :mod:`selfsup.registry.forget`). A side
effect: never cached; S3 credentials only as environment variables from the Secret.
"""

from typing import Any

from kfp import dsl
from kfp.dsl.base_component import BaseComponent

from selfsup.pipeline.images import DEFAULT_IMAGE
from selfsup.pipeline.task_settings import Resources

NAME = "forget-register"
RESOURCES = Resources(cpu_request="500m", cpu_limit="1", memory_request="1Gi", memory_limit="2Gi")


def container(image: str) -> BaseComponent:
    """The container component for ``image`` (the project image, CPU variant)."""

    @dsl.container_component
    def forget_register(
        registry_params: dict[str, Any],
        request: dsl.Input[dsl.Artifact],
        evaluation: dsl.Input[dsl.Artifact],
        metrics: dsl.Output[dsl.Metrics],
    ) -> dsl.ContainerSpec:
        """Register the unlearned model; promote it only if the deletion audit passes."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "forget-register"],
            args=[
                "--params-json", registry_params,
                "--request", request.path,
                "--evaluation", evaluation.path,
                "--metrics", metrics.path,
                "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )  # fmt: skip

    return forget_register


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def forget_register(
    registry_params: dict[str, Any],
    request: dsl.Input[dsl.Artifact],
    evaluation: dsl.Input[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
) -> None:
    """Local twin of :func:`container`: the same task function, run by the subprocess runner."""
    from pathlib import Path

    from selfsup.pipeline import tasks

    with tasks.one_line_errors():
        values = tasks.run_register_unlearned(
            registry_params, Path(request.path), Path(evaluation.path)
        )
        tasks.record_metrics(metrics, values)


twin = forget_register
