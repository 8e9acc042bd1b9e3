"""`make run` without an archive stops at once with what to set (before the venv's minutes)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("archive_line", "env_archive", "refused"),
    [
        ("  archive: null", None, True),
        ("  archive:   # none yet", None, True),
        ("  archive: ~", None, True),
        ("  archive: /data/cifar10-jpg.tar.gz", None, False),
        ("  archive: s3://selfsup/sources/cifar10-jpg", None, False),
        ("  archive: null", "/data/cifar10-jpg.tar.gz", False),
    ],
)
def test_check_archive(
    archive_line: str, env_archive: str | None, refused: bool, tmp_path: Path
) -> None:
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    params = (REPO / "params.yaml").read_text()
    assert "  archive: null\n" in params
    (tmp_path / "params.yaml").write_text(params.replace("  archive: null", archive_line, 1))
    env = {k: v for k, v in os.environ.items() if k != "SELFSUP_CIFAR10_ARCHIVE"}
    if env_archive:
        env["SELFSUP_CIFAR10_ARCHIVE"] = env_archive
    # `make run` itself: refused before the setup, so no venv is made
    target = "run" if refused else "check-archive"
    done = subprocess.run(["make", "-s", target], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert not (tmp_path / ".venv").exists()
    if refused:
        assert done.returncode == 2
        (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
        assert "set SELFSUP_CIFAR10_ARCHIVE" in line and "data.archive" in line
    else:
        assert done.returncode == 0, done.stderr
