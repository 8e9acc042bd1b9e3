"""The model card: one Markdown page a person reads before using an encoder.

Made only from what the stages already wrote — evaluate's ``metrics.json`` and manifest, the
model's manifest, compress's ``metrics.json`` and manifest, unlearn's ``request.json`` or a
registry record's lineage — so every number on it is one of theirs. Metrics are printed as
``selfsup summary`` and the report's header print them (4 decimals; gains signed). Sections: data
and its hash, method, metrics against the random-init (and raw-pixel) floor, calibration,
compression, deletion requests served, limitations. What a section's input does not hold is said
("not measured"), never guessed.

It goes into the registry beside each record (``registry/models/<id>.card.md``), onto the train
pipeline's UI as a ``Markdown`` artifact (task ``model-card``), and out of ``selfsup model-card``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from selfsup.errors import SelfsupError
from selfsup.evaluate.summary import SummaryRow, summary_rows

NOT_MEASURED = "not measured"
CARD_SUFFIX = ".card.md"
_FLOOR_NAMES = {"random_init": "random init", "raw_pixels": "raw pixels"}
_METHOD_KEYS = ("method", "encoder", "epochs", "batch_size", "optimizer", "lr", "temperature")


def _rows(metrics: Mapping[str, Any]) -> list[SummaryRow]:
    """The headline rows ``selfsup summary`` prints; none when a side was not evaluated."""
    if not isinstance(metrics.get("trained"), dict) or not isinstance(
        metrics.get("random_init"), dict
    ):
        return []
    return summary_rows(metrics)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise SelfsupError(f"{path} does not exist: the model card needs {what}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _hash(value: Any) -> str:
    return f"`{value}`" if value else NOT_MEASURED


def _data_section(metrics: Mapping[str, Any], data_hash: Any) -> list[str]:
    labeled = bool(metrics.get("labeled"))
    lines = [
        "## Data",
        "",
        f"- dataset content hash: {_hash(data_hash)}",
        f"- evaluated on {metrics.get('num_train', '?')} train and {metrics.get('num_test', '?')} "
        f"test images, {'labeled' if labeled else 'unlabeled'}"
        + (f", {metrics['num_classes']} classes" if labeled and "num_classes" in metrics else ""),
    ]
    return lines


def _method_section(model: Mapping[str, Any] | None, model_hash: Any) -> list[str]:
    lines = ["## Method", "", f"- model content hash: {_hash(model_hash)}"]
    params = (model or {}).get("params") or {}
    if not params:
        return [*lines, f"- training recipe: {NOT_MEASURED}"]
    recipe = ", ".join(f"{k} {params[k]}" for k in _METHOD_KEYS if k in params)
    lines.append(f"- self-supervised pretraining: {recipe}")
    summary = (model or {}).get("metrics") or {}
    if "final_loss" in summary:
        lines.append(
            f"- final loss {summary['final_loss']:.4f} after {summary.get('epochs', '?')} epochs "
            f"on {summary.get('train_images', '?')} images"
        )
    return lines


def _metrics_section(metrics: Mapping[str, Any]) -> list[str]:
    rows = _rows(metrics)
    lines = [
        "## Metrics against the floors",
        "",
        "Frozen features of the trained encoder beside a random-init encoder of the same "
        "architecture and the raw pixels (the floors); the gain is over the stronger floor "
        "(for ECE, lower is better).",
        "",
        "| metric | trained | random init | raw pixels | gain over the stronger floor |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        raw = f"{row.raw_pixels:.4f}" if row.raw_pixels is not None else "-"
        lines.append(
            f"| {row.label} | {row.trained:.4f} | {row.random_init:.4f} | {raw} | "
            f"{row.gain:+.4f} ({_FLOOR_NAMES[row.floor]}) |"
        )
    if not rows:
        lines.append(f"| - | {NOT_MEASURED} | | | |")
    return lines


def _calibration_section(metrics: Mapping[str, Any], bins: Any) -> list[str]:
    ece = {n: (metrics.get(n) or {}).get("linear_ece") for n in ("trained", *_FLOOR_NAMES)}
    if ece["trained"] is None:
        return ["## Calibration", "", f"- {NOT_MEASURED} (no labels: no linear probe)"]
    where = f"{bins} equal-width bins" if bins else "equal-width bins"
    floors = ", ".join(
        f"{_FLOOR_NAMES[k]} {v:.4f}" for k, v in ece.items() if k != "trained" and v is not None
    )
    return [
        "## Calibration",
        "",
        f"- expected calibration error of the linear probe on the test split ({where}): "
        f"{ece['trained']:.4f} (floors: {floors})",
    ]


def _compression_section(
    compress: Mapping[str, Any] | None, manifest: Mapping[str, Any] | None
) -> list[str]:
    if not compress:
        return ["## Compression", "", f"- {NOT_MEASURED}: not compressed in this run"]
    lines = [
        "## Compression",
        "",
        f"- method {compress.get('method')}, weight density {compress.get('density', 0):.4f} "
        f"(target {compress.get('density_target')})",
        f"- packed size {compress.get('packed_bytes')} bytes vs "
        f"{compress.get('dense_packed_bytes')} dense: "
        f"{compress.get('compression_ratio', 0):.4f}× smaller",
        "- fidelity (mean cosine to the original embeddings): "
        f"{compress.get('fidelity_cosine', 0):.4f}",
    ]
    deployable = (manifest or {}).get("deployable")
    if deployable:
        lines.append(f"- deployable file: `{deployable}`")
    if "onnx_max_abs_diff" in compress:
        lines.append(f"- ONNX vs PyTorch, max |diff|: {compress['onnx_max_abs_diff']:.3g}")
    return lines


def _deletion_section(deletions: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["## Deletion requests served", ""]
    if not deletions:
        return [*lines, "- none: this encoder was trained on the dataset above as it is"]
    for request in deletions:
        before = str((request.get("model_before") or {}).get("encoder", ""))[:16]
        lines.append(
            f"- {request.get('served', '?')}: {request.get('ids_count', '?')} samples "
            f"(ids sha256 `{str(request.get('ids_sha256', ''))[:12]}`) forgotten with "
            f"{request.get('method', '?')} from model `{before}`"
        )
    return lines


def _limitations(metrics: Mapping[str, Any], compress: Mapping[str, Any] | None) -> list[str]:
    lines = [
        "## Limitations",
        "",
        "- The numbers are of frozen features on the test split named above, for its classes "
        "and image size only; a different domain needs its own evaluation.",
        "- Input: float [N,3,H,W] in [0,1], normalised inside the model with the CIFAR-10 "
        "channel statistics.",
    ]
    for row in _rows(metrics):
        if (row.gain > 0) if row.key == "linear_ece" else (row.gain < 0):
            lines.append(f"- {row.label} does not beat the {_FLOOR_NAMES[row.floor]} floor.")
    if not metrics.get("labeled"):
        lines.append("- Unlabeled evaluation: only RankMe (label-free) was measured.")
    if "rankme_samples" in metrics:
        lines.append(f"- RankMe on {metrics['rankme_samples']} embeddings.")
    if compress and "onnx_bytes" not in compress:
        lines.append("- The compressed model (int8) ships as TorchScript only, not ONNX.")
    return lines


def model_card(
    metrics: Mapping[str, Any],
    *,
    title: str,
    data_hash: Any = None,
    model_hash: Any = None,
    model: Mapping[str, Any] | None = None,
    ece_bins: Any = None,
    compress: Mapping[str, Any] | None = None,
    compress_manifest: Mapping[str, Any] | None = None,
    deletions: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The card's Markdown: ``metrics`` is evaluate's metrics.json, ``model`` the model's
    manifest (its params and training summary), ``compress`` compress's metrics.json."""
    sections = [
        [f"# Model card: {title}"],
        _data_section(metrics, data_hash),
        _method_section(model, model_hash),
        _metrics_section(metrics),
        _calibration_section(metrics, ece_bins),
        _compression_section(compress, compress_manifest),
        _deletion_section(deletions),
        _limitations(metrics, compress),
    ]
    return "\n\n".join("\n".join(s) for s in sections) + "\n"


def card_from_dirs(
    evaluation: Path,
    model: Path | None = None,
    compressed: Path | None = None,
    unlearned: Sequence[Path] = (),
    title: str | None = None,
) -> str:
    """The card of the stage outputs: evaluate's directory, the model directory, compress's
    directory and unlearn's directories (each optional but the first)."""
    metrics = _read_json(Path(evaluation) / "metrics.json", "evaluate's metrics.json")
    evaluated = _read_json(Path(evaluation) / "manifest.json", "evaluate's manifest")
    model_manifest = (
        _read_json(Path(model) / "manifest.json", "the model's manifest") if model else None
    )
    compress = compress_manifest = None
    if compressed is not None:
        compress = _read_json(Path(compressed) / "metrics.json", "compress's metrics.json")
        compress_manifest = _read_json(Path(compressed) / "manifest.json", "compress's manifest")
    deletions = [_read_json(Path(u) / "request.json", "unlearn's request.json") for u in unlearned]
    model_hash = evaluated.get("model")
    return model_card(
        metrics,
        title=title or f"encoder {str(model_hash)[:16]}",
        data_hash=evaluated.get("data"),
        model_hash=model_hash,
        model=model_manifest,
        ece_bins=(evaluated.get("params") or {}).get("ece_bins"),
        compress=compress,
        compress_manifest=compress_manifest,
        deletions=deletions,
    )


def card_from_record(record: Mapping[str, Any], model_manifest: Mapping[str, Any]) -> str:
    """The card of a registry record (its evaluation metrics and lineage) and the model's
    manifest: what the registry keeps beside the record."""
    lineage = record.get("lineage") or {}
    request = lineage.get("deletion_request")
    return model_card(
        record.get("metrics") or {},
        title=str(record.get("id")),
        data_hash=lineage.get("data_content_hash"),
        model_hash=lineage.get("model_content_hash"),
        model=model_manifest,
        deletions=[request] if request else [],
    )


def publish_card(
    evaluation: Path, model: Path, compressed: Path | None, out: Path, run_id: str = ""
) -> str:
    """The ``model-card`` task: the card of the run's outputs written to ``out`` (the UI's
    Markdown artifact); a missing input is one line, no traceback."""
    try:
        title = f"run {run_id}" if run_id else None
        text = card_from_dirs(evaluation, model, compressed, title=title)
    except SelfsupError as exc:
        raise SystemExit(f"error: {exc}") from None
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    return text
