"""``selfsup evaluate``: score a pretrained encoder on frozen features, beside two floors.

Every metric is computed for the trained encoder, for a seeded random-init one of the same
architecture (a random ConvNet alone reaches ~30-40% kNN on CIFAR-10) and for the raw pixels,
mean-centred by the train split (on Fashion-MNIST raw pixels beat a 2-epoch encoder that beat
random init). The headline gain is over the stronger floor, metric by metric.
The output holds ``metrics.json``, ``report.html``, ``plots/*.csv`` and a manifest naming the
model and data.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import selfsup
from selfsup.config import EvaluateParams, PretrainParams
from selfsup.data.shards import Split, load_split, read_dataset_manifest
from selfsup.errors import DataError
from selfsup.evaluate.calibration import Calibration, expected_calibration_error
from selfsup.evaluate.knn import (
    confusion_matrix,
    knn_classify,
    per_class_accuracy,
    top1_accuracy,
)
from selfsup.evaluate.linear_probe import fit_linear_probe
from selfsup.evaluate.rankme import RankMeResult, rankme
from selfsup.evaluate.report import (
    ReportData,
    ReportHeader,
    load_loss_curve,
    pca_2d,
    write_report,
)
from selfsup.models.artifact import load_encoder
from selfsup.models.embed import embed
from selfsup.models.encoders import Encoder, Normalization, build_encoder
from selfsup.observe.metrics import RUN_ID_ENV
from selfsup.registry.lineage import code_revision
from selfsup.store import atomic_directory, atomic_write_json, write_manifest
from selfsup.store.manifest import params_digest

logger = logging.getLogger(__name__)

EVALUATION_KIND = "evaluation"
METRICS_NAME = "metrics.json"
# The trained encoder's linear-probe confusion matrix on the test split (labeled data only).
CONFUSION_NAME = "confusion.json"


@dataclass(frozen=True)
class EncoderEvaluation:
    """The results of one encoder (trained or random-init); label-based fields are ``None`` for
    unlabeled data."""

    train_features: torch.Tensor
    test_features: torch.Tensor
    rankme: RankMeResult
    knn_top1: float | None = None
    knn_k: int | None = None
    per_class: list[float] | None = None
    linear_top1: float | None = None
    calibration: Calibration | None = None
    # The linear probe's test-split confusion matrix, [true][predicted].
    confusion: list[list[int]] | None = None


class _OnDevice(nn.Module):
    """Runs the wrapped encoder on ``device`` and hands features back on the CPU.

    :func:`selfsup.models.embed.embed` batches on the CPU; this lets it use a GPU when there is
    one without moving a whole uint8 split to device memory.
    """

    def __init__(self, inner: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.inner = inner.to(device)
        self.device = device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(images.to(self.device, non_blocking=True))
        return out.float().cpu()


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def random_init_encoder(
    pretrain: PretrainParams, seed: int, normalization: Normalization | None = None
) -> Encoder:
    """The trained encoder's architecture (and input statistics) with fresh weights drawn from
    ``seed``.

    The global RNG is forked, so evaluating does not change the random stream of the caller.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = build_encoder(pretrain, normalization)
    encoder.eval()
    return encoder


class RawPixels(nn.Module):
    """The pixels as features: ``[N,3,H,W]`` uint8 → ``[N, 3·H·W]`` in [0, 1], minus the train
    split's per-pixel mean (what a kNN or linear probe on the images themselves sees)."""

    def __init__(self, mean: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.flatten().float())

    @classmethod
    def of(cls, train: Split, batch: int = 4096) -> RawPixels:
        """Centred on ``train``'s mean image (summed in float64, a batch at a time)."""
        total = torch.zeros(train.images[0].numel(), dtype=torch.float64)
        for start in range(0, len(train), batch):
            total += train.images[start : start + batch].flatten(1).double().sum(0)
        return cls((total / max(len(train), 1) / 255.0).float())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean = self.get_buffer("mean")
        return images.flatten(1).float().div(255.0) - mean


FLOORS = ("random_init", "raw_pixels")


def _num_classes(class_names: list[str], *splits: Split) -> int:
    """Classes named by the dataset, widened if a label lies beyond the names."""
    top = max((int(s.labels.max()) for s in splits if len(s)), default=-1)
    return max(len(class_names), top + 1)


def evaluate_encoder(
    encoder: nn.Module,
    train: Split,
    test: Split,
    params: EvaluateParams,
    *,
    labeled: bool,
    num_classes: int,
    device: torch.device | None = None,
    desc: str | None = None,
) -> EncoderEvaluation:
    """Embed both splits with ``encoder`` and compute every metric the data allows (``desc``:
    the name its progress is shown under)."""
    # The wrapper takes the encoder's mode: embed() restores the mode it found, and a wrapper left
    # in train mode would put the caller's encoder (and its BatchNorm updates) into train mode.
    runner = _OnDevice(encoder, device or _device()).train(encoder.training)
    train_f = embed(runner, train.images, params.batch_size, desc and f"{desc}: embed train")
    test_f = embed(runner, test.images, params.batch_size, desc and f"{desc}: embed test")
    rank = rankme(
        train_f if len(train_f) else test_f, max_samples=params.rankme_samples, seed=params.seed
    )
    if not labeled:
        return EncoderEvaluation(train_f, test_f, rank)
    knn = knn_classify(
        train_f,
        train.labels,
        test_f,
        num_classes=num_classes,
        k=params.knn_k,
        temperature=params.knn_temperature,
        batch_size=params.batch_size,
    )
    probe = fit_linear_probe(
        train_f,
        train.labels,
        num_classes=num_classes,
        epochs=params.probe_epochs,
        weight_decay=params.probe_weight_decay,
    )
    proba = probe.predict_proba(test_f)
    predicted = proba.argmax(dim=1)
    return EncoderEvaluation(
        train_features=train_f,
        test_features=test_f,
        rankme=rank,
        knn_top1=top1_accuracy(knn.predictions, test.labels),
        knn_k=knn.k,
        per_class=per_class_accuracy(knn.predictions, test.labels, num_classes),
        linear_top1=top1_accuracy(predicted, test.labels),
        calibration=expected_calibration_error(proba, test.labels, params.ece_bins),
        confusion=confusion_matrix(predicted, test.labels, num_classes),
    )


def _encoder_metrics(result: EncoderEvaluation) -> dict[str, float]:
    out = {"rankme": result.rankme.value}
    if result.knn_top1 is not None:
        out["knn_top1"] = result.knn_top1
    if result.linear_top1 is not None:
        out["linear_top1"] = result.linear_top1
    if result.calibration is not None:
        out["linear_ece"] = result.calibration.ece
    return out


def _per_class_dict(values: list[float], class_names: list[str]) -> dict[str, float]:
    """Class name → accuracy, without classes absent from the test split (NaN is not JSON)."""
    names = [class_names[i] if i < len(class_names) else str(i) for i in range(len(values))]
    return {n: v for n, v in zip(names, values, strict=True) if not math.isnan(v)}


def build_metrics(
    trained: EncoderEvaluation,
    random: EncoderEvaluation,
    params: EvaluateParams,
    *,
    labeled: bool,
    num_classes: int,
    class_names: list[str],
    raw: EncoderEvaluation | None = None,
) -> dict[str, Any]:
    """The ``metrics.json`` content (see the module docstring of :mod:`selfsup.evaluate`)."""
    metrics: dict[str, Any] = {
        "labeled": labeled,
        "trained": _encoder_metrics(trained),
        "random_init": _encoder_metrics(random),
        "rankme_gain_over_random": trained.rankme.value - random.rankme.value,
        "rankme_samples": trained.rankme.samples,
        "num_train": len(trained.train_features),
        "num_test": len(trained.test_features),
        "feature_dim": int(trained.train_features.shape[1]),
    }
    if labeled:
        assert trained.knn_top1 is not None and random.knn_top1 is not None
        assert trained.linear_top1 is not None and random.linear_top1 is not None
        assert trained.per_class is not None and random.per_class is not None
        metrics.update(
            knn_gain_over_random=trained.knn_top1 - random.knn_top1,
            linear_gain_over_random=trained.linear_top1 - random.linear_top1,
            knn_k=trained.knn_k,
            knn_temperature=params.knn_temperature,
            num_classes=num_classes,
            per_class_knn_top1={
                "trained": _per_class_dict(trained.per_class, class_names),
                "random_init": _per_class_dict(random.per_class, class_names),
            },
        )
    if raw is not None:
        metrics["raw_pixels"] = _encoder_metrics(raw)
    if labeled:
        for key in ("knn_top1", "linear_top1"):
            floor = max((f for f in FLOORS if f in metrics), key=lambda f: metrics[f][key])
            metrics[f"{key.split('_')[0]}_floor"] = floor
            gain = metrics["trained"][key] - metrics[floor][key]
            metrics[f"{key.split('_')[0]}_gain_over_floor"] = gain
    return metrics


def report_header(params: EvaluateParams, run_id: str = "") -> ReportHeader:
    """The report's header: ``run_id`` (else ``$SELFSUP_RUN_ID``), now in UTC (or
    ``$SOURCE_DATE_EPOCH``), the code revision of this package and the params' digest."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    when = (
        dt.datetime.fromtimestamp(int(epoch), dt.UTC)
        if epoch.isdigit()
        else dt.datetime.now(dt.UTC)
    )
    return ReportHeader(
        run=run_id or os.environ.get(RUN_ID_ENV, ""),
        date=when.strftime("%Y-%m-%d %H:%M:%S UTC"),
        code_revision=code_revision(Path(selfsup.__file__).resolve().parent),
        params_digest=params_digest(params.model_dump(mode="json")),
    )


def _report_data(
    trained: EncoderEvaluation,
    random: EncoderEvaluation,
    metrics: dict[str, Any],
    test: Split,
    *,
    model_dir: Path,
    lineage: dict[str, str],
    class_names: list[str],
    params: EvaluateParams,
    run_id: str,
) -> ReportData:
    features, labels = trained.test_features, test.labels
    if len(features) == 0:  # no test split to draw: show the training embeddings instead
        features = trained.train_features
        labels = torch.full((len(features),), -1, dtype=torch.long)
    coords, idx = pca_2d(features, params.projection_points, params.seed)
    losses, loss_note = load_loss_curve(model_dir)
    per_class = reliability = None
    if trained.per_class is not None and random.per_class is not None:
        per_class = {"trained": trained.per_class, "random_init": random.per_class}
    if trained.calibration is not None and random.calibration is not None:
        reliability = {"trained": trained.calibration, "random_init": random.calibration}
    return ReportData(
        metrics=metrics,
        lineage=lineage,
        class_names=class_names,
        loss_per_epoch=losses,
        loss_note=loss_note,
        projection=coords,
        projection_labels=labels[idx],
        per_class=per_class,
        reliability=reliability,
        header=report_header(params, run_id),
    )


def run(
    dataset: Path, model: Path, *, params: EvaluateParams, out: Path, run_id: str = ""
) -> dict[str, Any]:
    """Evaluate the encoder in ``model`` on ``dataset``; write ``out`` (replaced atomically,
    manifest kind ``evaluation``). Returns the metrics. ``run_id`` names the run in the report's
    header (default ``$SELFSUP_RUN_ID``)."""
    model_dir, data_dir, out = Path(model), Path(dataset), Path(out)
    encoder, model_manifest = load_encoder(model_dir)
    data_manifest = read_dataset_manifest(data_dir)  # verifies every shard once
    train = load_split(data_dir, "train", verify=False)
    test = load_split(data_dir, "test", verify=False)
    if len(train) == 0:
        raise DataError(f"{data_dir}: the train split is empty; nothing to evaluate")
    pretrain = PretrainParams.model_validate(model_manifest["params"])
    class_names = [str(c) for c in data_manifest.get("class_names") or []]
    labeled = train.labeled and test.labeled
    num_classes = _num_classes(class_names, train, test) if labeled else len(class_names)
    device = _device()
    encoders: dict[str, Callable[[], nn.Module]] = {
        "trained": lambda: encoder,
        "random_init": lambda: random_init_encoder(pretrain, params.seed, encoder.normalization),
        "raw_pixels": lambda: RawPixels.of(train),
    }
    results = {}
    for i, (name, make) in enumerate(encoders.items(), 1):
        started, desc = time.perf_counter(), f"evaluate {name} ({i}/{len(encoders)})"
        results[name] = evaluate_encoder(
            make(), train, test, params, labeled=labeled, num_classes=num_classes, device=device,
            desc=desc,
        )  # fmt: skip
        logger.info("%s: done in %.1f s", desc, time.perf_counter() - started)
    metrics = build_metrics(
        results["trained"],
        results["random_init"],
        params,
        labeled=labeled,
        num_classes=num_classes,
        class_names=class_names,
        raw=results["raw_pixels"],
    )
    lineage = {
        "model": str(model_manifest["content_hash"]),
        "data": str(data_manifest["content_hash"]),
        "model_dir": str(model_dir),
        "data_dir": str(data_dir),
        "encoder": pretrain.encoder,
        "device": device.type,
    }
    report = _report_data(
        results["trained"],
        results["random_init"],
        metrics,
        test,
        model_dir=model_dir,
        lineage=lineage,
        class_names=class_names,
        params=params,
        run_id=run_id,
    )
    with atomic_directory(out) as tmp:
        atomic_write_json(tmp / METRICS_NAME, metrics)
        if results["trained"].confusion is not None:
            names = [class_names[i] if i < len(class_names) else str(i) for i in range(num_classes)]
            confusion = {"categories": names, "matrix": results["trained"].confusion}
            atomic_write_json(tmp / CONFUSION_NAME, confusion)
        write_report(tmp, report)
        write_manifest(
            tmp,
            EVALUATION_KIND,
            params.model_dump(),
            model=lineage["model"],
            data=lineage["data"],
            device=device.type,
        )
    return metrics
