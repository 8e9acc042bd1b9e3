"""``report.html``: one self-contained page a person can open from any artifact store.

Every plot is a PNG embedded as a base64 data URI and the style sheet is inline, so the page has
no external assets and survives being copied out of a DVC cache, a KFP artifact bucket or an
e-mail. Figures are drawn with matplotlib's object API on the Agg renderer (no pyplot global
state, no display needed). The plotted numbers are also written as CSV under ``plots/`` for
``dvc plots``.

The page opens with a header: the run that produced it (the stage's ``run_id``, else
``$SELFSUP_RUN_ID``, the run the Prometheus push is grouped by), the date (UTC; fixed by
``$SOURCE_DATE_EPOCH`` when set, for a byte-identical page), the code revision
(``$SELFSUP_CODE_REVISION`` or the checkout's git commit), the sha256 of the evaluate params it
ran with (:func:`selfsup.store.manifest.params_digest` of the manifest's ``params``), and the
headline numbers of :mod:`selfsup.evaluate.summary` (trained, both floors, the gain over the
stronger one).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from selfsup.evaluate.calibration import Calibration
from selfsup.evaluate.summary import summary_rows
from selfsup.observe.metrics import flatten_metrics
from selfsup.store import atomic_write_bytes

REPORT_NAME = "report.html"
PLOTS_DIR = "plots"
ENCODERS = ("trained", "random_init")
_LABELS = {"trained": "trained", "random_init": "random init", "raw_pixels": "raw pixels"}


@dataclass(frozen=True)
class ReportHeader:
    """Where the numbers come from: shown on top of the page."""

    run: str  # the run id ("" when none was given)
    date: str  # when the report was rendered, UTC
    code_revision: str
    params_digest: str  # sha256 (hex) of the canonical evaluate params


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows; built by :func:`selfsup.evaluate.stage.run`.

    ``per_class`` and ``reliability`` map an encoder name (``trained``, ``random_init``) to its
    per-class kNN accuracies / probe calibration and are ``None`` for unlabeled data.
    ``projection`` is ``[P, 2]`` with ``projection_labels`` ``[P]`` (-1: unlabeled).
    """

    metrics: Mapping[str, Any]
    lineage: Mapping[str, str]
    class_names: list[str]
    loss_per_epoch: list[float] | None
    loss_note: str
    projection: torch.Tensor | None
    projection_labels: torch.Tensor | None
    per_class: Mapping[str, list[float]] | None
    reliability: Mapping[str, Calibration] | None
    header: ReportHeader


def load_loss_curve(model_dir: Path) -> tuple[list[float] | None, str]:
    """The pretraining loss per epoch from ``model_dir/metrics.json``, or ``None`` and why not."""
    path = Path(model_dir) / "metrics.json"
    if not path.is_file():
        return None, f"no pretraining loss curve: {path.name} is missing in the model directory"
    try:
        raw = json.loads(path.read_text())
        losses = [float(v) for v in raw["loss_per_epoch"]]
    except (ValueError, TypeError, KeyError) as exc:
        return None, f"no pretraining loss curve: {path.name} has no usable loss_per_epoch ({exc})"
    if not losses:
        return None, "no pretraining loss curve: loss_per_epoch is empty"
    return losses, ""


@torch.no_grad()
def pca_2d(features: torch.Tensor, points: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Project a seeded subset of ≤ ``points`` rows onto the top two principal axes.

    Returns ``(coords [P, 2], row indices [P])``. Exact SVD of the centred subset (P ≤ a few
    thousand, cheap) in float64; each axis's sign is fixed so its largest loading is positive,
    making the picture identical across runs and platforms.
    """
    n = len(features)
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randperm(n, generator=generator)[:points] if n > points else torch.arange(n)
    x = features[idx.to(features.device)].double().cpu()
    x = x - x.mean(dim=0)
    coords = torch.zeros(len(x), 2, dtype=torch.float64)
    if len(x) >= 2 and x.shape[1] >= 1:
        _, _, vh = torch.linalg.svd(x, full_matrices=False)
        axes = vh[:2]
        rows = torch.arange(len(axes))
        signs = torch.sign(axes[rows, axes.abs().argmax(dim=1)])
        axes = axes * torch.where(signs == 0, torch.ones_like(signs), signs)[:, None]
        coords[:, : len(axes)] = x @ axes.T
    return coords, idx


def _png(fig: Any) -> str:
    """The figure as a ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float = 6.0, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure  # lazy: keeps `import selfsup.evaluate` light

    return Figure(figsize=(width, height))


def _loss_plot(losses: list[float]) -> str:
    fig = _figure()
    ax = fig.subplots()
    from matplotlib.ticker import MaxNLocator

    ax.plot(range(1, len(losses) + 1), losses, marker="o")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no "1.5" tick
    ax.set(xlabel="epoch", ylabel="contrastive loss", title="Pretraining loss")
    ax.grid(alpha=0.3)
    return _png(fig)


def _comparison_plot(metrics: Mapping[str, Any]) -> str:
    """Trained vs the floors (random init, raw pixels) as bars: accuracies (0..1) on one axis,
    RankMe on its own scale."""
    names = [k for k in ("knn_top1", "linear_top1") if k in metrics["trained"]]
    shown = [e for e in ("trained", "random_init", "raw_pixels") if e in metrics]
    fig = _figure(8.0, 3.6)
    ax_acc, ax_rank = fig.subplots(1, 2, gridspec_kw={"width_ratios": [max(len(names), 1), 1]})
    width = 0.8 / len(shown)
    for offset, enc in ((width * (i - (len(shown) - 1) / 2), e) for i, e in enumerate(shown)):
        values = [metrics[enc][k] for k in names]
        ax_acc.bar([i + offset for i in range(len(names))], values, width, label=_LABELS[enc])
        ax_rank.bar([offset], [metrics[enc]["rankme"]], width, label=_LABELS[enc])
    ax_acc.set_xticks(range(len(names)), [n.replace("_", " ") for n in names])
    ax_acc.set(ylim=(0, 1.15), ylabel="test accuracy", title="Accuracy (trained vs floor)")
    if not names:
        ax_acc.text(
            0.5,
            0.5,
            "unlabeled data: no accuracy",
            ha="center",
            va="center",
            transform=ax_acc.transAxes,
        )
    ax_acc.legend(loc="upper center", ncols=2, fontsize="small")
    ax_rank.set_xticks([0], ["RankMe"])
    ax_rank.set(title="Effective rank")
    return _png(fig)


def _projection_plot(coords: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> str:
    fig = _figure(6.0, 5.0)
    ax = fig.subplots()
    xy = coords.numpy()
    lab = labels.cpu().numpy()
    if bool((labels < 0).all()):
        ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.6, color="grey")
    else:
        present = sorted({int(v) for v in lab.tolist()})
        cmap = _colormap(len(present))
        for i, cls in enumerate(present):
            mask = lab == cls
            name = class_names[cls] if 0 <= cls < len(class_names) else str(cls)
            ax.scatter(xy[mask, 0], xy[mask, 1], s=6, alpha=0.7, color=cmap(i), label=name)
        if len(present) <= 20:
            ax.legend(markerscale=3, fontsize="small", loc="best")
    ax.set(xlabel="PC 1", ylabel="PC 2", title="Test embeddings (trained encoder, PCA)")
    return _png(fig)


def _colormap(n: int) -> Any:
    """``color(i)`` for class i of n: tab10/tab20's distinct colours, viridis beyond 20."""
    from matplotlib import colormaps

    if n <= 20:
        listed = colormaps["tab10" if n <= 10 else "tab20"]
        return lambda i: listed(i)
    return lambda i: colormaps["viridis"](i / (n - 1))


def _per_class_plot(per_class: Mapping[str, list[float]], class_names: list[str]) -> str:
    n = len(per_class["trained"])
    fig = _figure(max(6.0, 0.45 * n + 2), 3.6)
    ax = fig.subplots()
    width = 0.38
    for offset, enc in ((-width / 2, "trained"), (width / 2, "random_init")):
        values = [0.0 if math.isnan(v) else v for v in per_class[enc]]
        ax.bar([i + offset for i in range(n)], values, width, label=_LABELS[enc])
    ax.set_xticks(range(n), _names(class_names, n), rotation=45, ha="right")
    ax.set(ylim=(0, 1.15), ylabel="kNN top-1", title="Per-class kNN accuracy (test)")
    ax.legend(loc="upper center", ncols=2, fontsize="small")
    return _png(fig)


def _reliability_plot(reliability: Mapping[str, Calibration]) -> str:
    fig = _figure(8.0, 3.8)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, enc in zip(axes, ENCODERS, strict=True):
        cal = reliability[enc]
        bins = cal.bins
        centers = [(b.lower + b.upper) / 2 for b in bins]
        accs = [0.0 if b.count == 0 else b.accuracy for b in bins]
        ax.bar(
            centers,
            accs,
            width=bins[0].upper - bins[0].lower,
            edgecolor="black",
            alpha=0.7,
            label="accuracy",
        )
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1),
            xlabel="confidence",
            title=f"{_LABELS[enc]} probe (ECE {cal.ece:.3f})",
        )
        ax.legend(fontsize="small", loc="upper left")
    axes[0].set_ylabel("accuracy")
    return _png(fig)


def _names(class_names: list[str], n: int) -> list[str]:
    return [class_names[i] if i < len(class_names) else str(i) for i in range(n)]


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(_format(v))}</td></tr>" for k, v in rows
    )
    return f"<table><tr><th>name</th><th>value</th></tr>{body}</table>"


def _section(title: str, content: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{content}</section>"


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _header(data: ReportData) -> str:
    """The run, date, code revision and params digest, then the headline numbers."""
    head = data.header
    facts = [
        ("run", head.run or "not recorded (no $SELFSUP_RUN_ID)"),
        ("date", head.date),
        ("code revision", head.code_revision),
        ("params digest", f"sha256:{head.params_digest}"),
        ("model", data.lineage.get("model", "")),
        ("data", data.lineage.get("data", "")),
    ]
    run = "".join(
        f'<tr><th scope="row">{html.escape(k)}</th><td><code>{html.escape(v)}</code></td></tr>'
        for k, v in facts
    )
    cells = []
    for row in summary_rows(data.metrics):
        raw = "-" if row.raw_pixels is None else f"{row.raw_pixels:.4f}"
        cells.append(
            f'<tr><th scope="row">{html.escape(row.label)}</th><td>{row.trained:.4f}</td>'
            f"<td>{row.random_init:.4f}</td><td>{raw}</td><td>{row.gain:+.4f}</td>"
            f"<td>{_LABELS[row.floor]}</td></tr>"
        )
    headline = (
        '<table class="headline"><tr><th>metric</th><th>trained</th><th>random init</th>'
        "<th>raw pixels</th><th>gain over the stronger floor</th><th>stronger floor</th></tr>"
        + "".join(cells)
        + "</table>"
    )
    note = (
        "ECE: lower is better, so its gain is over the lower floor (a positive gain is worse "
        "calibrated); RankMe is label-free."
    )
    return (
        '<header id="report-header"><h1>selfsup evaluation report</h1>'
        f'<table class="run">{run}</table>'
        f'<h2>Headline</h2>{headline}<p class="small">{html.escape(note)}</p></header>'
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; }
th { background: #f3f3f3; text-align: left; } img { max-width: 100%; }
.note { color: #a33; } .small { font-size: 0.85em; color: #555; }
table.run th { width: 9em; } table.headline td { text-align: right; }
header { border-bottom: 2px solid #888; padding-bottom: 0.5em; }
"""


def render_report(data: ReportData) -> str:
    """The complete HTML page (a string with every image inlined)."""
    metrics = data.metrics
    sections = []
    if data.loss_per_epoch is not None:
        sections.append(
            _section(
                "Pretraining", _img(_loss_plot(data.loss_per_epoch), "pretraining loss per epoch")
            )
        )
    else:
        sections.append(_section("Pretraining", _note(data.loss_note)))
    intro = (
        "Two floors, evaluated identically: random init is the same architecture with freshly "
        "initialised weights, raw pixels the images themselves (mean-centred). Pretraining has "
        "to beat the stronger of the two."
    )
    comparison = f"<p>{html.escape(intro)}</p>" + _img(
        _comparison_plot(metrics), "trained vs the floors (random init, raw pixels)"
    )
    if not metrics.get("labeled", False):
        comparison += _note(
            "Unlabeled data (some or all labels are -1): only the label-free RankMe was computed."
        )
    sections.append(_section("Trained vs the floors", comparison))
    if data.projection is not None and data.projection_labels is not None:
        sections.append(
            _section(
                "Embedding projection",
                _img(
                    _projection_plot(data.projection, data.projection_labels, data.class_names),
                    "PCA projection of test embeddings",
                ),
            )
        )
    if data.per_class is not None:
        sections.append(
            _section(
                "Per-class kNN accuracy",
                _img(_per_class_plot(data.per_class, data.class_names), "per-class kNN accuracy"),
            )
        )
    if data.reliability is not None:
        sections.append(
            _section(
                "Linear-probe calibration",
                _img(_reliability_plot(data.reliability), "reliability diagrams"),
            )
        )
    rows = sorted(flatten_metrics(metrics, numbers_only=False).items())
    sections.append(_section("Metrics", _table(rows)))
    sections.append(_section("Lineage", _table(sorted(data.lineage.items()))))
    title = "selfsup evaluation" + (f" — {data.header.run}" if data.header.run else "")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + _header(data)
        + "".join(sections)
        + "</body></html>\n"
    )


def _csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _blank_nan(value: float) -> float | str:
    return "" if math.isnan(value) else round(value, 6)


def write_plot_data(root: Path, data: ReportData) -> list[Path]:
    """``plots/per_class.csv`` and ``plots/reliability.csv`` for ``dvc plots`` (labeled data)."""
    written: list[Path] = []
    if data.per_class is not None:
        n = len(data.per_class["trained"])
        rows = [
            [name, _blank_nan(t), _blank_nan(r)]
            for name, t, r in zip(
                _names(data.class_names, n),
                data.per_class["trained"],
                data.per_class["random_init"],
                strict=True,
            )
        ]
        path = Path(root) / PLOTS_DIR / "per_class.csv"
        atomic_write_bytes(path, _csv_bytes(["class", "trained", "random_init"], rows))
        written.append(path)
    if data.reliability is not None:
        rows = [
            [
                enc,
                round((b.lower + b.upper) / 2, 6),
                b.count,
                _blank_nan(b.confidence),
                _blank_nan(b.accuracy),
            ]
            for enc in ENCODERS
            for b in data.reliability[enc].bins
        ]
        path = Path(root) / PLOTS_DIR / "reliability.csv"
        atomic_write_bytes(
            path, _csv_bytes(["encoder", "bin_center", "count", "confidence", "accuracy"], rows)
        )
        written.append(path)
    return written


def write_report(root: Path, data: ReportData) -> Path:
    """Write ``root/report.html`` and the ``plots/`` CSVs; returns the page's path."""
    path = Path(root) / REPORT_NAME
    atomic_write_bytes(path, render_report(data).encode("utf-8"))
    write_plot_data(root, data)
    return path
