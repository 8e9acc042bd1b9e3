"""``selfsup pipeline …``: compile, run offline, submit, schedule — and the task entry point.

Kept apart from the stage commands so that importing the CLI does not import ``kfp``: every
command imports what it needs when it runs. ``selfsup pipeline task <stage>`` is what the
container components run inside the project image.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from selfsup import __version__
from selfsup.cli_errors import guard
from selfsup.config import Params, load_params

pipeline_app = typer.Typer(
    no_args_is_help=True, help="Kubeflow Pipelines: compile, run-local, submit, schedule."
)
task_app = typer.Typer(
    no_args_is_help=True, help="Run one pipeline task (what the container components execute)."
)
pipeline_app.add_typer(task_app, name="task")

Image = Annotated[str | None, typer.Option(help="project image (CPU); default selfsup:<ver>-cpu")]
GpuImage = Annotated[
    str | None, typer.Option(help="project image for GPU tasks; default selfsup:<ver>-cuda")
]
Gpus = Annotated[int, typer.Option(help="GPUs per GPU task; 0 runs pretrain on CPU nodes")]
Params_ = Annotated[Path, typer.Option("--params", help="params YAML: the run's arguments")]
Host = Annotated[str, typer.Option(help="KFP API endpoint, e.g. http://localhost:8080")]
Experiment = Annotated[str, typer.Option(help="KFP experiment to run in")]
Namespace = Annotated[str | None, typer.Option(help="Kubeflow profile namespace (multi-user)")]
Package = Annotated[
    Path | None, typer.Option(help="compiled pipeline YAML to upload (default: compile now)")
]
Version = Annotated[str | None, typer.Option(help="pipeline version name (default: timestamped)")]


def _options(image: str | None, gpu_image: str | None, gpus: int) -> Any:
    from selfsup.pipeline.gpu import GpuPool
    from selfsup.pipeline.train import ClusterOptions

    defaults = ClusterOptions()
    return ClusterOptions(
        image=image or defaults.image,
        gpu_image=gpu_image or defaults.gpu_image,
        gpu=GpuPool(count=gpus) if gpus > 0 else None,
    )


@pipeline_app.command("compile")
def compile_(
    pipeline: Annotated[str, typer.Option(help="pipeline to compile")] = "train",
    out: Annotated[Path, typer.Option(help="YAML file to write")] = Path("pipelines/train.yaml"),
    image: Image = None,
    gpu_image: GpuImage = None,
    gpus: Gpus = 1,
    goldens: Annotated[
        Path | None,
        typer.Option(
            help="also rewrite the golden copies under this repo root (pipelines/golden/, "
            "components/), always with the default images and GPU settings"
        ),
    ] = None,
) -> None:
    """Compile a pipeline to KFP IR YAML (upload it in the UI or with `submit`)."""
    from selfsup.pipeline import compile as compiling

    options = _options(image, gpu_image, gpus)
    guard(lambda: compiling.compile_pipeline(pipeline, out, options))
    typer.echo(f"wrote {out}")
    if goldens is not None:
        for path in guard(lambda: compiling.write_goldens(goldens)):
            typer.echo(f"wrote {path}")


PipelineName = Annotated[str, typer.Option("--pipeline", help="train | retrain | forget")]
ForgetFile = Annotated[
    Path | None,
    typer.Option("--forget", help="forget pipeline: the request, one 'train/<index>' per line"),
]


@pipeline_app.command("run-local")
def run_local(
    params: Params_ = Path("params.yaml"),
    root: Annotated[Path, typer.Option(help="directory for the run's outputs")] = Path(
        "local_outputs"
    ),
    metrics: Annotated[
        Path | None, typer.Option(help="write every task's metrics as JSON here")
    ] = None,
    pipeline: PipelineName = "train",
    registry: Annotated[
        str | None,
        typer.Option(help="retrain/forget: the registry to use (default ./registry)"),
    ] = None,
    forget: ForgetFile = None,
) -> None:
    """Run the train, retrain or forget DAG offline with kfp.local.SubprocessRunner."""
    from selfsup.config import RegistryParams
    from selfsup.pipeline.local import run_local as run
    from selfsup.store import atomic_write_json
    from selfsup.unlearn.ids import request_ids

    config: Params = guard(lambda: load_params(params))
    gate = RegistryParams(uri=registry) if registry else None
    ids = guard(lambda: request_ids(forget)) if forget is not None else None
    result = guard(lambda: run(config, root, pipeline, gate, ids))
    if metrics is not None:
        atomic_write_json(metrics, result.metrics)
    typer.echo(f"local run finished in {result.seconds:.1f} s: {result.run_dir}")
    typer.echo(json.dumps(result.metrics["evaluate"].get("trained", {}), sort_keys=True))
    for task in ("register", "forget-register"):
        if task in result.metrics:
            decision = result.metrics[task]
            typer.echo(f"{task}: {decision['action']} {decision['model']} ({decision['reason']})")


def _upload_target(
    pipeline: str, config: Params, forget: Path | None = None
) -> tuple[str, dict[str, Any]]:
    """The KFP pipeline name and run arguments of ``pipeline`` for ``config`` (``forget``: the
    deletion request's id file, required by and only by the forget pipeline)."""
    from selfsup.pipeline import forget as forget_pipeline
    from selfsup.pipeline import retrain, train

    if (pipeline == "forget") != (forget is not None):
        typer.echo("error: --forget FILE goes with --pipeline forget, and only with it", err=True)
        raise typer.Exit(code=2)
    if pipeline == "train":
        return train.PIPELINE_NAME, train.pipeline_arguments(config)
    if pipeline == "retrain":
        return retrain.PIPELINE_NAME, retrain.pipeline_arguments(config)
    if pipeline == "forget" and forget is not None:
        from selfsup.unlearn.ids import request_ids

        ids = guard(lambda: request_ids(forget))
        return forget_pipeline.PIPELINE_NAME, forget_pipeline.pipeline_arguments(config, ids)
    typer.echo(f"error: unknown pipeline {pipeline!r}; choose train, retrain or forget", err=True)
    raise typer.Exit(code=2)


def _package(
    package: Path | None,
    tmp: Path,
    image: str | None,
    gpu_image: str | None,
    gpus: int,
    pipeline: str = "train",
) -> Path:
    if package is not None:
        if not package.is_file():
            raise typer.BadParameter(f"{package} does not exist", param_hint="--package")
        return package
    from selfsup.pipeline.compile import compile_pipeline

    written: Path = guard(
        lambda: compile_pipeline(
            pipeline, tmp / f"{pipeline}.yaml", _options(image, gpu_image, gpus)
        )
    )
    return written


@contextlib.contextmanager
def _upload_job(
    pipeline: str,
    params: Path,
    package: Path | None,
    image: str | None,
    gpu_image: str | None,
    gpus: int,
    forget: Path | None = None,
) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """What submit and schedule both upload: (the compiled package, the KFP pipeline name, the
    run arguments from ``params``), valid inside the block."""
    config: Params = guard(lambda: load_params(params))
    pipeline_name, arguments = _upload_target(pipeline, config, forget)
    with tempfile.TemporaryDirectory() as tmp:
        yield (
            _package(package, Path(tmp), image, gpu_image, gpus, pipeline),
            pipeline_name,
            arguments,
        )


def _version(version: str | None) -> str:
    return version or f"{__version__}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


@pipeline_app.command()
def submit(
    host: Host,
    params: Params_ = Path("params.yaml"),
    experiment: Experiment = "selfsup",
    namespace: Namespace = None,
    run_name: Annotated[
        str | None, typer.Option(help="run name (default: <pipeline>-<version>)")
    ] = None,
    package: Package = None,
    version: Version = None,
    image: Image = None,
    gpu_image: GpuImage = None,
    gpus: Gpus = 1,
    pipeline: PipelineName = "train",
    forget: ForgetFile = None,
) -> None:
    """Upload a pipeline (train; retrain with the promotion gate; forget with a deletion
    request) as a new version and start a run with params.yaml's values."""
    from selfsup.pipeline import client

    name = _version(version)
    target = client.Target(host=host, experiment=experiment, namespace=namespace)
    with _upload_job(pipeline, params, package, image, gpu_image, gpus, forget) as job:
        path, pipeline_name, arguments = job
        uploaded, run_id = guard(
            lambda: client.submit(
                target, path, pipeline_name, name, run_name or f"{pipeline}-{name}", arguments
            )
        )
    typer.echo(
        f"pipeline {uploaded.pipeline_id} version {uploaded.version_id} ({name}): run {run_id}"
    )


@pipeline_app.command()
def schedule(
    host: Host,
    cron: Annotated[str, typer.Option(help="KFP cron, 6 fields, seconds first: '0 0 3 * * *'")],
    params: Params_ = Path("params.yaml"),
    experiment: Experiment = "selfsup",
    namespace: Namespace = None,
    name: Annotated[
        str | None, typer.Option(help="recurring run name (default: selfsup-<pipeline>-scheduled)")
    ] = None,
    package: Package = None,
    version: Version = None,
    image: Image = None,
    gpu_image: GpuImage = None,
    gpus: Gpus = 1,
    pipeline: PipelineName = "retrain",
) -> None:
    """Upload a pipeline as a new version and run it on a cron schedule (default: retrain,
    which promotes the new model only when the gate says it is better)."""
    from selfsup.pipeline import client
    from selfsup.pipeline.cron import validate_cron

    guard(lambda: validate_cron(cron))  # before compiling or touching the server
    version_name = _version(version)
    target = client.Target(host=host, experiment=experiment, namespace=namespace)
    with _upload_job(pipeline, params, package, image, gpu_image, gpus) as job:
        path, pipeline_name, arguments = job
        uploaded, recurring_id = guard(
            lambda: client.schedule(
                target,
                path,
                pipeline_name,
                version_name,
                name or f"selfsup-{pipeline}-scheduled",
                cron,
                arguments,
            )
        )
    typer.echo(
        f"pipeline {uploaded.pipeline_id} version {uploaded.version_id} "
        f"({version_name}): recurring run {recurring_id} on {cron!r}"
    )


ParamsJson = Annotated[str, typer.Option(help="the stage's params section as JSON")]
DataHash = Annotated[str, typer.Option(help="content hash of the dataset (the cache key)")]
DatasetPath = Annotated[Path, typer.Option(help="dataset directory")]
MetricsPath = Annotated[Path, typer.Option(help="Metrics artifact file to write")]
ExecutorInput = Annotated[
    str | None, typer.Option(help="KFP's executor input JSON ('{{$}}'), for UI metadata")
]


def _section(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        typer.echo(f"error: --params-json is not JSON: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if not isinstance(value, dict):
        typer.echo("error: --params-json must be a JSON object (one params section)", err=True)
        raise typer.Exit(code=2)
    return value


def _finish(
    metrics_path: Path,
    values: dict[str, Any],
    executor_input: str | None,
    metadata: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Write the Metrics artifact file and, under KFP, the executor output the UI reads
    (``metadata``: other output artifacts' metadata by name)."""
    from selfsup.pipeline.executor_output import parse_executor_input, write_executor_output
    from selfsup.pipeline.tasks import flat_metrics
    from selfsup.store import atomic_write_json

    atomic_write_json(metrics_path, values)
    if executor_input is not None:
        parsed = guard(lambda: parse_executor_input(executor_input))
        write_executor_output(parsed, {**(metadata or {}), "metrics": flat_metrics(values)})


@task_app.command("data")
def task_data(
    params_json: ParamsJson,
    dataset: DatasetPath,
    metrics: MetricsPath,
    content_hash: Annotated[Path, typer.Option(help="file to write the content hash to")],
    executor_input: ExecutorInput = None,
) -> None:
    """Prepare the dataset; write metrics and the dataset's content hash."""
    from selfsup.pipeline import tasks
    from selfsup.store import atomic_write_bytes

    values, digest = guard(lambda: tasks.run_data(_section(params_json), dataset))
    atomic_write_bytes(content_hash, digest.encode())
    _finish(metrics, values, executor_input)


@task_app.command("pretrain")
def task_pretrain(
    params_json: ParamsJson,
    data_hash: DataHash,
    dataset: DatasetPath,
    model: Annotated[Path, typer.Option(help="model directory to write")],
    metrics: MetricsPath,
    mined: Annotated[
        Path | None, typer.Option(help="mined dataset (read by the methods on mined pairs)")
    ] = None,
    executor_input: ExecutorInput = None,
) -> None:
    """Pretrain the encoder; write the model directory and metrics."""
    from selfsup.pipeline import tasks

    section = _section(params_json)
    guard(lambda: tasks.check_data_hash(dataset, data_hash))
    values = guard(lambda: tasks.run_pretrain(section, dataset, model, mined))
    _finish(metrics, values, executor_input)


@task_app.command("evaluate")
def task_evaluate(
    params_json: ParamsJson,
    data_hash: DataHash,
    dataset: DatasetPath,
    model: Annotated[Path, typer.Option(help="model directory (from pretrain)")],
    metrics: MetricsPath,
    report: Annotated[Path, typer.Option(help="HTML artifact file to write")],
    evaluation: Annotated[Path, typer.Option(help="evaluation directory to write")],
    confusion: Annotated[
        Path | None, typer.Option(help="ClassificationMetrics artifact file to write")
    ] = None,
    executor_input: ExecutorInput = None,
) -> None:
    """Evaluate the encoder; write metrics, the confusion matrix, the HTML report and the
    evaluation directory."""
    from selfsup.pipeline import tasks
    from selfsup.store import atomic_write_json

    section = _section(params_json)
    guard(lambda: tasks.check_data_hash(dataset, data_hash))
    values = guard(lambda: tasks.run_evaluate(section, dataset, model, evaluation, report))
    matrix = tasks.confusion_metadata(evaluation)
    if confusion is not None:
        atomic_write_json(confusion, matrix)
    _finish(metrics, values, executor_input, {"confusion": matrix})


@task_app.command("register")
def task_register(
    params_json: ParamsJson,
    model: Annotated[Path, typer.Option(help="model directory (from pretrain)")],
    evaluation: Annotated[Path, typer.Option(help="evaluation directory (from evaluate)")],
    metrics: MetricsPath,
    executor_input: ExecutorInput = None,
) -> None:
    """Register the model and run the promotion gate; write the decision as metrics."""
    from selfsup.pipeline import tasks

    section = _section(params_json)
    values = guard(lambda: tasks.run_register(section, model, evaluation))
    _finish(metrics, values, executor_input)


@task_app.command("mine-plan")
def task_mine_plan(
    params_json: ParamsJson,
    shards: Annotated[Path, typer.Option(help="file to write the shard indices to (JSON list)")],
) -> None:
    """List the shard indices of the mine section (what the ParallelFor fans out over)."""
    from selfsup.pipeline import tasks
    from selfsup.store import atomic_write_json

    indices = guard(lambda: tasks.mine_shard_indices(_section(params_json)))
    atomic_write_json(shards, indices)


@task_app.command("mine-shard")
def task_mine_shard(
    params_json: ParamsJson,
    index: Annotated[int, typer.Option(help="shard index, 0 … mine.num_shards − 1")],
    shard: Annotated[Path, typer.Option(help="shard directory to write")],
    metrics: MetricsPath,
    executor_input: ExecutorInput = None,
) -> None:
    """Mine one shard of the videos into a shard directory."""
    from selfsup.pipeline import tasks

    section = _section(params_json)
    values = guard(lambda: tasks.run_mine_shard(section, index, shard))
    _finish(metrics, values, executor_input)


@task_app.command("mine-merge")
def task_mine_merge(
    params_json: ParamsJson,
    mined: Annotated[Path, typer.Option(help="mined dataset directory to write")],
    metrics: MetricsPath,
    executor_input: Annotated[
        str, typer.Option(help="KFP's executor input JSON ('{{$}}'): lists the shard artifacts")
    ],
    shards_input: Annotated[
        str, typer.Option(help="name of the list input holding the shard directories")
    ] = "shards",
) -> None:
    """Merge the shard directories (a collected ParallelFor output) into the mined dataset."""
    from selfsup.pipeline import tasks
    from selfsup.pipeline.executor_output import input_artifact_paths, parse_executor_input

    section = _section(params_json)
    parsed = guard(lambda: parse_executor_input(executor_input))
    shard_dirs = guard(lambda: input_artifact_paths(parsed, shards_input))
    values = guard(lambda: tasks.run_mine_merge(section, shard_dirs, mined))
    _finish(metrics, values, executor_input)


@task_app.command("pull")
def task_pull(
    params_json: ParamsJson,
    ref: Annotated[str, typer.Option(help="model id or alias (champion, challenger)")],
    model: Annotated[Path, typer.Option(help="model directory to write")],
    metrics: MetricsPath,
    executor_input: ExecutorInput = None,
) -> None:
    """Download a model from the registry."""
    from selfsup.pipeline import tasks

    section = _section(params_json)
    values = guard(lambda: tasks.run_registry_pull(section, ref, model))
    _finish(metrics, values, executor_input)


@task_app.command("unlearn")
def task_unlearn(
    params_json: ParamsJson,
    forget_ids: Annotated[str, typer.Option(help="the request: a JSON list of 'train/<index>'")],
    data_hash: DataHash,
    dataset: DatasetPath,
    model: Annotated[Path, typer.Option(help="the model directory to unlearn from")],
    unlearned: Annotated[Path, typer.Option(help="unlearned encoder (model directory) to write")],
    request: Annotated[Path, typer.Option(help="directory for the whole unlearn output")],
    metrics: MetricsPath,
    executor_input: ExecutorInput = None,
) -> None:
    """Serve a deletion request: LAF + audit; write the unlearned encoder and the record."""
    from selfsup.pipeline import tasks

    section = _section(params_json)
    try:
        ids = json.loads(forget_ids)
    except json.JSONDecodeError as exc:
        typer.echo(f"error: --forget-ids is not a JSON list: {exc}", err=True)
        raise typer.Exit(code=2) from None
    guard(lambda: tasks.check_data_hash(dataset, data_hash))
    values = guard(lambda: tasks.run_unlearn_task(section, ids, dataset, model, request, unlearned))
    _finish(metrics, values, executor_input)


@task_app.command("forget-register")
def task_forget_register(
    params_json: ParamsJson,
    request: Annotated[Path, typer.Option(help="unlearn output directory (from unlearn)")],
    evaluation: Annotated[Path, typer.Option(help="evaluation of the unlearned encoder")],
    metrics: MetricsPath,
    executor_input: ExecutorInput = None,
) -> None:
    """Register the unlearned model; promote it only if the deletion audit passes."""
    from selfsup.pipeline import tasks

    section = _section(params_json)
    values = guard(lambda: tasks.run_register_unlearned(section, request, evaluation))
    _finish(metrics, values, executor_input)


def _on_model(
    run: Any,
    params_json: str,
    data_hash: str,
    dataset: Path,
    model: Path,
    out: Path,
    metrics: Path,
    executor_input: str | None,
) -> None:
    """A task reading the dataset and a model, writing ``out``: ``run(section, dataset, model,
    out)`` after the cache-key check (distill, compress)."""
    from selfsup.pipeline import tasks

    section = _section(params_json)
    guard(lambda: tasks.check_data_hash(dataset, data_hash))
    values = guard(lambda: run(section, dataset, model, out))
    _finish(metrics, values, executor_input)


@task_app.command("distill")
def task_distill(
    params_json: ParamsJson,
    data_hash: DataHash,
    dataset: DatasetPath,
    model: Annotated[Path, typer.Option(help="teacher model directory (from pretrain)")],
    distilled: Annotated[Path, typer.Option(help="distilled dataset directory to write")],
    metrics: MetricsPath,
    executor_input: ExecutorInput = None,
) -> None:
    """Distill the dataset with the encoder as teacher (KRR-ST)."""
    from selfsup.pipeline.tasks import run_distill

    _on_model(
        run_distill, params_json, data_hash, dataset, model, distilled, metrics, executor_input
    )


@task_app.command("compress")
def task_compress(
    params_json: ParamsJson,
    data_hash: DataHash,
    dataset: DatasetPath,
    model: Annotated[Path, typer.Option(help="model directory to compress (from pretrain)")],
    compressed: Annotated[Path, typer.Option(help="deployable model directory to write")],
    metrics: MetricsPath,
    executor_input: ExecutorInput = None,
) -> None:
    """Compress the encoder (pruning / int8) and export it."""
    from selfsup.pipeline.tasks import run_compress

    _on_model(
        run_compress, params_json, data_hash, dataset, model, compressed, metrics, executor_input
    )
