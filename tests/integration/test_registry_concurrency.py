"""Concurrent registry writers against a real Ceph RGW: what the server honours, the write-once
log slot built on it, and 2 processes × 50 promotions that lose no decision.

The first test pins why the log does not rely on ``If-None-Match`` alone: RGW honours it in an
unversioned bucket and ignores it in a versioned one (the registry's), where the oldest version
of a slot holds it (:mod:`selfsup.registry.log`). The second races processes for the same slots
in both kinds of bucket; the third is the registry end to end.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from fixtures.registry_writers import check_told_the_truth, open_spec, race, race_slots
from fixtures.registry_writers import register_models as register_tiny_models
from minio.error import S3Error

from selfsup.registry.log import read_slot, slot_key
from selfsup.store.s3 import S3Backend, S3Settings

pytestmark = pytest.mark.integration


def _unversioned_bucket(settings: S3Settings) -> str:
    name = f"u-{uuid.uuid4().hex[:12]}"
    S3Backend(name, "", settings).ensure_bucket(versioning=False)
    return name


def _conditional_put(backend: S3Backend, key: str, data: bytes) -> bool:
    """A raw ``PUT`` with ``If-None-Match: *``: True when the server accepted it."""
    try:
        backend.client._put_object(backend.bucket, key, data, headers={"If-None-Match": "*"})
    except S3Error as exc:
        assert exc.code == "PreconditionFailed" and exc.response.status == 412
        return False
    return True


def test_rgw_honours_if_none_match_only_in_an_unversioned_bucket(
    s3_settings: S3Settings, bucket: str
) -> None:
    plain = S3Backend(_unversioned_bucket(s3_settings), "", s3_settings)
    assert _conditional_put(plain, "k", b"first")
    assert not _conditional_put(plain, "k", b"second")
    assert plain.get_bytes("k") == b"first"

    versioned = S3Backend(bucket, "", s3_settings)  # the fixture's bucket is versioned
    assert _conditional_put(versioned, "k", b"first")
    assert _conditional_put(versioned, "k", b"second"), "RGW now honours it: simplify the log"
    assert versioned.get_bytes("k") == b"second" and len(versioned.versions("k")) == 2
    stream = versioned.client.get_object(bucket, "k", version_id=versioned.versions("k")[-1])
    assert io.BytesIO(stream.read()).getvalue() == b"first", "the oldest version is the first"


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "unversioned"])
def test_a_log_slot_has_one_holder_when_processes_race_for_it(
    s3_settings: S3Settings, bucket: str, tmp_path: Path, versioned: bool
) -> None:
    name = bucket if versioned else _unversioned_bucket(s3_settings)
    spec = ("s3", name, "reg", s3_settings)
    held = race_slots(spec, writers=2, slots=40, tmp=tmp_path)
    backend = open_spec(spec).objects
    for seq in range(1, 41):
        holders = [w for w, mine in enumerate(held) if seq in mine]
        assert len(holders) == 1, f"slot {seq} held by writers {holders}"
        assert read_slot(backend, seq) == f"writer {holders[0]} slot {seq}".encode()
        if versioned:
            assert isinstance(backend, S3Backend)
            assert len(backend.versions(slot_key(seq))) == 1, "the loser's version is deleted"


def test_two_processes_promoting_50_times_each_on_rgw_lose_no_decision(
    s3_settings: S3Settings, bucket: str, tmp_path: Path
) -> None:
    spec = ("s3", bucket, "reg", s3_settings)
    registry = open_spec(spec)
    ids = register_tiny_models(registry, tmp_path / "models", 4)
    told = race(spec, [ids[:2], ids[2:]], rounds=50, tmp=tmp_path)
    figures = check_told_the_truth(registry, told)
    print(f"figures: {figures}")
    assert figures["decisions_made"] == figures["decisions_in_log"] == 100
    assert figures["promotions_in_history"] == 100, "every forced promotion is in the history"
    assert figures["writer_switches"] > 0, "the writers ran at the same time"
    history = registry.aliases()["history"]
    back = registry.rollback("rollback follows the full history")
    assert back["champion_before"] == history[-1] and back["model"] == history[-2]
    assert registry.aliases()["history"] == history[:-1]
