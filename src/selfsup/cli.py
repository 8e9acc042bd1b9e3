"""The ``selfsup`` command: a thin adapter from the command line to the stage functions.

``dvc.yaml``, the KFP components and people all call these commands; the work happens in the
library. A :class:`~selfsup.errors.SelfsupError` (bad input, paths, params) prints one clear line
and exits with code 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from selfsup import cli_serve
from selfsup.cli_errors import guard
from selfsup.cli_pipeline import pipeline_app
from selfsup.config import (
    CompressParams,
    GateParams,
    Params,
    PretrainParams,
    RegistryParams,
    load_params,
    profile_params,
    render_params,
    validate_params,
)
from selfsup.observe.metrics import StageRun, stage_metrics
from selfsup.store import atomic_write_bytes, atomic_write_json

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Self-supervised representation learning as reproducible stages.",
)
data_app = typer.Typer(no_args_is_help=True, help="Prepare datasets.")
params_app = typer.Typer(no_args_is_help=True, help="Render and check parameter files.")
store_app = typer.Typer(no_args_is_help=True, help="Push and pull artifacts (local or S3).")
registry_app = typer.Typer(no_args_is_help=True, help="Model registry and promotion gate.")
app.add_typer(data_app, name="data")
app.add_typer(params_app, name="params")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(store_app, name="store")
app.add_typer(registry_app, name="registry")
app.command("embed")(cli_serve.embed)
app.command("model-card")(cli_serve.model_card)
app.command("serve")(cli_serve.serve)

ParamsOption = Annotated[Path, typer.Option("--params", help="params YAML (see params.yaml)")]
MetricsOption = Annotated[
    Path | None, typer.Option("--metrics", help="also write the stage's metrics JSON here")
]


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="SECTION.KEY=VALUE",
        help="override one params value (YAML value), e.g. --set pretrain.epochs=2; repeatable",
    ),
]


# The ``Literal`` params fields that options override: Typer lists their values in --help and
# refuses any other before anything is imported.
PretrainMethod = PretrainParams.model_fields["method"].annotation
CompressMethod = CompressParams.model_fields["method"].annotation


def _params(path: Path, overrides: list[str] | None = None) -> Params:
    """The validated params. Each stage command calls this before it imports its stage (torch,
    kornia: seconds), so a bad value is refused at once."""
    return guard(lambda: load_params(path, overrides or ()))


def _write_metrics(path: Path | None, metrics: dict[str, Any]) -> None:
    if path is not None:
        atomic_write_json(path, metrics)


@contextmanager
def _observed(stage: str) -> Iterator[StageRun]:
    """Push the stage's Prometheus metrics when it ends (see selfsup.observe.metrics)."""
    with stage_metrics(stage) as run:
        yield run


def _print_version(value: bool) -> None:
    if value:
        from selfsup import __version__

        typer.echo(f"selfsup {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="debug logging (default: info)")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version, exit"
        ),
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


@data_app.command("prepare")
def data_prepare(
    out: Annotated[Path, typer.Option(help="dataset directory to write")],
    params: ParamsOption = Path("params.yaml"),
    overrides: SetOption = None,
    metrics: MetricsOption = None,
) -> None:
    """Build a dataset directory (uint8 shards + manifest) from the configured source."""
    config = _params(params, overrides)
    from selfsup.data import stage

    with _observed("data") as run:
        result = guard(lambda: stage.run(params=config.data, out=out))
        run.record("data", result)
    _write_metrics(metrics, result)


@data_app.command("import-cifar10")
def data_import_cifar10(
    archive: Annotated[Path, typer.Argument(help="cifar-10-python.tar.gz, as torchvision gets it")],
    out: Annotated[
        Path | None,
        typer.Option(help="directory to write; default $SELFSUP_CACHE_DIR/cifar10-png"),
    ] = None,
    verify_md5: Annotated[
        bool, typer.Option("--verify-md5", help="fail unless the md5 is torchvision's")
    ] = False,
) -> None:
    """Convert CIFAR-10's python tar into a PNG-folder archive + manifest (for data.archive)."""
    from selfsup.data import cifar10_python

    target = out if out is not None else cifar10_python.default_import_dir()
    manifest = guard(lambda: cifar10_python.import_cifar10(archive, target, verify_md5=verify_md5))
    splits, source = manifest["splits"], manifest["source"]
    counts = ", ".join(f"{k} {v}" for k, v in splits.items())
    typer.echo(
        f"imported {sum(splits.values())} images ({counts}"
        f"; {len(manifest['class_names'])} classes) into {target / manifest['archive']}; md5 "
        f"{'matches' if source['md5_official'] else 'differs from'} torchvision's; use it with "
        f"data.archive={target} or SELFSUP_CIFAR10_ARCHIVE={target}"
    )


@data_app.command("import-idx")
def data_import_idx(
    source: Annotated[
        Path,
        typer.Argument(
            help="directory of the four MNIST-format files (train-images-idx3-ubyte.gz …), e.g. "
            "/usr/share/datasets/fashion-mnist from Debian's dataset-fashion-mnist"
        ),
    ],
    out: Annotated[Path, typer.Option(help="image folder to write (for data.folder)")],
    classes: Annotated[
        str,
        typer.Option(help="class names by label: digits, fashion-mnist, or a comma-separated list"),
    ] = "digits",
) -> None:
    """Convert an MNIST-format dataset (MNIST, Fashion-MNIST) into an image folder."""
    from selfsup.data import idx

    manifest = guard(lambda: idx.import_idx(source, out, classes))
    counts = ", ".join(f"{k} {v}" for k, v in manifest["splits"].items())
    typer.echo(
        f"imported {counts} images ({len(manifest['class_names'])} classes) into {out}; use it "
        f"with data.source=folder data.folder={out}"
    )


@data_app.command("upload")
def data_upload(
    source: Annotated[Path, typer.Argument(help="an archive file (.tar.gz) or an image folder")],
    uri: Annotated[
        str, typer.Argument(help="s3://bucket/prefix/NAME, e.g. s3://selfsup/sources/cifar10-jpg")
    ],
) -> None:
    """Seed the store with raw data once: data.archive / data.folder may then be the URI."""
    from selfsup.data.remote import upload_source

    manifest = guard(lambda: upload_source(source, uri))
    typer.echo(f"uploaded {source} as {uri} ({len(manifest['files'])} files, {manifest['layout']})")


@app.command()
def pretrain(
    data: Annotated[Path, typer.Option(help="prepared dataset directory")],
    out: Annotated[Path, typer.Option(help="model directory to write")],
    params: ParamsOption = Path("params.yaml"),
    overrides: SetOption = None,
    checkpoints: Annotated[
        Path | None, typer.Option(help="checkpoint directory (default: <out>.ckpt)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint")] = False,
    checkpoint_mirror: Annotated[
        str | None,
        typer.Option(
            envvar="SELFSUP_CHECKPOINTS",
            help="also keep the checkpoints in this store (s3://bucket/prefix or a folder) "
            "and resume from there",
        ),
    ] = None,
    method: Annotated[
        PretrainMethod | None,  # type: ignore[valid-type]
        typer.Option(help="override pretrain.method"),
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(
            help="mined dataset (selfsup mine): the pairs of triplet, simclr+triplet and"
            " groco+mined; other methods ignore it"
        ),
    ] = None,
    metrics: MetricsOption = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="serve Prometheus /metrics on this port, training"),
    ] = None,
) -> None:
    """Pretraining: SimCLR, triplet on mined pairs (--pairs, or --data: a mined set), both,
    GroCo, G-SimCLR, BYOL, or a distilled set.

    Under torchrun every rank runs this command; only rank 0 serves/pushes metrics and writes.
    """
    from contextlib import nullcontext

    config = _params(params, overrides)
    train = config.pretrain
    if method is not None:
        updated = {**config.model_dump(), "pretrain": {**train.model_dump(), "method": method}}
        train = guard(lambda: validate_params(updated, "--method")).pretrain
    from selfsup.observe.metrics import serve_metrics
    from selfsup.train import stage
    from selfsup.train.distributed import is_main_process

    main = is_main_process()
    scrape = serve_metrics(metrics_port, "pretrain") if metrics_port and main else nullcontext()
    observed = _observed("pretrain") if main else nullcontext(StageRun())
    with scrape, observed as run:
        result = guard(
            lambda: stage.run(
                data,
                pairs,
                params=train,
                out=out,
                checkpoints=checkpoints,
                resume=resume,
                mirror=checkpoint_mirror,
            )
        )
        run.record("pretrain", result)
    if main:
        _write_metrics(metrics, result)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="model directory (from pretrain)")],
    data: Annotated[Path, typer.Option(help="prepared dataset directory")],
    out: Annotated[Path, typer.Option(help="report directory to write")],
    params: ParamsOption = Path("params.yaml"),
    overrides: SetOption = None,
    metrics: MetricsOption = None,
) -> None:
    """kNN, linear probe, RankMe and ECE of the encoder and of a random-init floor."""
    config = _params(params, overrides)
    from selfsup.evaluate import stage

    with _observed("evaluate") as run:
        result = guard(lambda: stage.run(data, model, params=config.evaluate, out=out))
        run.record("evaluate", result)
    _write_metrics(metrics, result)


@app.command()
def mine(
    out: Annotated[Path, typer.Option(help="mined dataset directory (or shard directory)")],
    params: ParamsOption = Path("params.yaml"),
    overrides: SetOption = None,
    videos: Annotated[
        str | None,
        typer.Option(
            help="video folder or s3://bucket/prefix (default: mine.video_dir, $SELFSUP_VIDEO_DIR)"
        ),
    ] = None,
    encoder: Annotated[
        Path | None,
        typer.Option(help="model directory whose features cluster patches (default: HOG)"),
    ] = None,
    shard: Annotated[
        int | None,
        typer.Option(min=0, help="mine only shard N of mine.num_shards into a shard directory"),
    ] = None,
    merge: Annotated[
        list[Path] | None, typer.Option(help="merge these shard directories instead of mining")
    ] = None,
    metrics: MetricsOption = None,
) -> None:
    """Mine an object graph with transitive positive pairs from video (Wang et al. 2017)."""
    config = _params(params, overrides).mine
    from selfsup.mining import stage

    with _observed("mine") as run:
        if shard is not None:
            result = guard(lambda: stage.run_shard(shard, videos, params=config, out=out))
        elif merge:
            result = guard(lambda: stage.run_merge(merge, encoder, params=config, out=out))
        else:
            result = guard(lambda: stage.run(videos, encoder, params=config, out=out))
        run.record("mine", result)
    _write_metrics(metrics, result)


@app.command()
def unlearn(
    model: Annotated[Path, typer.Option(help="encoder directory (from pretrain)")],
    data: Annotated[Path, typer.Option(help="prepared dataset the encoder was trained on")],
    forget: Annotated[
        Path,
        typer.Option(
            help="file of sample ids to forget, one a line: 'train/<index>', a source file name "
            "(train/cat/0001.jpg) or a user id from data.ids_csv"
        ),
    ],
    out: Annotated[Path, typer.Option(help="output: unlearned encoder, head, request record")],
    head: Annotated[
        Path | None, typer.Option(help="linear head directory (default: fitted on all train)")
    ] = None,
    params: ParamsOption = Path("params.yaml"),
    overrides: SetOption = None,
    metrics: MetricsOption = None,
) -> None:
    """Serve a deletion request: Label-Agnostic Forgetting, audited against the baselines."""
    config = _params(params, overrides)
    from selfsup.unlearn import stage

    with _observed("unlearn") as run:
        result = guard(
            lambda: stage.run(data, model, forget, params=config.unlearn, out=out, head_dir=head)
        )
        run.record("unlearn", result)
    _write_metrics(metrics, result)


@app.command()
def distill(
    model: Annotated[Path, typer.Option(help="teacher model directory (from pretrain)")],
    data: Annotated[Path, typer.Option(help="prepared dataset directory (its train split)")],
    out: Annotated[Path, typer.Option(help="distilled dataset directory to write")],
    params: ParamsOption = Path("params.yaml"),
    overrides: SetOption = None,
    metrics: MetricsOption = None,
) -> None:
    """Distill the data into m learnt images + targets (KRR-ST); pretrain --method distilled."""
    config = _params(params, overrides)
    from selfsup.distill import stage

    with _observed("distill") as run:
        result = guard(lambda: stage.run(data, model, params=config.distill, out=out))
        run.record("distill", result)
    _write_metrics(metrics, result)


@app.command()
def compress(
    model: Annotated[Path, typer.Option(help="model directory (from pretrain)")],
    data: Annotated[Path, typer.Option(help="prepared dataset (unlabeled train images are used)")],
    out: Annotated[Path, typer.Option(help="directory for the exported model + manifest")],
    params: ParamsOption = Path("params.yaml"),
    overrides: SetOption = None,
    method: Annotated[
        CompressMethod | None,  # type: ignore[valid-type]
        typer.Option(help="override compress.method"),
    ] = None,
    density: Annotated[float | None, typer.Option(help="override compress.density")] = None,
    metrics: MetricsOption = None,
) -> None:
    """A smaller deployable encoder: pruning (magnitude, SSVI), int8, ONNX/TorchScript export."""
    config = _params(params, overrides)
    chosen = {k: v for k, v in (("method", method), ("density", density)) if v is not None}
    if chosen:
        updated = {**config.model_dump(), "compress": {**config.compress.model_dump(), **chosen}}
        config = guard(lambda: validate_params(updated, "--method/--density"))
    from selfsup.compress import stage

    with _observed("compress") as run:
        result = guard(lambda: stage.run(data, model, params=config.compress, out=out))
        run.record("compress", result)
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
    force: Annotated[bool, typer.Option(help="replace an existing file")] = False,
) -> None:
    """Write a profile's complete parameters as YAML (over an existing file only with --force)."""
    if out.exists() and not force:
        typer.echo(f"error: {out} exists; pass --force to replace it", err=True)
        raise typer.Exit(code=2)
    text = render_params(guard(lambda: profile_params(profile)), profile)
    atomic_write_bytes(out, text.encode())
    typer.echo(f"wrote profile {profile!r} to {out}")


@params_app.command("check")
def params_check(path: Annotated[Path, typer.Argument()] = Path("params.yaml")) -> None:
    """Validate a params file (unknown keys and out-of-range values are errors)."""
    _params(path)
    typer.echo(f"{path}: ok")


# --- store -----------------------------------------------------------------------------------
StoreOption = Annotated[
    str,
    typer.Option("--store", help="s3://bucket/prefix or a local directory", envvar="SELFSUP_STORE"),
]


@store_app.command("push")
def store_push(
    local: Annotated[Path, typer.Argument(help="artifact directory (with manifest.json)")],
    name: Annotated[str, typer.Argument(help="name in the store, e.g. datasets/cifar10")],
    store: StoreOption,
) -> None:
    """Upload an artifact directory: missing blobs first, its manifest last."""
    from selfsup.store.open import open_store

    def push() -> dict[str, Any]:
        target = open_store(store)
        _ensure_bucket(target)
        return target.push(local, name)

    manifest = guard(push)
    typer.echo(f"pushed {local} as {name} ({len(manifest['files'])} files)")


@store_app.command("pull")
def store_pull(
    name: Annotated[str, typer.Argument(help="artifact name in the store")],
    dest: Annotated[Path, typer.Argument(help="directory to write (replaced atomically)")],
    store: StoreOption,
    version_id: Annotated[
        str | None, typer.Option(help="an older version of the manifest (versioned buckets)")
    ] = None,
) -> None:
    """Download an artifact, verifying every file's sha256."""
    from selfsup.store.open import open_store

    manifest = guard(lambda: open_store(store).pull(name, dest, version_id))
    typer.echo(f"pulled {name} into {dest} ({len(manifest['files'])} files)")


@store_app.command("list")
def store_list(
    store: StoreOption, prefix: Annotated[str, typer.Option(help="name prefix")] = ""
) -> None:
    """List the published artifacts."""
    from selfsup.store.open import open_store

    for name in guard(lambda: open_store(store).names(prefix)):
        typer.echo(name)


@store_app.command("verify")
def store_verify(
    store: StoreOption,
    name: Annotated[str | None, typer.Argument(help="one artifact (default: every one)")] = None,
) -> None:
    """Check every stored file of every artifact (or one) against its sha256; list what is
    broken (exit 2). `store push` of a good copy repairs a corrupt or missing blob."""
    from selfsup.store.open import open_store

    report = guard(lambda: open_store(store).verify(name))
    for artifact, problems in sorted(report.items()):
        status = f"BROKEN {artifact}: {'; '.join(problems)}" if problems else f"ok {artifact}"
        typer.echo(status)
    broken = sorted(a for a, problems in report.items() if problems)
    if broken:
        typer.echo(
            f"error: {len(broken)} of {len(report)} artifacts are broken ({', '.join(broken)}); "
            "push each again from a good copy (push replaces corrupt blobs)",
            err=True,
        )
        raise typer.Exit(code=2)


@store_app.command("dvc-remote")
def store_dvc_remote(
    url: Annotated[str, typer.Argument(help="s3://bucket/path for DVC's cache")],
    endpoint: Annotated[
        str, typer.Option(help="S3 endpoint, http(s)://host:port", envvar="SELFSUP_S3_ENDPOINT")
    ],
    name: Annotated[str, typer.Option(help="remote name")] = "storage",
    repo: Annotated[Path, typer.Option(help="the DVC repository")] = Path("."),
    save_credentials: Annotated[
        bool, typer.Option(help="copy AWS_* keys from the env into .dvc/config.local")
    ] = False,
) -> None:
    """Make the project's default DVC remote an S3 bucket (then `dvc push` / `dvc pull`)."""
    from selfsup.store.dvc_remote import configure_remote

    guard(lambda: configure_remote(repo, url, endpoint, name, True, save_credentials))
    typer.echo(f"DVC remote {name!r} = {url} at {endpoint} (default)")


def _ensure_bucket(store: Any) -> None:
    """Create the bucket of an S3 store (versioned, so overwrites keep old versions)."""
    from selfsup.store.s3 import S3Backend

    if isinstance(store.backend, S3Backend):
        store.backend.ensure_bucket(versioning=True)


# --- registry --------------------------------------------------------------------------------
RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="registry store: s3://bucket/prefix or a folder (default: ./registry)",
        envvar="SELFSUP_REGISTRY",
    ),
]


def _registry(uri: str | None) -> Any:
    from selfsup.registry.register import open_registry

    return guard(lambda: open_registry(uri or _REGISTRY_DEFAULTS.uri))


_REGISTRY_DEFAULTS = RegistryParams()
KnnMarginOption = Annotated[
    float | None,
    typer.Option(help="kNN top-1 gain needed to promote (when labeled); default: gate.knn_margin"),
]
RankMeMarginOption = Annotated[
    float | None, typer.Option(help="RankMe gain needed to promote; default: gate.rankme_margin")
]
GateParamsOption = Annotated[
    Path | None,
    typer.Option("--params", help="params YAML whose gate section sets the margins"),
]


def _gate(params: Path | None, knn_margin: float | None, rankme_margin: float | None) -> GateParams:
    """The gate of ``params`` (params.yaml's ``gate``; the defaults without a file), with the
    margins given as options over it."""
    from pydantic import ValidationError

    base = guard(lambda: load_params(params)).gate if params is not None else GateParams()
    given = {"knn_margin": knn_margin, "rankme_margin": rankme_margin}
    try:
        return base.model_validate(
            {**base.model_dump(), **{k: v for k, v in given.items() if v is not None}}
        )
    except ValidationError as exc:
        typer.echo(f"error: invalid margins: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(code=2) from None


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True))


@registry_app.command("register")
def registry_register(
    model: Annotated[Path, typer.Option(help="model directory (from pretrain)")],
    evaluation: Annotated[Path, typer.Option(help="metrics JSON written by selfsup evaluate")],
    registry: RegistryOption = None,
    params: GateParamsOption = None,
    knn_margin: KnnMarginOption = None,
    rankme_margin: RankMeMarginOption = None,
    promote: Annotated[
        bool,
        typer.Option(
            help="apply the gate's verdict; --no-promote records it and leaves the champion "
            "(dvc repro / dvc exp run)"
        ),
    ] = True,
    out: Annotated[Path | None, typer.Option(help="write the gate's decision JSON here")] = None,
) -> None:
    """Register a model (challenger) with its lineage and metrics, then run the promotion gate."""
    from selfsup.registry.lineage import data_version
    from selfsup.registry.register import register_and_gate

    reg, gate = _registry(registry), _gate(params, knn_margin, rankme_margin)

    def run() -> dict[str, Any]:
        lineage = {"data_version": data_version(Path.cwd())}
        return register_and_gate(reg, model, evaluation, gate, lineage, promote)

    with _observed("register") as observed:
        decision = guard(run)
        observed.record("register", {"promoted": float(decision["action"] == "promote")})
    _write_metrics(out, decision)
    typer.echo(f"{decision['action']} {decision['model']}: {decision['reason']}")


@registry_app.command("list")
def registry_list(
    registry: RegistryOption = None,
) -> None:
    """Every registered model with its key metrics and aliases."""
    reg = _registry(registry)

    def rows() -> list[str]:
        aliases = reg.aliases()
        lines = []
        for model_id in reg.ids():
            record = reg.record(model_id)
            trained = record["metrics"].get("trained", {})
            tags = ",".join(a for a in ("champion", "challenger") if aliases.get(a) == model_id)
            knn = trained.get("knn_top1")
            knn_text = "-" if knn is None else f"{knn:.4f}"
            lines.append(
                f"{model_id}  {record['registered']}  knn_top1={knn_text}  "
                f"rankme={trained.get('rankme', float('nan')):.2f}  {tags}".rstrip()
            )
        return lines

    for line in guard(rows):
        typer.echo(line)


@registry_app.command("show")
def registry_show(
    ref: Annotated[str, typer.Argument(help="model id, champion or challenger")],
    registry: RegistryOption = None,
) -> None:
    """A model's record (lineage, metrics) as JSON."""
    reg = _registry(registry)
    _echo_json(guard(lambda: reg.record(ref)))


@registry_app.command("promote")
def registry_promote(
    ref: Annotated[str, typer.Argument(help="model id or challenger")] = "challenger",
    registry: RegistryOption = None,
    params: GateParamsOption = None,
    knn_margin: KnnMarginOption = None,
    rankme_margin: RankMeMarginOption = None,
    force: Annotated[str | None, typer.Option(help="skip the gate; the reason is recorded")] = None,
) -> None:
    """Run the promotion gate for a model against the champion (or force it, with a reason)."""
    reg, gate = _registry(registry), _gate(params, knn_margin, rankme_margin)
    decision = guard(lambda: reg.promote(ref, gate, force))
    typer.echo(f"{decision['action']} {decision['model']}: {decision['reason']}")


@registry_app.command("rollback")
def registry_rollback(
    reason: Annotated[str, typer.Option(help="why (recorded with the decision)")],
    registry: RegistryOption = None,
) -> None:
    """Make the previous champion champion again."""
    reg = _registry(registry)
    decision = guard(lambda: reg.rollback(reason))
    typer.echo(f"rollback: champion is {decision['model']} again ({reason})")


@registry_app.command("pull")
def registry_pull(
    ref: Annotated[str, typer.Argument(help="model id, champion or challenger")],
    dest: Annotated[Path, typer.Argument(help="directory to write")],
    registry: RegistryOption = None,
) -> None:
    """Download a registered model (verified) into a directory."""
    reg = _registry(registry)
    guard(lambda: reg.pull(ref, dest))
    typer.echo(f"pulled {ref} into {dest}")
