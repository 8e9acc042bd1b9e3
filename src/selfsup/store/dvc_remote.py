"""Point the project's DVC remote at an S3 endpoint (``dvc push``/``dvc pull`` of every stage).

Edits the configuration through DVC's own ``dvc.config.Config`` (validated by DVC's schema):
the URL and ``endpointurl`` go to ``.dvc/config`` (committed, no secrets); the access keys, only
when asked, to ``.dvc/config.local`` (git-ignored by DVC), never through a command line where
other users could read them. Without saved keys DVC reads ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` from the environment, which is what a pod does.
"""

from __future__ import annotations

import os
from pathlib import Path

from dvc.config import Config, ConfigError

from selfsup.errors import StoreError
from selfsup.store.s3 import ACCESS_KEY_ENV, SECRET_KEY_ENV


def configure_remote(
    repo: Path,
    url: str,
    endpoint: str,
    name: str = "storage",
    default: bool = True,
    save_credentials: bool = False,
) -> None:
    """Add (or replace) remote ``name`` = ``url`` with ``endpointurl`` = ``endpoint``."""
    if not url.startswith("s3://"):
        raise StoreError(f"{url!r}: the DVC remote must be s3://bucket/path")
    if not endpoint.startswith(("http://", "https://")):
        raise StoreError(f"{endpoint!r}: the endpoint must be http(s)://host:port")
    dvc_dir = Path(repo) / ".dvc"
    if not dvc_dir.is_dir():
        raise StoreError(f"{repo} is not a DVC repository (no .dvc/)")
    access, secret = os.environ.get(ACCESS_KEY_ENV), os.environ.get(SECRET_KEY_ENV)
    if save_credentials and (not access or not secret):
        raise StoreError(f"--save-credentials needs {ACCESS_KEY_ENV} and {SECRET_KEY_ENV} set")
    config = Config(dvc_dir=str(dvc_dir))
    try:
        with config.edit("repo") as conf:
            conf["remote"][name] = {"url": url, "endpointurl": endpoint}
            if default:
                conf["core"]["remote"] = name
        if save_credentials:
            with config.edit("local") as conf:
                conf["remote"][name] = {"access_key_id": access, "secret_access_key": secret}
    except ConfigError as exc:
        raise StoreError(f"DVC refused the remote configuration: {exc}") from None
