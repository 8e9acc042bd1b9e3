"""``selfsup unlearn``: serve one deletion request with LAF, audit it against the baselines.

Runs LAF on unlabelled images (+R when enabled) and the baselines, audits every model the same
way, and writes ``out/`` atomically: ``encoder/`` (a model directory with lineage), ``head/``,
``request.json`` (the deletion-request record) and ``metrics.json``. Without ``head_dir`` the
original head is fitted on the full labelled train split.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from selfsup.config import PretrainParams, UnlearnParams
from selfsup.data.shards import Split, load_split, read_dataset_manifest, read_sample_ids
from selfsup.errors import ConfigError
from selfsup.models.artifact import load_encoder, save_encoder
from selfsup.models.embed import embed
from selfsup.models.encoders import Encoder
from selfsup.store import atomic_directory, atomic_write_json, write_manifest
from selfsup.train.accel import resolve_device
from selfsup.unlearn import audit, baselines
from selfsup.unlearn.head import finetune_head, load_head, save_head
from selfsup.unlearn.ids import format_id, read_request
from selfsup.unlearn.laf import laf_unlearn
from selfsup.unlearn.request import ids_digest, request_record, write_request

log = logging.getLogger("selfsup.unlearn")

# The kind of unlearn's output directory: the served deletion request (encoder, head, record).
REQUEST_KIND = "unlearn-request"

GAP_KEYS = ("acc_forget", "acc_remaining", "acc_test_remaining", "attack_forget_member_rate")


def _labelled(split: Split, name: str, classes: int) -> None:
    if not split.labeled:
        raise ConfigError(
            f"the {name} split is unlabelled: the audit and the baselines need labels "
            "(LAF itself does not)"
        )
    if int(split.labels.max()) >= classes:
        raise ConfigError(f"{name} label {int(split.labels.max())} ≥ {classes} class names")


def _original_head(
    head_dir: Path | None,
    encoder: nn.Module,
    train: Split,
    classes: int,
    params: UnlearnParams,
    device: torch.device,
) -> tuple[nn.Linear, str]:
    """The given head (checked against the encoder), or one fitted on the full train split."""
    out_dim = int(getattr(encoder, "out_dim"))  # noqa: B009 - Encoder attribute
    if head_dir is None:
        head = baselines.fit_head(
            encoder, train.images.to(device), train.labels.to(device), classes, params
        )
        return head, "fitted"
    head, manifest = load_head(head_dir)
    if head.in_features != out_dim or head.out_features != classes:
        raise ConfigError(
            f"head {head_dir} maps {head.in_features} → {head.out_features}, the encoder gives "
            f"{out_dim} features and the dataset has {classes} classes"
        )
    return head.to(device), str(manifest["content_hash"])


def _timed(action: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def _gaps(methods: dict[str, dict[str, Any]], trusted: bool) -> dict[str, dict[str, Any]]:
    """Each method's metric minus retrain's (and its time over retrain's)."""
    gold = methods.get("retrain")
    if gold is None:
        return {}
    gaps: dict[str, dict[str, Any]] = {}
    for name, result in methods.items():
        if name == "retrain":
            continue
        row: dict[str, Any] = {}
        for key in GAP_KEYS:
            mine, ref = result.get(key), gold.get(key)
            if key.startswith("attack") and not trusted:
                mine = ref = None
            row[key] = None if mine is None or ref is None else mine - ref
        row["time_ratio"] = result["seconds"] / gold["seconds"] if gold["seconds"] else None
        gaps[name] = row
    return gaps


def run(
    dataset: Path,
    model: Path,
    forget_file: Path,
    *,
    params: UnlearnParams,
    out: Path,
    head_dir: Path | None = None,
) -> dict[str, Any]:
    """Serve the deletion request ``forget_file`` (ids, :mod:`selfsup.unlearn.ids`) against the
    encoder ``model`` trained on ``dataset``; returns the metrics (also in ``out``)."""
    model_dir, data_dir = Path(model), Path(dataset)
    data_manifest = read_dataset_manifest(data_dir)
    class_names = list(data_manifest["class_names"])
    if "test" not in data_manifest["splits"]:
        raise ConfigError(f"{data_dir} has no test split: the audit needs non-member samples")
    # resolved before the images are loaded: a bad request fails fast
    request = read_request(
        forget_file, int(data_manifest["splits"]["train"]), read_sample_ids(data_dir, data_manifest)
    )
    if request.test_rows_kept:
        log.warning(
            "user id(s) with test rows too, left alone (the model never trained on them): %s",
            ", ".join(f"{k} ({n})" for k, n in request.test_rows_kept.items()),
        )
    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    _labelled(train, "train", len(class_names))
    _labelled(test, "test", len(class_names))
    forget_index = request.rows
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[forget_index] = False
    remaining = Split(images=train.images[keep], labels=train.labels[keep])
    forget = Split(images=train.images[forget_index], labels=train.labels[forget_index])
    ids = [format_id(int(i)) for i in forget_index]

    device = resolve_device(params.device)
    encoder, model_manifest = load_encoder(model_dir)
    encoder = encoder.to(device).requires_grad_(False)
    pretrain_params = PretrainParams.model_validate(model_manifest["params"])
    head, head_version = _original_head(head_dir, encoder, train, len(class_names), params, device)
    generator = torch.Generator().manual_seed(params.seed)
    members = torch.randperm(len(remaining), generator=generator)[: len(test)]
    data = audit.AuditData(
        remaining=remaining.images,
        remaining_labels=remaining.labels,
        forget=forget.images,
        forget_labels=forget.labels,
        test=test.images,
        test_labels=test.labels,
        forgotten_classes=audit.forgotten_classes(train.labels, forget_index),
        members=members,
    )
    attack_accuracy = audit.original_attack_accuracy(
        encoder, head, data, params.batch_size, params.seed
    )
    trusted = attack_accuracy >= params.mia_min_accuracy
    if not trusted:
        log.warning(
            "the membership attack does not separate members on the original model "
            "(held-out accuracy %.3f < %.2f): its figures are reported as untrusted",
            attack_accuracy,
            params.mia_min_accuracy,
        )

    def scored(enc: nn.Module, hd: nn.Module, seconds: float) -> dict[str, Any]:
        result = audit.audit_model(enc, hd, data, params.batch_size, params.seed)
        if not trusted:
            result["attack_forget_member_rate_untrusted"] = result["attack_forget_member_rate"]
            result["attack_forget_member_rate"] = None
        return {**result, "seconds": seconds}

    methods: dict[str, dict[str, Any]] = {}
    # LAF: images only — the labels stay in `remaining.labels` / `forget.labels`.
    (unlearned, laf_info), laf_seconds = _timed(
        lambda: laf_unlearn(encoder, remaining.images, forget.images, params, device)
    )
    methods["laf"] = scored(unlearned, head, laf_seconds)
    final_head = head
    if params.plus_r:

        def plus_r() -> nn.Linear:
            features = embed(unlearned, remaining.images.to(device), params.batch_size)
            return finetune_head(
                head,
                features,
                remaining.labels.to(device),
                epochs=params.plus_r_epochs,
                lr=params.plus_r_lr,
                batch_size=params.batch_size,
                generator=torch.Generator().manual_seed(params.seed + 2),
            )

        final_head, r_seconds = _timed(plus_r)
        methods["laf+r"] = scored(unlearned, final_head, laf_seconds + r_seconds)
    if "noop" in params.baselines:
        methods["noop"] = scored(encoder, head, 0.0)
    if "finetune" in params.baselines:
        (ft_encoder, ft_head), seconds = _timed(
            lambda: baselines.finetune(
                encoder, head, remaining.images, remaining.labels, params, device
            )
        )
        methods["finetune"] = scored(ft_encoder, ft_head, seconds)
    if "retrain" in params.baselines:
        (rt_encoder, rt_head, rt_info), seconds = _timed(
            lambda: baselines.retrain(remaining, class_names, pretrain_params, params)
        )
        methods["retrain"] = {**scored(rt_encoder, rt_head, seconds), **rt_info}

    method = "laf+r" if params.plus_r else "laf"
    gaps = _gaps(methods, trusted)
    metrics: dict[str, Any] = {
        "method": method,
        "forget_count": len(forget),
        "remaining_count": len(remaining),
        "forgotten_classes": data.forgotten_classes,
        "mia": {
            "original_heldout_accuracy": attack_accuracy,
            "min_accuracy": params.mia_min_accuracy,
            "trusted": trusted,
        },
        "methods": methods,
        "gaps_to_retrain": gaps,
        "time_ratio_laf_retrain": gaps.get(method, {}).get("time_ratio"),
        "laf": laf_info.as_dict(),
        "ids_sha256": ids_digest(ids),
        "requested_count": len(request.requested),
    }
    before = {"encoder": model_manifest["content_hash"], "head": head_version}
    with atomic_directory(Path(out), REQUEST_KIND) as tmp:
        assert isinstance(unlearned, Encoder)
        encoder_manifest = save_encoder(
            tmp / "encoder",
            unlearned.cpu(),
            pretrain_params,
            data=data_manifest["content_hash"],
            unlearned_from=model_manifest["content_hash"],
            forget_ids_sha256=ids_digest(ids),
            method=method,
        )
        head_manifest = save_head(
            tmp / "head", final_head.cpu(), encoder=encoder_manifest["content_hash"]
        )
        after = {"encoder": encoder_manifest["content_hash"], "head": head_manifest["content_hash"]}
        metrics["model_before"], metrics["model_after"] = before, after
        write_request(
            tmp,
            request_record(
                ids=ids,
                dataset=data_manifest["content_hash"],
                before=before,
                after=after,
                audit={"mia": metrics["mia"], **methods[method]},
                params=params.model_dump(),
                method=method,
                requested=request.requested,
                resolved={k: [format_id(r) for r in v] for k, v in request.resolved.items()},
                test_rows_kept=request.test_rows_kept,
            ),
        )
        atomic_write_json(tmp / "metrics.json", metrics)
        # Last: the whole served request is one artifact (a re-run may replace it, checksums).
        write_manifest(tmp, REQUEST_KIND, params.model_dump(), method=method)
    return metrics
