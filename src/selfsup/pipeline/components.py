"""One Python function per pipeline task, and each task's cluster settings: the only definition.

Each function calls its stage inside :func:`selfsup.pipeline.runtime.task`. :func:`component`
binds it to an image as a KFP lightweight component (``install_kfp_package=False``: kfp is in the
image; no pip at run time), and that same object runs on the cluster, under
``kfp.local.SubprocessRunner`` (``run-local``) and under ``kfp.local.DockerRunner``. KFP's own
executor resolves the artifacts (``Input[List[Artifact]]`` included) and writes the metadata the
UI shows. The compiled YAML embeds each function's source, so bodies stay a call or two.

``data_hash`` parameters are the dataset's content hash: KFP's cache key sees parameters, not
artifact contents, so passing it makes the cache miss exactly when the data changes.
"""

# No `from __future__ import annotations`: KFP reads the parameter annotations, and it reads
# Optional[X], not X | None (it takes a PEP 604 union for an artifact type).
# ruff: noqa: UP045
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

from kfp import dsl

from selfsup.pipeline.task_settings import Resources


def validate(
    data_params: Optional[dict[str, Any]] = None,
    mine_params: Optional[dict[str, Any]] = None,
    pretrain_params: Optional[dict[str, Any]] = None,
    evaluate_params: Optional[dict[str, Any]] = None,
    distill_params: Optional[dict[str, Any]] = None,
    compress_params: Optional[dict[str, Any]] = None,
    unlearn_params: Optional[dict[str, Any]] = None,
    registry_params: Optional[dict[str, Any]] = None,
    method: Optional[str] = None,
    epochs: int = -1,  # runtime.UNSET: the pipeline has no such knob
    batch_size: int = -1,
    data_source: Optional[str] = None,
    knn_margin: Optional[float] = None,
    rankme_margin: Optional[float] = None,
    run_id: str = "",
) -> NamedTuple(  # type: ignore[valid-type]
    "Sections",
    [
        ("data_params", dict),
        ("mine_params", dict),
        ("pretrain_params", dict),
        ("evaluate_params", dict),
        ("distill_params", dict),
        ("compress_params", dict),
        ("unlearn_params", dict),
        ("registry_params", dict),
    ],
):
    """Check every params section once, up front, with the typed knobs put back; every other
    task reads the sections this returns."""
    from selfsup.pipeline.runtime import validated_sections

    return validated_sections(dict(locals()))


def data(
    data_params: dict[str, Any],
    dataset: dsl.Output[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    content_hash: dsl.OutputPath(str),  # type: ignore[valid-type]
    run_id: str = "",
) -> None:
    """Prepare the dataset (uint8 shards + manifest); output its content hash."""
    from pathlib import Path

    from selfsup.data.shards import read_dataset_manifest
    from selfsup.data.stage import run
    from selfsup.pipeline.runtime import task

    with task("data", data_params, metrics, run_id=run_id) as t:
        t.run(run, out=dataset)
        Path(content_hash).write_text(read_dataset_manifest(Path(dataset.path))["content_hash"])


def mine(
    mine_params: dict[str, Any],
    mined: dsl.Output[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    run_id: str = "",
) -> None:
    """Mine every shard, then merge, in one task: the fan-out offline (kfp.local cannot collect
    a ParallelFor's outputs)."""
    from selfsup.mining.stage import run
    from selfsup.pipeline.runtime import task

    with task("mine", mine_params, metrics, run_id=run_id) as t:
        t.run(run, out=mined)


def mine_plan(mine_params: dict[str, Any], run_id: str = "") -> list[int]:
    """The shard indices of the mine section: what the ParallelFor fans out over."""
    from selfsup.pipeline.runtime import task

    with task("mine", mine_params, run_id=run_id, name="mine-plan") as t:
        return list(range(t.params.num_shards))


def mine_shard(
    mine_params: dict[str, Any],
    index: int,
    shard: dsl.Output[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
    run_id: str = "",
) -> None:
    """Mine shard ``index`` (its videos only): tracks, patches, per-video records."""
    from selfsup.mining.stage import run_shard
    from selfsup.pipeline.runtime import task

    with task("mine", mine_params, metrics, run_id=run_id, name=f"mine-shard-{index}") as t:
        t.run(run_shard, index, out=shard)


def mine_merge(
    mine_params: dict[str, Any],
    shards: dsl.Input[list[dsl.Artifact]],
    mined: dsl.Output[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    run_id: str = "",
) -> None:
    """Merge the collected shards (any order) into the mined dataset: inter edges, pairs."""
    from pathlib import Path

    from selfsup.mining.stage import run_merge
    from selfsup.pipeline.runtime import task

    with task("mine", mine_params, metrics, run_id=run_id, name="mine-merge") as t:
        t.run(run_merge, [Path(s.path) for s in shards], out=mined)


def pretrain(
    pretrain_params: dict[str, Any],
    data_hash: str,
    dataset: dsl.Input[dsl.Dataset],
    mined: dsl.Input[dsl.Dataset],
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    run_id: str = "",
) -> None:
    """Pretrain the encoder on the train split (the methods on mined pairs also read
    ``mined``; the edge orders the DAG for every method), on every GPU of the pod."""
    from selfsup.pipeline.runtime import task
    from selfsup.train.launch import run_on_every_gpu as run

    with task("pretrain", pretrain_params, metrics, dataset, data_hash, run_id=run_id) as t:
        t.run(run, dataset, mined, out=model, **t.resumable())


def pretrain_distilled(
    pretrain_params: dict[str, Any],
    distilled: dsl.Input[dsl.Dataset],
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    run_id: str = "",
) -> None:
    """Train a fresh encoder on a distilled set (``pretrain.method: distilled``): the cheap
    retrain."""
    from selfsup.pipeline.runtime import task
    from selfsup.train.stage import run

    with task("pretrain", pretrain_params, metrics, run_id=run_id) as t:
        t.run(run, distilled, out=model)


def evaluate(
    evaluate_params: dict[str, Any],
    data_hash: str,
    dataset: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    confusion: dsl.Output[dsl.ClassificationMetrics],
    report: dsl.Output[dsl.HTML],
    evaluation: dsl.Output[dsl.Artifact],
    run_id: str = "",
) -> None:
    """Evaluate the encoder: kNN, linear probe, RankMe, ECE; the report and confusion matrix."""
    from selfsup.evaluate.stage import run
    from selfsup.pipeline.runtime import task

    with task("evaluate", evaluate_params, metrics, dataset, data_hash, run_id=run_id) as t:
        t.run(run, dataset, model, out=evaluation, run_id=run_id)
        t.publish_evaluation(evaluation, report, confusion)


def on_model(
    stage: str,
    stage_params: dict[str, Any],
    data_hash: str,
    dataset: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    output: dsl.Output[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
    run_id: str = "",
) -> None:
    """A stage that turns the dataset and the encoder into one artifact: ``distill`` (KRR-ST,
    the encoder as teacher: a distilled set) or ``compress`` (pruned, quantized, exported)."""
    from selfsup.pipeline.runtime import model_stage, task

    with task(stage, stage_params, metrics, dataset, data_hash, run_id=run_id) as t:
        t.run(model_stage(stage), dataset, model, out=output)


def register(
    registry_params: dict[str, Any],
    candidate: dsl.Input[dsl.Artifact],
    evaluation: dsl.Input[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
    decision: dsl.OutputPath(str),  # type: ignore[valid-type]
    gate: str = "champion",
    run_id: str = "",
) -> None:
    """Register ``candidate`` through ``gate``: ``champion`` (a trained encoder; champion only
    if the label-free gate says so) or ``deletion`` (unlearn's output; champion only if the
    deletion audit passes). ``decision``: ``promoted`` or ``kept`` (what ``serve`` waits on)."""
    from pathlib import Path

    from selfsup.pipeline.runtime import register_through

    result = register_through(gate, registry_params, candidate, evaluation, metrics, run_id)
    Path(decision).write_text("promoted" if result["promoted"] else "kept")


def model_card(
    evaluation: dsl.Input[dsl.Artifact],
    model: dsl.Input[dsl.Model],
    compressed: dsl.Input[dsl.Artifact],
    card: dsl.Output[dsl.Markdown],
    run_id: str = "",
) -> None:
    """The model card (Markdown, shown in the UI) from evaluate's, the model's and compress's
    outputs: data and its hash, method, metrics against the floors, calibration, compression,
    deletion requests served, limitations."""
    from selfsup.serve.card import publish_card

    publish_card(evaluation.path, model.path, compressed.path, card.path, run_id)


def serve(
    registry_params: dict[str, Any],
    model: dsl.Input[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    run_id: str = "",
) -> None:
    """Serve the promoted encoder: its ONNX export (checked with onnxruntime) into the registry's
    store, then its KServe InferenceService created or patched as the deployer ServiceAccount."""
    from selfsup.pipeline.runtime import task
    from selfsup.serve.kserve import serve_promoted

    with task("registry", registry_params, metrics, run_id=run_id, name="serve") as t:
        t.done(serve_promoted(model.path, t.params.uri))


def pull(
    registry_params: dict[str, Any],
    ref: str,
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    run_id: str = "",
) -> None:
    """Download the registry's model ``ref`` (an id or an alias such as champion), verified."""
    from pathlib import Path

    from selfsup.pipeline.runtime import task

    with task("registry", registry_params, metrics, run_id=run_id, name="pull") as t:
        registry = t.registry()
        model_id = registry.resolve(ref)
        registry.pull(model_id, Path(model.path))
        t.done({"model": model_id, "ref": ref})


def unlearn(
    unlearn_params: dict[str, Any],
    forget_ids: list[str],
    data_hash: str,
    dataset: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    unlearned: dsl.Output[dsl.Model],
    request: dsl.Output[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
    run_id: str = "",
) -> None:
    """Serve the deletion request: LAF, audited against no-op / fine-tune / retrain; the whole
    stage output is ``request``, its encoder ``unlearned``."""
    from selfsup.pipeline.runtime import scratch, task
    from selfsup.unlearn.stage import run

    with (
        task("unlearn", unlearn_params, metrics, dataset, data_hash, run_id=run_id) as t,
        scratch() as tmp,
    ):
        t.run(run, dataset, model, t.ids_file(forget_ids, tmp), out=request)
        t.copy_dir(request, "encoder", unlearned)


def outcome(
    status: dsl.PipelineTaskFinalStatus,
    registry_params: dict[str, Any],
    run_id: str = "",
) -> None:
    """The exit task: push whether the run failed; a failed run with a registry records a
    "failed" decision there, so a broken schedule is noticed."""
    from selfsup.pipeline.runtime import record_outcome

    record_outcome(status.state, status.error_message, registry_params, run_id)


@dataclass(frozen=True)
class TaskSpec:
    """A task's function and how the cluster runs it: resources, the GPU pool, caching (side
    effects are never cached), whether it needs the S3 store's credentials, and whether its
    checkpoints are kept in the store (so a retry resumes), and the arguments it always gets."""

    function: Callable[..., Any]
    resources: Resources
    gpu: bool = False
    cached: bool = True
    s3: bool = False
    checkpointed: bool = False
    retried: bool = True
    fixed: dict[str, Any] = field(default_factory=dict)


_SMALL = Resources(cpu_request="500m", cpu_limit="1", memory_request="1Gi", memory_limit="2Gi")
_MEDIUM = Resources(cpu_request="2", cpu_limit="4", memory_request="4Gi", memory_limit="8Gi")
_LARGE = Resources(cpu_request="4", cpu_limit="8", memory_request="8Gi", memory_limit="16Gi")

TASKS: dict[str, TaskSpec] = {
    # A bad value fails the same way every time: no retries, and before any other task.
    "validate": TaskSpec(validate, Resources("100m", "500m", "256Mi", "1Gi"), retried=False),
    "data": TaskSpec(data, Resources("1", "2", "2Gi", "4Gi"), s3=True),
    "mine": TaskSpec(mine, _MEDIUM, s3=True),
    "mine-plan": TaskSpec(mine_plan, Resources("100m", "500m", "256Mi", "1Gi")),
    "mine-shard": TaskSpec(mine_shard, _MEDIUM, s3=True),
    "mine-merge": TaskSpec(mine_merge, _MEDIUM),
    "pretrain": TaskSpec(pretrain, _LARGE, gpu=True, s3=True, checkpointed=True),
    "pretrain-distilled": TaskSpec(pretrain_distilled, _MEDIUM, gpu=True),
    "evaluate": TaskSpec(evaluate, _MEDIUM),
    "distill": TaskSpec(
        on_model, Resources("2", "8", "8Gi", "16Gi"), gpu=True, fixed={"stage": "distill"}
    ),
    "compress": TaskSpec(on_model, _MEDIUM, fixed={"stage": "compress"}),
    "register": TaskSpec(register, _SMALL, cached=False, s3=True),
    "pull": TaskSpec(pull, _SMALL, cached=False, s3=True),
    "unlearn": TaskSpec(unlearn, _LARGE, gpu=True, cached=False),
    "model-card": TaskSpec(model_card, Resources("100m", "500m", "256Mi", "1Gi")),
    "serve": TaskSpec(serve, _SMALL, cached=False, s3=True),
    "outcome": TaskSpec(outcome, _SMALL, cached=False, s3=True),
}


@functools.cache
def component(name: str, image: str) -> Any:
    """Task ``name`` bound to ``image``: one object per (task, image), wherever it runs."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; tasks: {sorted(TASKS)}")
    op = dsl.component(base_image=image, install_kfp_package=False)(TASKS[name].function)
    # Named after the task, not the function (``on_model`` serves two tasks): the UI's and the
    # YAML's component names stay distill and compress.
    op.component_spec.name = op.name = name
    return op
