"""Component ``compress``: a smaller deployable encoder (``selfsup compress``'s library call).

Input: the ``pretrain`` task's encoder and the unlabeled training images (fine-tuning is
label-free). Output: the deployable model directory (ONNX checked with onnxruntime, or
TorchScript for int8; the packed sparse weights; manifest) as a Model, and its metrics (size,
density, agreement with the original embeddings). CPU task: int8 targets CPU inference.
"""

from typing import Any

from kfp import dsl
from kfp.dsl.base_component import BaseComponent

from selfsup.pipeline.images import DEFAULT_IMAGE
from selfsup.pipeline.task_settings import Resources

NAME = "compress"
RESOURCES = Resources(cpu_request="2", cpu_limit="4", memory_request="4Gi", memory_limit="8Gi")


def container(image: str) -> BaseComponent:
    """The container component for ``image`` (the project image, CPU variant)."""

    @dsl.container_component
    def compress(
        compress_params: dict[str, Any],
        data_hash: str,
        dataset: dsl.Input[dsl.Dataset],
        model: dsl.Input[dsl.Model],
        compressed: dsl.Output[dsl.Model],
        metrics: dsl.Output[dsl.Metrics],
    ) -> dsl.ContainerSpec:
        """Prune / quantize the encoder, fine-tuned to its own embeddings; export it."""
        return dsl.ContainerSpec(
            image=image,
            command=["selfsup", "pipeline", "task", "compress"],
            args=[
                "--params-json", compress_params,
                "--data-hash", data_hash,
                "--dataset", dataset.path,
                "--model", model.path,
                "--compressed", compressed.path,
                "--metrics", metrics.path,
                "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )  # fmt: skip

    return compress


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def compress(
    compress_params: dict[str, Any],
    data_hash: str,
    dataset: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    compressed: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
) -> None:
    """Local twin of :func:`container`: the same task function, run by the subprocess runner."""
    from pathlib import Path

    from selfsup.pipeline import tasks

    with tasks.one_line_errors():
        tasks.check_data_hash(Path(dataset.path), data_hash)
        values = tasks.run_compress(
            compress_params, Path(dataset.path), Path(model.path), Path(compressed.path)
        )
        tasks.record_metrics(metrics, values)


twin = compress
