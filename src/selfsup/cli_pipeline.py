"""``selfsup pipeline …``: compile, run offline, submit, schedule.

Kept apart from the stage commands so that importing the CLI does not import ``kfp``: every
command imports what it needs when it runs.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from selfsup import __version__
from selfsup.cli_errors import guard
from selfsup.config import Params, load_params
from selfsup.pipeline.images import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE

pipeline_app = typer.Typer(
    no_args_is_help=True, help="Kubeflow Pipelines: compile, run-local, submit, schedule."
)

# The pipelines' names (dags.PIPELINES, which imports kfp: a test keeps the two equal), so --help
# lists them and a wrong name is refused before anything is imported.
Pipelines = Literal["train", "retrain", "retrain-distilled", "forget"]
_IMAGE_HELP = f"project image (CPU); default {DEFAULT_IMAGE}"
_GPU_IMAGE_HELP = f"project image for GPU tasks; default {DEFAULT_GPU_IMAGE}"
_GPUS_HELP = "GPUs per GPU task (pretrain runs torchrun over N > 1); 0: CPU nodes"
_GPU_TYPE_HELP = (
    "GPU model to schedule on, as nodes are labelled nvidia.com/gpu.product "
    "(e.g. NVIDIA-H100-80GB-HBM3); default: any GPU node"
)
_HOST_HELP = "KFP API endpoint, e.g. http://localhost:8080"
_NAMESPACE_HELP = "Kubeflow profile namespace (multi-user)"
_PARAMS_HELP = "params YAML: the run's arguments"
Image = Annotated[str | None, typer.Option(help=_IMAGE_HELP)]
GpuImage = Annotated[str | None, typer.Option(help=_GPU_IMAGE_HELP)]
Gpus = Annotated[int, typer.Option(min=0, help=_GPUS_HELP)]
GpuType = Annotated[str | None, typer.Option(help=_GPU_TYPE_HELP)]
Params_ = Annotated[Path, typer.Option("--params", help=_PARAMS_HELP)]
Package = Annotated[
    Path | None, typer.Option(help="compiled pipeline YAML to upload (default: compile now)")
]
Version = Annotated[str | None, typer.Option(help="pipeline version name (default: timestamped)")]


def _options(image: str | None, gpu_image: str | None, gpus: int, gpu_type: str | None) -> Any:
    from selfsup.pipeline.dags import ClusterOptions
    from selfsup.pipeline.gpu import GpuPool

    if gpu_type is not None and gpus == 0:
        raise typer.BadParameter("--gpu-type needs --gpus of 1 or more", param_hint="--gpu-type")
    defaults = ClusterOptions()
    return ClusterOptions(
        image=image or defaults.image,
        gpu_image=gpu_image or defaults.gpu_image,
        gpu=GpuPool(count=gpus, product=gpu_type) if gpus > 0 else None,
    )


@pipeline_app.command("compile")
def compile_(
    pipeline: Annotated[Pipelines, typer.Option(help="pipeline to compile")] = "train",
    out: Annotated[
        Path | None, typer.Option(help="YAML file to write (default pipelines/<pipeline>.yaml)")
    ] = None,
    image: Image = None,
    gpu_image: GpuImage = None,
    gpus: Gpus = 1,
    gpu_type: GpuType = None,
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

    options = _options(image, gpu_image, gpus, gpu_type)
    target = out or Path("pipelines") / f"{pipeline}.yaml"
    guard(lambda: compiling.compile_pipeline(pipeline, target, options))
    typer.echo(f"wrote {target}")
    if goldens is not None:
        for path in guard(lambda: compiling.write_goldens(goldens)):
            typer.echo(f"wrote {path}")


PipelineName = Annotated[Pipelines, typer.Option("--pipeline", help="pipeline to run")]
ForgetFile = Annotated[
    Path | None,
    typer.Option(
        "--forget",
        help="forget pipeline: the request, one id a line ('train/<index>', file name, user id)",
    ),
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
    runner: Annotated[
        Literal["subprocess", "docker"],
        typer.Option(
            help="subprocess: this Python; docker: each task in its image, as the cluster's "
            "restricted pods run it (needs a Docker daemon and `make images`)"
        ),
    ] = "subprocess",
) -> None:
    """Run the train, retrain or forget DAG offline with KFP's local runner."""
    from selfsup.config import RegistryParams
    from selfsup.pipeline.local import run_local as run
    from selfsup.store import atomic_write_json
    from selfsup.unlearn.ids import request_ids

    config: Params = guard(lambda: load_params(params))
    gate = RegistryParams(uri=registry) if registry else None
    ids = guard(lambda: request_ids(forget)) if forget is not None else None
    result = guard(lambda: run(config, root, pipeline, gate, ids, runner))
    if metrics is not None:
        atomic_write_json(metrics, result.metrics)
    typer.echo(f"local run finished in {result.seconds:.1f} s: {result.run_dir}")
    typer.echo(json.dumps(result.metrics["evaluate"].get("trained", {}), sort_keys=True))
    if "register" in result.metrics:
        decision = result.metrics["register"]
        typer.echo(f"register: {decision['action']} {decision['model']} ({decision['reason']})")


def _upload_target(
    pipeline: str, config: Params, forget: Path | None = None
) -> tuple[str, dict[str, Any]]:
    """The KFP pipeline name and run arguments of ``pipeline`` for ``config`` (``forget``: the
    deletion request's id file, required by and only by the forget pipeline)."""
    from selfsup.pipeline import dags
    from selfsup.unlearn.ids import request_ids

    spec = guard(lambda: dags.pipeline(pipeline))
    if spec.request != (forget is not None):
        typer.echo("error: --forget FILE goes with --pipeline forget, and only with it", err=True)
        raise typer.Exit(code=2)
    ids = guard(lambda: request_ids(forget)) if forget is not None else None
    return spec.name, dags.pipeline_arguments(pipeline, config, forget_ids=ids)


def _package(package: Path | None, tmp: Path, pipeline: str, options: Any) -> Path:
    if package is not None:
        if not package.is_file():
            raise typer.BadParameter(f"{package} does not exist", param_hint="--package")
        return package
    from selfsup.pipeline.compile import compile_pipeline

    written: Path = guard(lambda: compile_pipeline(pipeline, tmp / f"{pipeline}.yaml", options))
    return written


# submit/schedule read each setting from a flag or, by name, from its environment variable (the
# flag wins): the retrain CronJob sets them from its ConfigMap, so no list position matters.
def upload_and_start(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(envvar="SELFSUP_KFP_HOST", help=_HOST_HELP)],
    params: Annotated[
        Path, typer.Option("--params", envvar="SELFSUP_PARAMS", help=_PARAMS_HELP)
    ] = Path("params.yaml"),
    pipeline: Annotated[
        Pipelines | None,
        typer.Option(
            "--pipeline",
            envvar="SELFSUP_KFP_PIPELINE",
            help="submit: default train; schedule: default retrain",
        ),
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option(help="schedule: KFP cron, 6 fields, seconds first, e.g. '0 0 3 * * *'"),
    ] = None,
    forget: ForgetFile = None,
    experiment: Annotated[
        str, typer.Option(envvar="SELFSUP_KFP_EXPERIMENT", help="KFP experiment to run in")
    ] = "selfsup",
    namespace: Annotated[
        str | None, typer.Option(envvar="SELFSUP_KFP_NAMESPACE", help=_NAMESPACE_HELP)
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            "--run-name",
            help="run name (submit: <pipeline>-<version>; schedule: selfsup-<pipeline>-scheduled)",
        ),
    ] = None,
    package: Package = None,
    version: Version = None,
    image: Annotated[str | None, typer.Option(envvar="SELFSUP_IMAGE", help=_IMAGE_HELP)] = None,
    gpu_image: Annotated[
        str | None, typer.Option(envvar="SELFSUP_GPU_IMAGE", help=_GPU_IMAGE_HELP)
    ] = None,
    gpus: Annotated[int, typer.Option(min=0, envvar="SELFSUP_GPUS", help=_GPUS_HELP)] = 1,
    gpu_type: Annotated[
        str | None, typer.Option(envvar="SELFSUP_GPU_TYPE", help=_GPU_TYPE_HELP)
    ] = None,
) -> None:
    """submit: upload a pipeline as a new version and start one run with params.yaml's values.
    schedule: the same, as a recurring run on --cron (default retrain, which promotes the new
    model only when the gate says it is better)."""
    from selfsup.submit import client
    from selfsup.submit.cron import validate_cron

    scheduled = ctx.info_name == "schedule"
    if scheduled != (cron is not None):
        typer.echo("error: --cron goes with `schedule`, and only with it", err=True)
        raise typer.Exit(code=2)
    if cron is not None:
        guard(lambda: validate_cron(cron))  # before compiling or touching the server
    chosen = pipeline or ("retrain" if scheduled else "train")
    config: Params = guard(lambda: load_params(params))
    pipeline_name, arguments = _upload_target(chosen, config, forget)
    label = version or f"{__version__}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    run_name = name or (f"selfsup-{chosen}-scheduled" if scheduled else f"{chosen}-{label}")
    target = client.Target(host=host, experiment=experiment, namespace=namespace)
    with tempfile.TemporaryDirectory() as tmp:
        path = _package(package, Path(tmp), chosen, _options(image, gpu_image, gpus, gpu_type))
        uploaded, started = guard(
            lambda: client.start(target, path, pipeline_name, label, run_name, arguments, cron)
        )
    what = f"recurring run {started} on {cron!r}" if scheduled else f"run {started}"
    typer.echo(f"pipeline {uploaded.pipeline_id} version {uploaded.version_id} ({label}): {what}")


pipeline_app.command("submit")(upload_and_start)
pipeline_app.command("schedule")(upload_and_start)
