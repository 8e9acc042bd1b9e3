"""Component ``unlearn``: serve a deletion request (``selfsup unlearn``'s library call), GPU task.

``forget_ids`` are sample ids (``train/<index>``) of the dataset ``data`` prepares. Outputs the
unlearned encoder as a Model (what ``evaluate`` and the registry take), the stage's whole output
(encoder, head, ``request.json``, audit ``metrics.json``) as the ``request`` artifact, and the
audit as Metrics. Never cached: a deletion request is served every time it is submitted.
"""

from typing import Any

from kfp import dsl
from kfp.dsl.base_component import BaseComponent

from selfsup.pipeline.images import DEFAULT_IMAGE
from selfsup.pipeline.task_settings import Resources

NAME = "unlearn"
RESOURCES = Resources(cpu_request="4", cpu_limit="8", memory_request="8Gi", memory_limit="16Gi")


def container(image: str) -> BaseComponent:
    """The container component for ``image`` (the CUDA variant on GPU pools)."""

    @dsl.container_component
    def unlearn(
        unlearn_params: dict[str, Any],
        forget_ids: list[str],
        data_hash: str,
        dataset: dsl.Input[dsl.Dataset],
        model: dsl.Input[dsl.Model],
        unlearned: dsl.Output[dsl.Model],
        request: dsl.Output[dsl.Artifact],
        metrics: dsl.Output[dsl.Metrics],
    ) -> dsl.ContainerSpec:
        """LAF on unlabelled images, audited against no-op / fine-tune / retrain."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "unlearn"],
            args=[
                "--params-json", unlearn_params,
                "--forget-ids", forget_ids,
                "--data-hash", data_hash,
                "--dataset", dataset.path,
                "--model", model.path,
                "--unlearned", unlearned.path,
                "--request", request.path,
                "--metrics", metrics.path,
                "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )  # fmt: skip

    return unlearn


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def unlearn(
    unlearn_params: dict[str, Any],
    forget_ids: list[str],
    data_hash: str,
    dataset: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    unlearned: dsl.Output[dsl.Model],
    request: dsl.Output[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
) -> None:
    """Local twin of :func:`container`: the same task function, run by the subprocess runner."""
    from pathlib import Path

    from selfsup.pipeline import tasks

    with tasks.one_line_errors():
        tasks.check_data_hash(Path(dataset.path), data_hash)
        values = tasks.run_unlearn_task(
            unlearn_params,
            forget_ids,
            Path(dataset.path),
            Path(model.path),
            Path(request.path),
            Path(unlearned.path),
        )
        tasks.record_metrics(metrics, values)


twin = unlearn
