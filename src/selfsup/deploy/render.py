"""Rendering ``k8s/`` with the real kustomize: ``kubectl kustomize`` (Kustomize v5 or newer).

There is no second renderer: what the checks and the tests see is exactly what ``kubectl apply -k``
would send. A missing or old kubectl is an error that says what to install, never a skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from selfsup.errors import SelfsupError

Object = dict[str, Any]
KUSTOMIZE_MIN = (5, 0)
_INSTALL = (
    "the k8s/ checks render with `kubectl kustomize` (Kustomize >= v5, bundled with kubectl >= "
    "1.27): install kubectl, e.g. from https://kubernetes.io/docs/tasks/tools/ or the "
    "google-cloud-sdk's kubectl (Debian bookworm's kubernetes-client 1.20 is too old)"
)


def kustomize_version() -> tuple[int, ...]:
    """The Kustomize version bundled with the ``kubectl`` on PATH."""
    if shutil.which("kubectl") is None:
        raise SelfsupError(f"kubectl is not on PATH; {_INSTALL}")
    out = subprocess.run(
        ["kubectl", "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    found = re.match(r"v?(\d+)\.(\d+)", json.loads(out.stdout or "{}").get("kustomizeVersion", ""))
    if out.returncode != 0 or found is None:
        raise SelfsupError(f"`kubectl version --client` names no Kustomize version; {_INSTALL}")
    version = tuple(int(part) for part in found.groups())
    if version < KUSTOMIZE_MIN:
        raise SelfsupError(f"kubectl bundles Kustomize {found.group(0)}, too old; {_INSTALL}")
    return version


def render(root: Path) -> list[Object]:
    """The objects ``kubectl kustomize root`` prints."""
    kustomize_version()
    out = subprocess.run(
        ["kubectl", "kustomize", str(root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if out.returncode != 0:
        raise SelfsupError(f"kubectl kustomize {root} failed: {out.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def key(obj: Object) -> tuple[str, str, str]:
    """(kind, namespace, name): how kustomize identifies an object."""
    meta = obj.get("metadata", {})
    return obj["kind"], meta.get("namespace", ""), meta["name"]
