"""Prometheus metrics of a stage, pushed to a Pushgateway when the stage ends.

A batch stage lives shorter than a scrape interval, so it pushes: one group per
``{pipeline, run_id, stage}`` (the grouping key), holding

- ``selfsup_stage_duration_seconds``            wall time of the stage
- ``selfsup_stage_items_processed_total``       images (or other items) the stage processed
- ``selfsup_stage_throughput_items_per_second`` items / duration
- ``selfsup_stage_failures_total``              1 when the stage raised, else 0
- ``selfsup_stage_last_completion_timestamp_seconds``  Unix time the stage ended
- ``selfsup_stage_metric{name=...}``            each final metric (:func:`flatten_metrics`)

``SELFSUP_PUSHGATEWAY`` (``host:port``) turns pushing on; ``SELFSUP_PIPELINE`` and
``SELFSUP_RUN_ID`` fill the grouping key (defaults ``local`` and a fresh id);
``SELFSUP_PUSHGATEWAY_USERNAME`` and ``SELFSUP_PUSHGATEWAY_PASSWORD`` (from a Secret) authenticate
to a Pushgateway that requires basic auth. An unreachable
Pushgateway logs a warning and the stage still succeeds: monitoring must not break training.
Long-running training can also serve ``/metrics`` for scraping (:func:`serve_metrics`).
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any, Literal, overload

from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway, start_http_server
from prometheus_client.exposition import basic_auth_handler, default_handler

log = logging.getLogger("selfsup.observe")

PUSHGATEWAY_ENV = "SELFSUP_PUSHGATEWAY"
PIPELINE_ENV = "SELFSUP_PIPELINE"
RUN_ID_ENV = "SELFSUP_RUN_ID"
USERNAME_ENV = "SELFSUP_PUSHGATEWAY_USERNAME"
PASSWORD_ENV = "SELFSUP_PUSHGATEWAY_PASSWORD"
JOB = "selfsup"


@overload
def flatten_metrics(
    metrics: Mapping[str, Any], prefix: str = "", *, numbers_only: Literal[True] = True
) -> dict[str, float]: ...
@overload
def flatten_metrics(
    metrics: Mapping[str, Any], prefix: str = "", *, numbers_only: bool
) -> dict[str, Any]: ...
def flatten_metrics(
    metrics: Mapping[str, Any], prefix: str = "", *, numbers_only: bool = True
) -> dict[str, Any]:
    """Nested metrics as ``{"a.b.c": leaf}``: the one flattening of every metrics consumer.

    Mappings nest with dots and lists are indexed (``loss_per_epoch.0``). With ``numbers_only``
    (KFP Metrics and Prometheus both hold finite numbers) a leaf becomes a float, booleans 0/1,
    and strings, None, NaN and infinities are dropped; otherwise every leaf is kept as it is
    (the evaluation report's table).
    """
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, f"{name}.", numbers_only=numbers_only))
        elif isinstance(value, list | tuple):
            indexed = {str(i): v for i, v in enumerate(value)}
            out.update(flatten_metrics(indexed, f"{name}.", numbers_only=numbers_only))
        elif not numbers_only:
            out[name] = value
        elif isinstance(value, int | float) and math.isfinite(value):  # bool is an int: 1.0
            out[name] = float(value)
    return out


# Items each stage processed, read off its metrics (images, pairs of views, samples forgotten):
# the ``items_processed`` counter and the throughput gauge.
_ITEMS: dict[str, Callable[[Mapping[str, Any]], float]] = {
    "data": lambda m: m.get("images_total") or 0,
    "pretrain": lambda m: m["epochs"] * m["train_images"],
    "evaluate": lambda m: m["num_train"] + m["num_test"],
    "unlearn": lambda m: m["forget_count"],
    "distill": lambda m: m["num_images"],
    "compress": lambda m: m["train_images"],
    "register": lambda m: 1,
}


@dataclass
class StageRun:
    """What a stage reports while it runs; filled in by the caller of :func:`stage_metrics`."""

    items: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)

    def record(self, stage: str, metrics: Mapping[str, Any]) -> None:
        """Keep ``metrics`` and the number of items they say ``stage`` processed."""
        self.metrics = dict(metrics)
        count = _ITEMS.get(stage)
        self.items = float(count(metrics)) if count is not None else 0.0


@dataclass(frozen=True)
class PushTarget:
    gateway: str
    pipeline: str
    run_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, run_id: str | None = None) -> PushTarget | None:
        """The gateway of ``$SELFSUP_PUSHGATEWAY`` (None: pushing is off); ``run_id`` (a KFP
        task's run) wins over ``$SELFSUP_RUN_ID`` and a fresh id."""
        gateway = os.environ.get(PUSHGATEWAY_ENV, "").strip()
        if not gateway:
            return None
        run_id = run_id or os.environ.get(RUN_ID_ENV) or uuid.uuid4().hex[:12]
        pipeline = os.environ.get(PIPELINE_ENV) or "local"
        username = os.environ.get(USERNAME_ENV) or None
        return cls(gateway, pipeline, run_id, username, os.environ.get(PASSWORD_ENV))

    def handler(self) -> Callable[..., Callable[[], None]]:
        """prometheus-client's request handler: basic auth when a username is set."""
        if self.username is None:
            return default_handler
        username, password = self.username, self.password or ""

        def authenticated(
            url: str, method: str, timeout: float | None, headers: Any, data: bytes
        ) -> Callable[[], None]:
            return basic_auth_handler(url, method, timeout, headers, data, username, password)

        return authenticated


def build_registry(
    stage: str, run: StageRun, duration_s: float, failed: bool, now: float
) -> CollectorRegistry:
    """The samples of one stage run, in a fresh registry (nothing global leaks between runs)."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(name, doc, registry=registry).set(value)

    gauge("selfsup_stage_duration_seconds", "Wall time of the stage.", duration_s)
    # Counters: prometheus-client adds the conventional ``_total`` suffix.
    Counter("selfsup_stage_items_processed", "Items the stage processed.", registry=registry).inc(
        run.items
    )
    throughput = run.items / duration_s if duration_s > 0 else 0.0
    gauge("selfsup_stage_throughput_items_per_second", "Items per second.", throughput)
    Counter("selfsup_stage_failures", "Failed runs of the stage.", registry=registry).inc(
        1.0 if failed else 0.0
    )
    gauge("selfsup_stage_last_completion_timestamp_seconds", "When the stage ended.", now)
    final = Gauge(
        "selfsup_stage_metric", "A final metric of the stage.", ["name"], registry=registry
    )
    for name, value in flatten_metrics(run.metrics).items():
        final.labels(name=name).set(value)
    return registry


def push(target: PushTarget, stage: str, registry: CollectorRegistry, timeout_s: float) -> bool:
    """Push one stage's group; returns False (after a warning) when the gateway is unreachable."""
    key = {"pipeline": target.pipeline, "run_id": target.run_id, "stage": stage}
    try:
        push_to_gateway(
            target.gateway,
            job=JOB,
            registry=registry,
            grouping_key=key,
            timeout=timeout_s,
            handler=target.handler(),
        )
    except (OSError, ValueError, HTTPException) as exc:  # unreachable, or a malformed address
        log.warning(
            "could not push metrics of %s to the Pushgateway at %s: %s (the stage "
            "itself is unaffected)",
            stage,
            target.gateway,
            exc,
        )
        return False
    return True


@contextmanager
def stage_metrics(
    stage: str, timeout_s: float = 5.0, run_id: str | None = None
) -> Iterator[StageRun]:
    """Time the block and push its metrics (also when it fails) if a Pushgateway is set;
    ``run_id``: the grouping key's run (see :meth:`PushTarget.from_env`)."""
    run, start, failed = StageRun(), time.monotonic(), True
    try:
        yield run
        failed = False
    finally:
        target = PushTarget.from_env(run_id)
        if target is not None:
            duration = time.monotonic() - start
            push(
                target, stage, build_registry(stage, run, duration, failed, time.time()), timeout_s
            )


RUNNING = Gauge("selfsup_stage_running", "1 while the stage runs in this process.", ["stage"])
STARTED = Gauge(
    "selfsup_stage_start_timestamp_seconds", "When the stage started (Unix time).", ["stage"]
)


@contextmanager
def serve_metrics(port: int, stage: str, addr: str = "0.0.0.0") -> Iterator[None]:
    """Serve the process's default registry on ``http://addr:port/metrics`` while the block runs
    (a long training job is scraped rather than pushed): process CPU/memory, and
    ``selfsup_stage_running``/``selfsup_stage_start_timestamp_seconds`` for ``stage``."""
    server, thread = start_http_server(port, addr=addr)
    RUNNING.labels(stage=stage).set(1)
    STARTED.labels(stage=stage).set(time.time())
    try:
        yield
    finally:
        RUNNING.labels(stage=stage).set(0)
        server.shutdown()
        server.server_close()
        thread.join()
