"""Prometheus stage metrics (exposition text, unreachable gateway) and byte progress logging."""

from __future__ import annotations

import logging
import math
import socket

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from selfsup.observe.metrics import (
    PushTarget,
    StageRun,
    build_registry,
    flatten_metrics,
    push,
    stage_metrics,
)
from selfsup.observe.progress import Progress


def samples(text: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            label = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{label}}}" if label else "")] = s.value
    return out


NESTED = {
    "trained": {"knn_top1": 0.5, "per_class": {"a": 1, "b": 0}},
    "loss_per_epoch": [4.1, 3.2],
    "labeled": True,
    "note": "dropped",
    "missing": None,
    "diverged": math.nan,
    "ratio": math.inf,
    "images": 10,
}


def test_flatten_metrics_keeps_finite_numbers_as_floats() -> None:
    """What KFP Metrics and Prometheus both take: dotted keys, lists indexed, bools 0/1."""
    flat = flatten_metrics(NESTED)
    assert flat == {
        "trained.knn_top1": 0.5,
        "trained.per_class.a": 1.0,
        "trained.per_class.b": 0.0,
        "loss_per_epoch.0": 4.1,
        "loss_per_epoch.1": 3.2,
        "labeled": 1.0,
        "images": 10.0,
    }
    assert all(type(v) is float for v in flat.values())


def test_flatten_metrics_can_keep_every_leaf() -> None:
    """The evaluation report's table: the same keys, every leaf as it is."""
    flat = flatten_metrics(NESTED, numbers_only=False)
    assert flat["labeled"] is True and flat["images"] == 10 and type(flat["images"]) is int
    assert flat["note"] == "dropped" and flat["missing"] is None
    assert math.isnan(flat["diverged"]) and flat["ratio"] == math.inf
    assert set(flat) == set(flatten_metrics(NESTED)) | {"note", "missing", "diverged", "ratio"}


def test_registry_holds_conventional_names_and_values() -> None:
    run = StageRun(items=300.0, metrics={"trained": {"knn_top1": 0.42}})
    text = generate_latest(build_registry("evaluate", run, 1.5, False, 1_700_000_000.0)).decode()
    got = samples(text)
    assert got["selfsup_stage_duration_seconds"] == 1.5
    assert got["selfsup_stage_items_processed_total"] == 300.0
    assert got["selfsup_stage_throughput_items_per_second"] == 200.0
    assert got["selfsup_stage_failures_total"] == 0.0
    assert got["selfsup_stage_last_completion_timestamp_seconds"] == 1_700_000_000.0
    assert got["selfsup_stage_metric{name=trained.knn_top1}"] == 0.42


def test_an_unreachable_gateway_warns_and_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = PushTarget(f"127.0.0.1:{port}", "p", "r")
    with caplog.at_level(logging.WARNING, "selfsup.observe"):
        ok = push(target, "data", build_registry("data", StageRun(), 1.0, False, 0.0), 1.0)
    assert ok is False and "could not push metrics of data" in caplog.text


def test_stage_metrics_without_a_gateway_pushes_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SELFSUP_PUSHGATEWAY", raising=False)
    with caplog.at_level(logging.DEBUG), stage_metrics("data") as run:
        run.items = 3
    assert "Pushgateway" not in caplog.text


def test_byte_progress_logs_plain_lines_when_not_a_terminal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.INFO, "selfsup"),
        Progress(4_000_000, "upload m", unit="B", log_every_s=0.0) as p,
    ):
        p.update(1_000_000)
        p.update(3_000_000)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("upload m: 1.0/4.0 MB (25%), ")
    assert lines[-1].startswith("upload m: done, 4.0/4.0 MB (100%)")
    assert p.done == 4_000_000


def test_step_progress_logs_at_most_every_interval_with_rate_eta_and_metrics(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off a terminal, on a fake clock: one step per second, a line every 20 s at the most."""
    import selfsup.observe.progress as progress

    clock = iter(float(t) for t in range(1000))
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, "selfsup"), Progress(100, "pretrain epoch 1/5") as bar:
        for step in range(50):
            bar.step(loss=5.0 - step / 100, img_s=256.0)
    lines = [r.getMessage() for r in caplog.records]
    # The clock reads 0 at the start, then once per step: lines at t = 20 and 40, then "done".
    assert len(lines) == 3, lines
    assert lines[0] == (
        "pretrain epoch 1/5: 20/100 steps (20%), 1 steps/s, ETA 1m20s, 0m20s elapsed, "
        "loss 4.81, img_s 256"
    )
    assert lines[1].startswith("pretrain epoch 1/5: 40/100 steps (40%), 1 steps/s, ETA 1m00s")
    assert lines[2].startswith("pretrain epoch 1/5: done, 50/100 steps (50%)")


def test_serve_metrics_exposes_the_running_stage_and_stops() -> None:
    import urllib.request

    from selfsup.observe.metrics import serve_metrics

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with serve_metrics(port, "pretrain", addr="127.0.0.1"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            got = samples(response.read().decode())
        assert got["selfsup_stage_running{stage=pretrain}"] == 1.0
        assert got["selfsup_stage_start_timestamp_seconds{stage=pretrain}"] > 1.6e9
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


@pytest.mark.parametrize("address", ["http://[bad", "http://host:notaport"])
def test_a_malformed_gateway_address_warns_and_the_stage_still_succeeds(
    address: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Metrics never fail a stage: a malformed $SELFSUP_PUSHGATEWAY is a warning after the
    stage's work, not a ValueError traceback that fails a stage whose output was written."""
    monkeypatch.setenv("SELFSUP_PUSHGATEWAY", address)
    with caplog.at_level(logging.WARNING, "selfsup.observe"), stage_metrics("data") as run:
        run.items = 3
    assert "could not push metrics of data" in caplog.text
