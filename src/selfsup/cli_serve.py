"""``selfsup embed``, ``selfsup model-card`` and ``selfsup serve``: using a trained encoder
(thin adapters over :mod:`selfsup.serve`; registered on the app in :mod:`selfsup.cli`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from selfsup.cli_errors import guard
from selfsup.config import DataParams

ParamsFile = Annotated[
    Path | None,
    typer.Option(
        "--params",
        help="params YAML whose data section sets image size and limits (default: its defaults)",
    ),
]


def _data_params(path: Path | None, overrides: list[str] | None) -> DataParams:
    from selfsup.config import load_params

    if path is None and not overrides:
        return DataParams()
    return guard(lambda: load_params(path or Path("params.yaml"), overrides or ())).data


def embed(
    model: Annotated[Path, typer.Option(help="model directory (from pretrain)")],
    images: Annotated[
        str, typer.Option(help="image folder, or s3://bucket/prefix/NAME (selfsup data upload)")
    ],
    out: Annotated[Path, typer.Option(help="embeddings F.npy (F.ids.txt and F.json beside it)")],
    params: ParamsFile = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="SECTION.KEY=VALUE", help="override a params value"),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="images per forward pass")] = 256,
) -> None:
    """Embed every image of a folder with the encoder; rows in the order of the ids file."""
    from selfsup.serve import embed as stage

    data = _data_params(params, overrides)
    meta = guard(lambda: stage.run(model, images, params=data, out=out, batch_size=batch_size))
    typer.echo(
        f"embedded {meta['count']} images ({meta['dim']}-d) into {out}, ids in {meta['ids']}"
    )


def model_card(
    evaluation: Annotated[Path, typer.Option(help="evaluate's output directory")],
    out: Annotated[Path, typer.Option(help="Markdown file to write")],
    model: Annotated[Path | None, typer.Option(help="model directory (from pretrain)")] = None,
    compressed: Annotated[Path | None, typer.Option(help="compress's output directory")] = None,
    unlearned: Annotated[
        list[Path] | None, typer.Option(help="unlearn output directories (repeatable)")
    ] = None,
) -> None:
    """Write the model card: data and its hash, method, metrics against the floors,
    calibration, compression, deletion requests served, limitations."""
    from selfsup.serve.card import card_from_dirs
    from selfsup.store import atomic_write_bytes

    text = guard(lambda: card_from_dirs(evaluation, model, compressed, unlearned or []))
    atomic_write_bytes(out, text.encode())
    typer.echo(f"model card written to {out}")


def serve(
    model: Annotated[Path, typer.Option(help="model directory (from pretrain or the registry)")],
    store: Annotated[
        str, typer.Option(help="where the ONNX model goes: s3://bucket/prefix or a folder")
    ] = "s3://selfsup/serving",
    name: Annotated[str, typer.Option(help="the InferenceService's name")] = "selfsup-encoder",
    namespace: Annotated[str, typer.Option(help="its namespace")] = "selfsup",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="export and upload, print the manifest, apply nothing")
    ] = False,
) -> None:
    """Export the encoder to ONNX (checked with onnxruntime), upload it, apply its KServe
    InferenceService (or, with --dry-run, print it)."""
    from selfsup.serve.kserve import serve_model

    result = guard(lambda: serve_model(model, store, name, namespace, apply_it=not dry_run))
    if dry_run:
        typer.echo(json.dumps(result["manifest"], indent=2, sort_keys=True))
    else:
        where = f"{namespace}/{name}: {result['storage_uri']}"
        typer.echo(f"{result['action']} InferenceService {where}")
