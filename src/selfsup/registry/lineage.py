"""Where a model came from: code revision and the data version (git revision + ``dvc.lock``).

A data version is named by the git revision of the repository and the sha256 of its
``dvc.lock`` (which pins every stage's inputs and outputs by hash), as DVC itself does.
``SELFSUP_CODE_REVISION`` overrides the git lookup (a container image has no ``.git``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from selfsup.store import sha256_file

CODE_REVISION_ENV = "SELFSUP_CODE_REVISION"


def code_revision(repo: Path) -> str:
    """The git commit of ``repo`` (``+dirty`` with local changes), or ``unknown``."""
    if os.environ.get(CODE_REVISION_ENV):
        return os.environ[CODE_REVISION_ENV]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def data_version(repo: Path) -> dict[str, Any]:
    """``{"git_revision": ..., "dvc_lock_sha256": ...}`` (the latter ``None`` without a lock)."""
    lock = Path(repo) / "dvc.lock"
    return {
        "git_revision": code_revision(repo),
        "dvc_lock_sha256": sha256_file(lock) if lock.is_file() else None,
    }
