"""The evaluate stage end to end on a tiny dataset and a tiny (untrained) encoder; its report
as a browser shows it (Debian's headless Chromium)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.config import EvaluateParams, PretrainParams
from selfsup.data.shards import Split, write_dataset
from selfsup.evaluate import stage
from selfsup.models.artifact import save_encoder
from selfsup.models.encoders import build_encoder
from selfsup.store import read_manifest

PARAMS = EvaluateParams(knn_k=5, probe_epochs=10, projection_points=32, batch_size=16)


def _split(n: int, labeled: bool, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 3 if labeled else torch.full((n,), -1, dtype=torch.long)
    return Split(images=images, labels=labels)


def _dataset(root: Path, labeled: bool) -> Path:
    write_dataset(
        root,
        {"train": _split(60, labeled, 0), "test": _split(30, labeled, 1)},
        source="synthetic",
        class_names=["a", "b", "c"] if labeled else [],
        params={},
    )
    return root


def _model(root: Path, loss_curve: bool) -> Path:
    """A width-4 ConvNet saved like the pretrain stage does, with its loss curve if asked."""
    params = PretrainParams(convnet_width=4, projector_hidden=8, projector_out=4)
    torch.manual_seed(123)
    if loss_curve:  # written before save_encoder, so the manifest lists it
        root.mkdir(parents=True)
        (root / "metrics.json").write_text(json.dumps({"loss_per_epoch": [5.0, 4.2, 3.9]}))
    save_encoder(root, build_encoder(params), params)
    return root


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return _model(tmp_path / "model", loss_curve=True)


def _assert_self_contained(page: str) -> None:
    assert "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in page and "<script" not in page


def _fraction(value: Any) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


def _canonical_digest(params: dict[str, Any]) -> str:
    """The params digest, computed here independently of the code under test."""
    return hashlib.sha256(
        json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _header_text(page: str) -> str:
    match = re.search(r'<header id="report-header">(.*?)</header>', page, re.S)
    assert match, "the report has no header"
    return re.sub(r"<[^>]+>", " ", match.group(1))


def _headline_numbers(metrics: dict[str, Any]) -> list[str]:
    """What the header must show, formatted from metrics.json: each trained value and the gain
    over the stronger floor the metrics record (RankMe: over the higher of the two floors)."""
    shown = [f"{metrics['trained'][k]:.4f}" for k in sorted(metrics["trained"])]
    if metrics["labeled"]:
        shown += [f"{metrics[f'{k}_gain_over_floor']:+.4f}" for k in ("knn", "linear")]
    floors = [metrics[f]["rankme"] for f in ("random_init", "raw_pixels") if f in metrics]
    return [*shown, f"{metrics['trained']['rankme'] - max(floors):+.4f}"]


def test_labeled(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFSUP_CODE_REVISION", "0123abc-test")
    monkeypatch.setenv("SELFSUP_RUN_ID", "from-the-environment")
    data = _dataset(tmp_path / "data", labeled=True)
    out = tmp_path / "eval"
    metrics = stage.run(data, model_dir, params=PARAMS, out=out, run_id="run-7")

    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert metrics["labeled"] is True
    for enc in ("trained", "random_init"):
        assert set(metrics[enc]) == {"knn_top1", "linear_top1", "linear_ece", "rankme"}
        assert _fraction(metrics[enc]["knn_top1"])
        assert _fraction(metrics[enc]["linear_top1"])
        assert _fraction(metrics[enc]["linear_ece"])
        assert 1.0 <= metrics[enc]["rankme"] <= metrics["feature_dim"]
        assert set(metrics["per_class_knn_top1"][enc]) == {"a", "b", "c"}
    assert metrics["knn_gain_over_random"] == pytest.approx(
        metrics["trained"]["knn_top1"] - metrics["random_init"]["knn_top1"]
    )
    assert set(metrics["raw_pixels"]) == {"knn_top1", "linear_top1", "linear_ece", "rankme"}
    for key, short in (("knn_top1", "knn"), ("linear_top1", "linear")):
        floors = {f: metrics[f][key] for f in ("random_init", "raw_pixels")}
        assert metrics[f"{short}_floor"] == max(floors, key=floors.__getitem__)
        assert metrics[f"{short}_gain_over_floor"] == pytest.approx(
            metrics["trained"][key] - max(floors.values())
        )
    assert metrics["rankme_samples"] == 60
    assert metrics["knn_k"] == 5
    assert (metrics["num_train"], metrics["num_test"], metrics["num_classes"]) == (60, 30, 3)
    assert metrics["feature_dim"] == 32

    page = (out / "report.html").read_text()
    _assert_self_contained(page)
    assert page.count("<img") == 5  # loss, comparison, projection, per-class, reliability
    assert "is missing" not in page
    csv_lines = (out / "plots" / "per_class.csv").read_text().splitlines()
    assert csv_lines[0] == "class,trained,random_init" and len(csv_lines) == 4

    manifest = read_manifest(out, kind="evaluation")  # verifies every checksum
    assert manifest["model"] == read_manifest(model_dir)["content_hash"]
    assert manifest["data"] == read_manifest(data)["content_hash"]
    assert {"metrics.json", "report.html", "plots/per_class.csv"} <= set(manifest["files"])
    assert manifest["params"] == PARAMS.model_dump()

    header = _header_text(page)  # the run (the argument wins over $SELFSUP_RUN_ID), revision,
    assert "run-7" in header and "from-the-environment" not in header  # params, numbers
    assert "0123abc-test" in header
    assert f"sha256:{_canonical_digest(manifest['params'])}" in header
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", header)
    for number in _headline_numbers(metrics):
        assert number in header, number
    assert manifest["model"] in header and manifest["data"] in header


def test_deterministic_and_replaces_output(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # the header's date, else "now"
    data = _dataset(tmp_path / "data", labeled=True)
    first = stage.run(data, model_dir, params=PARAMS, out=tmp_path / "eval")
    first_page = (tmp_path / "eval" / "report.html").read_bytes()
    second = stage.run(data, model_dir, params=PARAMS, out=tmp_path / "eval")
    assert first == second
    assert (tmp_path / "eval" / "report.html").read_bytes() == first_page
    assert b"2023-11-14 22:13:20 UTC" in first_page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "eval", "model"]


def test_unlabeled_computes_rankme_only(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "data", labeled=False)
    model_dir = _model(tmp_path / "model", loss_curve=False)
    out = tmp_path / "eval"
    metrics = stage.run(data, model_dir, params=PARAMS, out=out)

    assert metrics["labeled"] is False
    assert set(metrics["trained"]) == {"rankme"} and set(metrics["random_init"]) == {"rankme"}
    assert "knn_gain_over_random" not in metrics and "per_class_knn_top1" not in metrics
    page = (out / "report.html").read_text()
    _assert_self_contained(page)
    assert "Unlabeled data" in page
    assert "is missing" in page  # no pretraining loss curve, and the page says so
    assert not (out / "plots").exists()
    read_manifest(out, kind="evaluation")
    header = _header_text(page)
    assert "RankMe" in header and "kNN top-1" not in header  # only what was computed
    for number in _headline_numbers(metrics):
        assert number in header, number


@pytest.mark.parametrize("training", [False, True])
def test_evaluate_encoder_leaves_the_encoders_mode_and_batchnorm_alone(training: bool) -> None:
    torch.manual_seed(0)
    encoder = build_encoder(PretrainParams(convnet_width=4)).train(training)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    images = torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8)
    split = Split(images=images, labels=torch.arange(24) % 2)
    params = EvaluateParams(knn_k=3, probe_epochs=2, batch_size=8)
    stage.evaluate_encoder(encoder, split, split, params, labeled=True, num_classes=2)
    assert encoder.training is training
    for name, value in encoder.state_dict().items():  # no running-statistics update
        assert torch.equal(value, before[name]), name


def test_raw_pixels_are_the_mean_centred_images() -> None:
    """Against an explicit per-image, per-value loop in float64."""
    split = _split(7, True, 3)
    raw = stage.RawPixels.of(split, batch=3)  # batches that do not divide the split
    features = raw(split.images)
    flat = [[float(v) / 255.0 for v in image.flatten().tolist()] for image in split.images]
    mean = [sum(column) / len(flat) for column in zip(*flat, strict=True)]
    expected = torch.tensor([[v - m for v, m in zip(row, mean, strict=True)] for row in flat])
    torch.testing.assert_close(features.double(), expected.double(), rtol=0, atol=1e-6)


def test_no_gain_is_claimed_over_raw_pixels_that_separate_the_classes(
    tmp_path: Path, model_dir: Path
) -> None:
    """Classes that differ only in colour: raw pixels separate them perfectly, so the stronger
    floor scores 1.0 and the untrained encoder's gain over it cannot be positive."""
    g = torch.Generator().manual_seed(0)
    colours = torch.tensor([[220, 30, 30], [30, 200, 40], [40, 60, 230]], dtype=torch.uint8)

    def split(n: int) -> Split:
        labels = torch.arange(n) % 3
        noise = torch.randint(0, 20, (n, 3, 16, 16), dtype=torch.uint8, generator=g)
        images = colours[labels][:, :, None, None].expand(n, 3, 16, 16) // 2 + noise
        return Split(images=images.contiguous(), labels=labels)

    root = tmp_path / "colours"
    write_dataset(root, {"train": split(60), "test": split(30)}, source="synthetic",
                  class_names=["r", "g", "b"], params={})  # fmt: skip
    metrics = stage.run(root, model_dir, params=PARAMS, out=tmp_path / "eval")
    assert metrics["raw_pixels"]["knn_top1"] == 1.0
    assert metrics[metrics["knn_floor"]]["knn_top1"] == 1.0  # raw pixels, or a tie with them
    assert metrics["knn_gain_over_floor"] <= 0.0


CHROMIUM = "chromium-headless-shell"
WINDOW = (1200, 1800)
# Appended to a copy of the page (the report itself has no script): once the page has loaded,
# write what the browser made of every <img> into the DOM that --dump-dom prints.
_PROBE = (
    '<script>window.addEventListener("load", () => { const p = document.createElement("pre");'
    ' p.id = "probe"; p.textContent = JSON.stringify(Array.from(document.images, i =>'
    " ({complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})));"
    " document.body.appendChild(p); });</script>"
)


def _chromium() -> str:
    """Debian's headless Chromium; missing, the test fails saying how to install it (``make
    test`` installs it through ``make system-deps``)."""
    path = shutil.which(CHROMIUM)
    if path is not None:
        return path
    reason = (
        f"{CHROMIUM} is not installed: run `make system-deps` (apt-installs Debian's "
        f"{CHROMIUM}); `make test` does it for you"
    )
    pytest.fail(reason)


def _browse(chromium: str, profile: Path, *args: str) -> str:
    # No sandbox: the page is our own local file, and Chromium's sandbox cannot start as root
    # or in a container without user namespaces.
    command = [chromium, "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={profile}", *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr[-2000:]}"
    return done.stdout


class _Dom(HTMLParser):
    """The header's text, every <img>'s src and the probe's text of a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.header: list[str] = []
        self.images: list[str] = []
        self.probe = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "header" and values.get("id") == "report-header":
            self._in = "header"
        elif tag == "pre" and values.get("id") == "probe":
            self._in = "probe"
        elif tag == "img":
            self.images.append(values.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("header", "pre"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "header":
            self.header.append(data)
        elif self._in == "probe":
            self.probe += data


def test_the_report_renders_in_headless_chromium(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page a person opens: Chromium loads it, every image decodes (in the browser and in
    PIL, to the same size), the header names the run, revision and params and shows the
    headline numbers, and the screenshot is the requested size and not blank."""
    chromium = _chromium()
    monkeypatch.setenv("SELFSUP_RUN_ID", "kfp-run-1234")
    monkeypatch.setenv("SELFSUP_CODE_REVISION", "feedbeef-screenshot")
    data = _dataset(tmp_path / "data", labeled=True)
    out = tmp_path / "eval"
    metrics = stage.run(data, model_dir, params=PARAMS, out=out)
    report = out / "report.html"
    page = report.read_text()

    shot = tmp_path / "report.png"
    _browse(chromium, tmp_path / "profile", f"--screenshot={shot}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}", report.as_uri())  # fmt: skip
    with Image.open(shot) as image:
        image.load()
    assert image.format == "PNG" and image.size == WINDOW
    gray = np.asarray(image.convert("L"), dtype=np.float64)
    assert gray.std() > 20, "the screenshot is blank"
    assert gray[:300].std() > 10, "nothing drawn where the header is"

    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", _PROBE + "</body>"))
    dom = _Dom()
    dom.feed(_browse(chromium, tmp_path / "profile", "--dump-dom", probe.as_uri()))
    header = " ".join(dom.header)
    assert "selfsup evaluation report" in header
    assert "kfp-run-1234" in header and "feedbeef-screenshot" in header
    manifest = read_manifest(out, kind="evaluation")
    assert f"sha256:{_canonical_digest(manifest['params'])}" in header
    for number in _headline_numbers(metrics):
        assert number in header, number

    loaded = json.loads(dom.probe)
    assert len(dom.images) == len(loaded) == page.count("<img") == 5
    for src, seen in zip(dom.images, loaded, strict=True):
        assert seen["complete"] and seen["width"] > 0 and seen["height"] > 0, seen
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        with Image.open(io.BytesIO(base64.b64decode(src[len(prefix) :]))) as decoded:
            decoded.load()
        assert decoded.size == (seen["width"], seen["height"])
