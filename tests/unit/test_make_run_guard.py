"""`make run` with no archive: offline it stops at once, before the venv's minutes, with one line
saying what to set; a cached download or a named archive lets it through. Never downloads: the
download URL points at a local port that refuses connections."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def refused_url() -> Iterator[str]:
    """An http URL on a port that is bound but not listening: connecting is refused."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{server.getsockname()[1]}/cifar-10-python.tar.gz"


def checkout(tmp_path: Path, archive_line: str) -> Path:
    """The Makefile, params.yaml (with ``archive_line``) and src/ (the stdlib-only probe)."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "src").symlink_to(REPO / "src")
    params = (REPO / "params.yaml").read_text()
    assert "  archive: null\n" in params
    (tmp_path / "params.yaml").write_text(params.replace("  archive: null", archive_line, 1))
    return tmp_path


def make(root: Path, target: str, url: str, **env_vars: str) -> tuple[int, str, float]:
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    env = {k: v for k, v in os.environ.items() if k != "SELFSUP_CIFAR10_ARCHIVE"}
    env.update(SELFSUP_CIFAR10_URL=url, SELFSUP_CACHE_DIR=str(root / "cache"), **env_vars)
    start = time.perf_counter()
    done = subprocess.run(["make", "-s", target], cwd=root, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    return done.returncode, done.stderr, time.perf_counter() - start


@pytest.mark.parametrize(
    ("archive_line", "env_archive", "refused"),
    [
        ("  archive: null", None, True),
        ("  archive:   # none yet", None, True),
        ("  archive: ~", None, True),
        ("  archive: /data/cifar10-jpg.tar.gz", None, False),
        ("  archive: /data/cifar-10-python.tar.gz", None, False),
        ("  archive: s3://selfsup/sources/cifar10-jpg", None, False),
        ("  archive: null", "/data/cifar-10-python.tar.gz", False),
    ],
)
def test_check_archive(
    archive_line: str, env_archive: str | None, refused: bool, tmp_path: Path, refused_url: str
) -> None:
    root = checkout(tmp_path, archive_line)
    extra = {"SELFSUP_CIFAR10_ARCHIVE": env_archive} if env_archive else {}
    # `make run` itself: refused before the setup, so no venv is made
    code, stderr, seconds = make(root, "run" if refused else "check-archive", refused_url, **extra)
    assert not (root / ".venv").exists()
    if refused:
        assert code == 2 and seconds < 10
        (line,) = [x for x in stderr.splitlines() if x.startswith("error:")]
        assert "cannot be downloaded" in line and "Connection refused" in line
        assert "set SELFSUP_CIFAR10_ARCHIVE to a cifar-10-python.tar.gz" in line
        assert "data.archive" in line
    else:
        assert code == 0, stderr


def test_a_cached_download_needs_no_network(tmp_path: Path, refused_url: str) -> None:
    root = checkout(tmp_path, "  archive: null")
    (root / "cache").mkdir()
    (root / "cache" / "cifar-10-python.tar.gz").write_bytes(b"downloaded before")
    code, stderr, _ = make(root, "check-archive", refused_url)
    assert code == 0, stderr
