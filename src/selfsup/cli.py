"""The ``selfsup`` command: a thin adapter from the command line to the stage functions.

``dvc.yaml``, the KFP components and people all call these commands; the work happens in the
library. A :class:`~selfsup.errors.SelfsupError` (bad input, paths, params) prints one clear line
and exits with code 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from selfsup.cli_errors import guard
from selfsup.config import (
    Params,
    load_params,
    profile_params,
    render_params,
    validate_params,
)
from selfsup.pipeline.cli import pipeline_app
from selfsup.store import atomic_write_bytes, atomic_write_json

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Self-supervised representation learning as reproducible stages.",
)
data_app = typer.Typer(no_args_is_help=True, help="Prepare datasets.")
params_app = typer.Typer(no_args_is_help=True, help="Render and check parameter files.")
app.add_typer(data_app, name="data")
app.add_typer(params_app, name="params")
app.add_typer(pipeline_app, name="pipeline")

ParamsOption = Annotated[Path, typer.Option("--params", help="params YAML (see params.yaml)")]
MetricsOption = Annotated[
    Path | None, typer.Option("--metrics", help="also write the stage's metrics JSON here")
]


def _params(path: Path) -> Params:
    return guard(lambda: load_params(path))


def _write_metrics(path: Path | None, metrics: dict[str, Any]) -> None:
    if path is not None:
        atomic_write_json(path, metrics)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


@data_app.command("prepare")
def data_prepare(
    out: Annotated[Path, typer.Option(help="dataset directory to write")],
    params: ParamsOption = Path("params.yaml"),
    metrics: MetricsOption = None,
) -> None:
    """Build a dataset directory (uint8 shards + manifest) from the configured source."""
    from selfsup.data import prepare

    config = _params(params)
    _write_metrics(metrics, guard(lambda: prepare.run(config.data, out)))


@app.command()
def pretrain(
    data: Annotated[Path, typer.Option(help="prepared dataset directory")],
    out: Annotated[Path, typer.Option(help="model directory to write")],
    params: ParamsOption = Path("params.yaml"),
    checkpoints: Annotated[
        Path | None, typer.Option(help="checkpoint directory (default: <out>.ckpt)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint")] = False,
    method: Annotated[
        str | None, typer.Option(help="override pretrain.method: simclr | triplet | simclr+triplet")
    ] = None,
    pairs: Annotated[
        Path | None, typer.Option(help="mined dataset (selfsup mine) for simclr+triplet")
    ] = None,
    metrics: MetricsOption = None,
) -> None:
    """Pretraining: SimCLR, triplet on mined pairs (--data: a mined set), or both."""
    from selfsup.train import pretrain as stage

    config = _params(params)
    train = config.pretrain
    if method is not None:
        updated = {**config.model_dump(), "pretrain": {**train.model_dump(), "method": method}}
        train = guard(lambda: validate_params(updated, "--method")).pretrain
    result = guard(lambda: stage.run(data, train, out, checkpoints, resume, pairs))
    _write_metrics(metrics, result)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="model directory (from pretrain)")],
    data: Annotated[Path, typer.Option(help="prepared dataset directory")],
    out: Annotated[Path, typer.Option(help="report directory to write")],
    params: ParamsOption = Path("params.yaml"),
    metrics: MetricsOption = None,
) -> None:
    """kNN, linear probe, RankMe and ECE of the encoder and of a random-init floor."""
    from selfsup.evaluate import stage

    config = _params(params)
    _write_metrics(metrics, guard(lambda: stage.run(model, data, config.evaluate, out)))


@app.command()
def mine(
    out: Annotated[Path, typer.Option(help="mined dataset directory (or shard directory)")],
    params: ParamsOption = Path("params.yaml"),
    videos: Annotated[
        Path | None, typer.Option(help="video folder (default: mine.video_dir, $SELFSUP_VIDEO_DIR)")
    ] = None,
    encoder: Annotated[
        Path | None,
        typer.Option(help="model directory whose features cluster patches (default: HOG)"),
    ] = None,
    shard: Annotated[
        int | None, typer.Option(help="mine only shard N of mine.num_shards into a shard directory")
    ] = None,
    merge: Annotated[
        list[Path] | None, typer.Option(help="merge these shard directories instead of mining")
    ] = None,
    metrics: MetricsOption = None,
) -> None:
    """Mine an object graph with transitive positive pairs from video (Wang et al. 2017)."""
    from selfsup.mining import stage

    config = _params(params).mine
    if shard is not None:
        result = guard(lambda: stage.run_shard(config, out, shard, videos))
    elif merge:
        result = guard(lambda: stage.run_merge(config, merge, out, encoder))
    else:
        result = guard(lambda: stage.run(config, out, videos, encoder))
    _write_metrics(metrics, result)


@app.command()
def summary(
    metrics: Annotated[Path, typer.Argument(help="metrics JSON written by `selfsup evaluate`")],
) -> None:
    """Print trained vs random-init metrics of an evaluation as a small table."""
    import json

    from selfsup.evaluate.summary import summary_table

    if not metrics.is_file():
        typer.echo(f"error: {metrics} does not exist; run `selfsup evaluate` first", err=True)
        raise typer.Exit(code=2)
    typer.echo(summary_table(json.loads(metrics.read_text())))


@params_app.command("write")
def params_write(
    profile: Annotated[str, typer.Option(help="default | gpu | tiny")] = "default",
    out: Annotated[Path, typer.Option(help="file to write")] = Path("params.yaml"),
) -> None:
    """Write a profile's complete parameters as YAML (e.g. over params.yaml)."""
    text = render_params(guard(lambda: profile_params(profile)))
    atomic_write_bytes(out, text.encode())
    typer.echo(f"wrote profile {profile!r} to {out}")


@params_app.command("check")
def params_check(path: Annotated[Path, typer.Argument()] = Path("params.yaml")) -> None:
    """Validate a params file (unknown keys and out-of-range values are errors)."""
    _params(path)
    typer.echo(f"{path}: ok")
