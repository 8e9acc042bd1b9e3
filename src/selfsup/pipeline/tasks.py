"""What one pipeline task does, shared by the container components and their local twins.

Both ``selfsup pipeline task <stage>`` (inside the project image on the cluster) and the
lightweight twins that ``run-local`` executes call these functions, so the DAG that runs offline
is the DAG that runs on Kubeflow, down to the library call. Each function takes its params
section as a mapping (a KFP ``dict`` parameter, mirroring that section of params.yaml), runs the
stage's library function and returns the stage's metrics plus the values later tasks key their
cache on (the dataset's content hash).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from selfsup.config import (
    CompressParams,
    DataParams,
    DistillParams,
    EvaluateParams,
    MineParams,
    PretrainParams,
    RegistryParams,
    UnlearnParams,
)
from selfsup.errors import ConfigError, SelfsupError

_SECTIONS: dict[str, type[BaseModel]] = {
    "data": DataParams,
    "pretrain": PretrainParams,
    "evaluate": EvaluateParams,
    "mine": MineParams,
    "registry": RegistryParams,
    "unlearn": UnlearnParams,
    "distill": DistillParams,
    "compress": CompressParams,
}


# Keys whose value is null: KFP structs cannot carry null (see train.section_arguments).
NULLS_KEY = "_nulls"


def section_params(section: str, values: Mapping[str, Any]) -> Any:
    """Validate one params section (unknown keys and bad values are a ConfigError naming them).

    Keys listed under ``NULLS_KEY`` are set to null first.
    """
    from pydantic import ValidationError

    raw = dict(values)
    nulls = raw.pop(NULLS_KEY, [])
    if not isinstance(nulls, list) or not all(isinstance(k, str) for k in nulls):
        raise ConfigError(f"pipeline parameter {section!r}: {NULLS_KEY} must list key names")
    raw.update(dict.fromkeys(nulls))
    try:
        return _SECTIONS[section].model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{section}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid pipeline parameter {section!r}: {problems}") from None


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """In a local twin's subprocess: a SelfsupError ends the task with one line, no traceback.

    The same contract as the CLI (exit code non-zero, ``error: <message>`` on stderr); any other
    exception is a bug and keeps its traceback.
    """
    try:
        yield
    except SelfsupError as exc:
        raise SystemExit(f"error: {exc}") from None


def flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested ``metrics`` as ``{"a.b": value}`` (KFP Metrics hold scalars).

    Lists are indexed (``loss_per_epoch.0``); booleans become 0/1; strings and nulls are
    dropped, since the Kubeflow UI shows only numbers in a Metrics artifact.
    """
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_metrics(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat.update(flat_metrics({str(i): v for i, v in enumerate(value)}, f"{name}."))
        elif isinstance(value, int | float):  # bool is an int: True -> 1.0
            flat[name] = float(value)
    return flat


def run_data(values: Mapping[str, Any], dataset: Path) -> tuple[dict[str, Any], str]:
    """Prepare the dataset into ``dataset``; returns (metrics, the dataset's content hash)."""
    from selfsup.data import prepare
    from selfsup.data.shards import read_dataset_manifest

    metrics = prepare.run(section_params("data", values), Path(dataset))
    return metrics, str(read_dataset_manifest(Path(dataset))["content_hash"])


def mine_shard_indices(values: Mapping[str, Any]) -> list[int]:
    """The shard indices of a ``mine`` section: what the ``ParallelFor`` fans out over."""
    return list(range(section_params("mine", values).num_shards))


def run_mine_shard(values: Mapping[str, Any], index: int, shard: Path) -> dict[str, Any]:
    """Mine shard ``index`` (its videos only) into the shard directory ``shard``."""
    from selfsup.mining import stage

    return stage.run_shard(section_params("mine", values), Path(shard), index)


def run_mine_merge(values: Mapping[str, Any], shards: list[Path], mined: Path) -> dict[str, Any]:
    """Merge shard directories (any order: the merge sorts by video) into the mined dataset."""
    from selfsup.mining import stage

    return stage.run_merge(section_params("mine", values), [Path(s) for s in shards], Path(mined))


def run_mine(values: Mapping[str, Any], mined: Path) -> dict[str, Any]:
    """Every shard in this process, then the merge: the local twin of the fan-out.

    ``kfp.local`` 2.16 cannot collect a ``ParallelFor``'s artifacts into a later task (its
    orchestrator fails on ``dsl.Collected``), so offline the shards run in one task — through the
    same library call that mines each shard and merges them on the cluster.
    """
    from selfsup.mining import stage

    return stage.run(section_params("mine", values), Path(mined))


def run_pretrain(
    values: Mapping[str, Any], dataset: Path, model: Path, mined: Path | None = None
) -> dict[str, Any]:
    """Pretrain on ``dataset`` into the model directory ``model``; returns the metrics.

    ``mined`` (the ``mine`` task's dataset) is read only by the methods that train on mined pairs:
    ``triplet`` trains on it alone, the mixed methods take its pairs next to ``dataset``'s images.
    Checkpoints go to a sibling ``<model>.ckpt`` (scratch space of the task's pod); the model
    directory is the artifact KFP uploads.
    """
    from selfsup.train import pretrain

    params = section_params("pretrain", values)
    return pretrain.run(Path(dataset), params, Path(model), pairs=mined)


def run_evaluate(
    values: Mapping[str, Any], dataset: Path, model: Path, evaluation: Path, report: Path | None
) -> dict[str, Any]:
    """Evaluate ``model`` on ``dataset`` into ``evaluation``; copy its HTML report to ``report``."""
    from selfsup.evaluate import stage

    metrics = stage.run(Path(model), Path(dataset), section_params("evaluate", values), evaluation)
    if report is not None:
        Path(report).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(evaluation) / "report.html", report)
    return metrics


def run_distill(
    values: Mapping[str, Any], dataset: Path, model: Path, distilled: Path
) -> dict[str, Any]:
    """Distill ``dataset`` with the encoder ``model`` as teacher into ``distilled`` (KRR-ST)."""
    from selfsup.distill import stage

    return stage.run(Path(model), Path(dataset), section_params("distill", values), Path(distilled))


def run_compress(
    values: Mapping[str, Any], dataset: Path, model: Path, compressed: Path
) -> dict[str, Any]:
    """Compress the encoder ``model`` (label-free, on ``dataset``'s images) into ``compressed``."""
    from selfsup.compress import stage

    params = section_params("compress", values)
    return stage.run(Path(model), Path(dataset), params, Path(compressed))


def confusion_metadata(evaluation: Path) -> dict[str, Any]:
    """The ClassificationMetrics metadata (confusion matrix) of an evaluation directory, built
    by KFP's own ``ClassificationMetrics.log_confusion_matrix`` so the UI draws it; empty when
    the data had no labels."""
    import json

    from kfp import dsl

    from selfsup.evaluate.stage import CONFUSION_NAME

    path = Path(evaluation) / CONFUSION_NAME
    if not path.is_file():
        return {}
    confusion = json.loads(path.read_text())
    artifact = dsl.ClassificationMetrics()
    artifact.log_confusion_matrix(confusion["categories"], confusion["matrix"])
    return dict(artifact.metadata)


def record_confusion(artifact: Any, evaluation: Path) -> dict[str, Any]:
    """Put the confusion matrix on a ClassificationMetrics artifact (metadata + JSON file)."""
    import json

    metadata = confusion_metadata(evaluation)
    artifact.metadata.update(metadata)
    path = Path(artifact.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return metadata


def run_register(values: Mapping[str, Any], model: Path, evaluation: Path) -> dict[str, Any]:
    """Register ``model`` with the metrics of ``evaluation`` (an evaluation directory) and run
    the promotion gate; returns the decision.

    The registry is ``$SELFSUP_REGISTRY`` when set (on the cluster: ``s3://…``, credentials from
    the Secret as environment variables), else the section's ``uri``.
    """
    import os

    from selfsup.registry.register import register_and_gate

    params, registry = _registry(values)
    lineage = {"source": "kubeflow", "run": os.environ.get("KFP_RUN_ID", "")}
    decision = register_and_gate(
        registry, Path(model), Path(evaluation) / "metrics.json", params, lineage
    )
    return {**decision, "promoted": decision["action"] == "promote"}


def record_metrics(metrics: Any, values: Mapping[str, Any]) -> dict[str, float]:
    """Log ``values`` on a KFP Metrics artifact (flattened) and write them as JSON to its path.

    The metadata is what the Kubeflow UI shows; the file keeps the stage's nested metrics for
    anyone who downloads the artifact (and for ``run-local``'s summary).
    """
    import json

    flat = flat_metrics(values)
    for key, value in flat.items():
        metrics.log_metric(key, value)
    path = Path(metrics.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    return flat


def check_data_hash(dataset: Path, expected: str) -> None:
    """Refuse a dataset whose content hash is not the one the task was keyed (and cached) on."""
    from selfsup.data.shards import read_dataset_manifest
    from selfsup.errors import IntegrityError

    actual = str(read_dataset_manifest(Path(dataset), verify=False)["content_hash"])
    if actual != expected:
        raise IntegrityError(
            f"dataset {dataset} has content hash {actual}, but the task was given {expected}: "
            "the artifact changed after the data task ran; re-run the pipeline without cache"
        )


def _registry(values: Mapping[str, Any]) -> tuple[RegistryParams, Any]:
    """The registry section and the registry it names (``$SELFSUP_REGISTRY`` wins)."""
    import os

    from selfsup.registry.register import open_registry

    params = section_params("registry", values)
    return params, open_registry(os.environ.get("SELFSUP_REGISTRY") or params.uri)


def run_registry_pull(values: Mapping[str, Any], ref: str, model: Path) -> dict[str, Any]:
    """Download model ``ref`` (an id or ``champion``) from the registry into ``model``."""
    _, registry = _registry(values)
    model_id = registry.resolve(ref)
    registry.pull(model_id, Path(model))
    return {"model": model_id, "ref": ref}


def run_register_unlearned(
    values: Mapping[str, Any], unlearned: Path, evaluation: Path
) -> dict[str, Any]:
    """Register the unlearned encoder; promote it if the deletion audit passes."""
    import os

    from selfsup.registry.register import register_unlearned

    params, registry = _registry(values)
    lineage = {"source": "kubeflow-forget", "run": os.environ.get("KFP_RUN_ID", "")}
    decision = register_unlearned(
        registry, Path(unlearned), Path(evaluation) / "metrics.json", params, lineage
    )
    return {**decision, "promoted": decision["action"] == "promote"}


def run_unlearn_task(
    values: Mapping[str, Any],
    forget_ids: list[str],
    dataset: Path,
    model: Path,
    request: Path,
    unlearned: Path,
) -> dict[str, Any]:
    """The ``unlearn`` task: serve the deletion request ``forget_ids`` (``train/<index>`` ids) on
    ``model`` with ``selfsup unlearn``'s library call — the whole stage output (encoder, head,
    request record, audit) into ``request`` — and copy its encoder to the Model artifact
    ``unlearned`` (what evaluate reads)."""
    import tempfile

    from selfsup.unlearn import stage

    if not isinstance(forget_ids, list) or not all(isinstance(i, str) for i in forget_ids):
        raise ConfigError("forget_ids must be a list of sample ids such as 'train/17'")
    params = section_params("unlearn", values)
    with tempfile.TemporaryDirectory(prefix="selfsup-forget-") as tmp:
        ids_file = Path(tmp) / "forget.txt"
        ids_file.write_text("".join(f"{i}\n" for i in forget_ids))
        metrics = stage.run(Path(model), Path(dataset), ids_file, params, Path(request))
    if Path(unlearned).exists():
        shutil.rmtree(unlearned)
    shutil.copytree(Path(request) / "encoder", unlearned)
    return metrics
