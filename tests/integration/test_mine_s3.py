"""`selfsup mine` reading videos from an s3:// prefix on a real Ceph RGW."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from selfsup.config import MineParams
from selfsup.errors import DataError
from selfsup.mining import stage
from selfsup.mining.synthetic import write_synthetic_set
from selfsup.store.s3 import S3Backend, S3Settings

PARAMS = MineParams(source="folder", contact_pairs=2)


@pytest.fixture
def s3_videos(
    s3_settings: S3Settings, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Path]:
    """Three good clips (one in a sub-prefix), a broken one and a non-video under clips/."""
    monkeypatch.setenv("SELFSUP_S3_ENDPOINT", s3_settings.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_settings.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_settings.secret_key)
    local = tmp_path / "local"
    paths = write_synthetic_set(local, videos=3, frames=40, size=(96, 128), objects=3, classes=4,
                                seed=0)  # fmt: skip
    (local / "broken.mp4").write_bytes(b"\x00garbage" * 500)
    (local / "notes.txt").write_text("not a video")
    backend = S3Backend(bucket, "", s3_settings)
    keys = {paths[0]: "clips/a.avi", paths[1]: "clips/b.avi", paths[2]: "clips/sub/c.avi"}
    keys |= {local / "broken.mp4": "clips/broken.mp4", local / "notes.txt": "clips/notes.txt"}
    for path, key in keys.items():
        backend.put_file(key, path)
    return f"s3://{bucket}/clips", local


def test_mines_an_s3_prefix_and_reports_the_broken_object(
    s3_videos: tuple[str, Path], tmp_path: Path
) -> None:
    uri, _ = s3_videos
    metrics = stage.run(uri, params=PARAMS, out=tmp_path / "out")
    assert metrics["videos"] == 3
    assert [f["video"] for f in metrics["failures"]] == ["broken.mp4"]
    assert metrics["nodes"] > 0 and metrics["edges"]["intra"] > 0


def test_each_shard_fetches_only_its_videos_and_the_merge_matches(
    s3_videos: tuple[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri, _ = s3_videos
    sharded = PARAMS.model_copy(update={"num_shards": 2})
    caplog.set_level(logging.INFO, logger="selfsup.mine")
    counts, fetched = [], []
    for index in range(2):
        caplog.clear()
        counts.append(stage.run_shard(index, uri, params=sharded, out=tmp_path / f"s{index}"))
        fetched.append(sum(r.getMessage().startswith("fetched ") for r in caplog.records))
    # 4 video objects (a, b, broken, sub/c), round-robin: each shard fetches and mines two.
    assert fetched == [2, 2]
    assert [c["videos"] + len(c["failures"]) for c in counts] == [2, 2]
    stage.run_merge([tmp_path / "s1", tmp_path / "s0"], params=sharded, out=tmp_path / "merged")
    stage.run(uri, params=sharded, out=tmp_path / "single")
    for name in ("graph/nodes.csv", "graph/edges.csv"):
        merged = (tmp_path / "merged" / name).read_bytes()
        assert merged == (tmp_path / "single" / name).read_bytes(), name


def test_an_empty_prefix_is_a_clear_error(s3_videos: tuple[str, Path], tmp_path: Path) -> None:
    uri, _ = s3_videos
    with pytest.raises(DataError, match="holds no video"):
        stage.run(uri.replace("/clips", "/nothing-here"), params=PARAMS, out=tmp_path / "out")
