"""Session-wide real services: a Ceph RGW (S3) and a Prometheus Pushgateway.

Each starts once per test session (per xdist worker) on free ports, and is stopped by its pid
files when the session ends, also after failures. Missing Debian packages fail the tests with a
message naming ``make system-deps``; nothing is skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from selfsup.store.s3 import S3Backend, S3Settings
from tests.fixtures.services import (
    PushgatewayService,
    S3Service,
    ServiceError,
    ceph_rgw,
    pushgateway,
)


@pytest.fixture(scope="session")
def s3_service() -> Iterator[S3Service]:
    try:
        manager = ceph_rgw()
        service = manager.__enter__()
    except ServiceError as exc:
        pytest.fail(f"could not start Ceph RGW: {exc}")
    try:
        yield service
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture(scope="session")
def pushgateway_service() -> Iterator[PushgatewayService]:
    try:
        manager = pushgateway()
        service = manager.__enter__()
    except ServiceError as exc:
        pytest.fail(f"could not start the Pushgateway: {exc}")
    try:
        yield service
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture
def s3_settings(s3_service: S3Service) -> S3Settings:
    return S3Settings(s3_service.endpoint, s3_service.access_key, s3_service.secret_key)


@pytest.fixture
def bucket(s3_settings: S3Settings) -> str:
    """A fresh, versioned bucket for one test."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    S3Backend(name, "", s3_settings).ensure_bucket(versioning=True)
    return name
