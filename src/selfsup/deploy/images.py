"""Build the project's images (``make images``), or reuse them when their inputs are unchanged.

An image is keyed on the sha256 of what it is built from (its Dockerfile, the lock, pyproject,
README and every file under ``src/``), kept as the label ``io.selfsup.inputs``; an image whose
label equals the current key is reused, so ``make test-images`` on an unchanged tree builds
nothing. The engine is Podman (rootful, runc), which can mount the host's CA bundle and local
package indexes into a build; ``--load-into-docker`` then hands the image to a Docker daemon
(``kfp.local.DockerRunner`` talks to Docker).

What the machine can reach decides two build arguments, with the public defaults wherever the
network allows:

- **base**: ``python:3.11.14-slim-bookworm`` pinned by digest (the Dockerfiles' default) when a
  registry answers, else a Debian bookworm base made by ``mmdebstrap`` from Debian's own packages,
  built once per machine and cached under ``~/.cache/selfsup/``;
- **torch index**: PyTorch's CPU index when it answers, else PyPI's torch (the CUDA build).

The host's pip settings (``pip config list``: ``file://`` extra indexes, ``find-links``, the CA
bundle) are passed through read-only, so a machine with local wheels installs from disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from selfsup.pipeline.images import image_of

log = logging.getLogger("selfsup.images")

REPO = Path(__file__).resolve().parents[3]
VARIANTS = ("cpu", "cuda")
INPUTS_LABEL = "io.selfsup.inputs"
OFFLINE_BASE = "localhost/selfsup-base:debian-bookworm-python3.11"
REGISTRY_PROBE = "https://registry-1.docker.io/v2/"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CA_DIR = Path("/etc/ssl/certs")


def image_name(variant: str) -> str:
    """The tag ``variant`` is built under: what the compiled pipelines name by default."""
    return image_of(variant)


def input_paths(variant: str) -> list[str]:
    """What ``variant`` is built from, relative to the repository."""
    return [f"docker/{variant}.Dockerfile", "requirements/constraints.txt", "pyproject.toml",
            "README.md", "src"]  # fmt: skip


def code_revision(variant: str, repo: Path = REPO) -> str:
    """The revision of the code in the image: the last commit that changed its inputs, with
    ``-dirty`` when they hold uncommitted changes (so an image reused across commits that
    touched only tests or docs still names the code it holds)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=False)  # fmt: skip
        return done.stdout.strip() if done.returncode == 0 else ""

    paths = input_paths(variant)
    last = git("log", "-1", "--format=%H", "--", *paths) or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=all", "--", *paths)
    return last + ("-dirty" if dirty else "")


def inputs_key(variant: str, repo: Path = REPO) -> str:
    """sha256 over the Dockerfile, lock, pyproject, README and src/ (paths and contents)."""
    files = [
        *(repo / p for p in input_paths(variant)[:-1]),
        *sorted(
            p
            for p in (repo / "src").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ),
    ]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(repo)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def reachable(url: str, timeout_s: float = 5.0) -> bool:
    """Whether ``url`` answers at all (any HTTP status counts: a registry says 401)."""
    try:
        urllib.request.urlopen(url, timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, TimeoutError):
        return False
    return True


def podman_env() -> dict[str, str]:
    """The environment for Podman: the project's settings (docker/podman.conf: runc) unless the
    caller names others."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(REPO / "docker" / "podman.conf"))
    return env


def _run(args: list[str], capture_output: bool = False) -> subprocess.CompletedProcess[str]:
    log.info("$ %s", " ".join(args))
    return subprocess.run(
        args, check=True, text=True, env=podman_env(), capture_output=capture_output
    )


def image_label(engine: str, image: str, label: str) -> str | None:
    """``label`` of the local ``image`` (None when there is no such image)."""
    done = subprocess.run(
        [engine, "image", "inspect", image, "--format", f'{{{{ index .Labels "{label}" }}}}'],
        capture_output=True,
        text=True,
        check=False,
        env=podman_env(),
    )
    return done.stdout.strip() if done.returncode == 0 else None


def image_size(engine: str, image: str) -> int:
    done = _run([engine, "image", "inspect", image, "--format", "{{.Size}}"], capture_output=True)
    return int(done.stdout.strip())


def offline_base(cache: Path) -> str:
    """The Debian bookworm base without a registry: ``mmdebstrap`` from Debian's packages
    (python3 3.11, venv, CA certificates), made once into ``cache`` and imported into Podman."""
    if image_label("podman", OFFLINE_BASE, "unused") is not None:
        return OFFLINE_BASE
    tarball = cache / "bookworm-python3.11.tar"
    if not tarball.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial.tar")
        _run(
            ["mmdebstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
             "--format=tar", "bookworm", str(partial), "http://deb.debian.org/debian"]
        )  # fmt: skip
        partial.replace(tarball)
    _run(["podman", "import", str(tarball), OFFLINE_BASE], capture_output=True)
    return OFFLINE_BASE


def pip_passthrough() -> tuple[list[str], str]:
    """The host pip's local indexes and wheel folders as read-only mounts and pip arguments
    (``--extra-index-url file://…``, ``--find-links …``); nothing when pip names none."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    mounts: list[str] = []
    args: list[str] = []
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        value = value.strip().strip("'\"")
        if key.endswith(".extra-index-url") or key.endswith(".find-links"):
            flag = "--extra-index-url" if key.endswith("extra-index-url") else "--find-links"
            for item in value.split():
                local = item.removeprefix("file://")
                if local.startswith("/") and Path(local).exists():
                    mounts.append(f"{_mount_root(Path(local))}:{_mount_root(Path(local))}:ro")
                    args += [flag, item]
    return sorted(set(mounts)), " ".join(args)


def _mount_root(path: Path) -> Path:
    """The top two levels of ``path`` (``/opt/pypi`` for ``/opt/pypi/simple``)."""
    return Path(*path.parts[:3])


@dataclass
class Built:
    """One image: its tag, whether it was reused, its size and the build's wall time."""

    variant: str
    image: str
    reused: bool
    seconds: float
    size_bytes: int
    base: str
    torch_index: str
    inputs: str
    notes: list[str] = field(default_factory=list)


def build(variant: str, cache: Path, force: bool = False) -> Built:
    """Build ``variant`` with Podman, or reuse the local image whose inputs label matches."""
    image, key, revision = image_name(variant), inputs_key(variant), code_revision(variant)
    start = time.perf_counter()
    if not force and image_label("podman", image, INPUTS_LABEL) == key:
        log.info("%s: inputs unchanged (%s…), reusing the image", image, key[:12])
        return Built(variant, image, True, time.perf_counter() - start,
                     image_size("podman", image), "", "", key)  # fmt: skip
    base_arg: list[str] = []
    base = "python:3.11.14-slim-bookworm (pinned digest)"
    notes = []
    if not reachable(REGISTRY_PROBE):
        base = offline_base(cache)
        base_arg = ["--build-arg", f"BASE={base}"]
        notes.append("no registry reachable: Debian base from mmdebstrap")
    torch_index = TORCH_CPU_INDEX if variant == "cpu" else ""
    if torch_index and not reachable(torch_index + "/"):
        torch_index = ""
        notes.append("PyTorch's CPU index unreachable: PyPI's torch (the CUDA build)")
    mounts, pip_extra = pip_passthrough()
    volumes = [f"{CA_DIR}:{CA_DIR}:ro", *mounts] if CA_DIR.is_dir() else mounts
    args = [
        "podman", "build", "--format", "docker", "--network", "host",
        *(flag for v in volumes for flag in ("--volume", v)),
        *base_arg,
        "--build-arg", f"TORCH_INDEX={torch_index}",
        "--build-arg", f"PIP_EXTRA={pip_extra}",
        "--build-arg", f"REVISION={revision}",
        "--build-arg", f"INPUTS={key}",
        # Also as flags: Buildah reuses a cached LABEL/ENV layer whose ARG value changed, which
        # would leave a stale revision or inputs key on a rebuilt image; flags apply last.
        "--label", f"{INPUTS_LABEL}={key}",
        "--label", f"org.opencontainers.image.revision={revision}",
        "--env", f"SELFSUP_CODE_REVISION={revision}",
        "-f", str(REPO / "docker" / f"{variant}.Dockerfile"),
        "-t", image, str(REPO),
    ]  # fmt: skip
    _run(args)
    seconds = time.perf_counter() - start
    return Built(variant, image, False, seconds, image_size("podman", image), base,
                 torch_index or "PyPI", key, notes)  # fmt: skip


def load_into_docker(image: str) -> None:
    """Copy ``image`` from Podman into the Docker daemon of ``$DOCKER_HOST`` unless it already
    holds the same image id's inputs label."""
    want = image_label("podman", image, INPUTS_LABEL)
    if want is not None and image_label("docker", image, INPUTS_LABEL) == want:
        return
    saver = subprocess.Popen(["podman", "save", "--format", "docker-archive", image],
                             stdout=subprocess.PIPE, env=podman_env())  # fmt: skip
    assert saver.stdout is not None
    try:
        subprocess.run(["docker", "load"], stdin=saver.stdout, check=True, capture_output=True)
    finally:
        saver.stdout.close()
        if saver.wait() != 0:
            raise subprocess.CalledProcessError(saver.returncode, "podman save")
    # The archive keeps the fully qualified name, so Docker knows the image by the name the
    # pipelines use; a missing tag would make Docker try the registry.
    subprocess.run(["docker", "image", "inspect", image], check=True, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m selfsup.deploy.images", description=__doc__)
    parser.add_argument("--variant", choices=VARIANTS, action="append")
    parser.add_argument("--cache", type=Path, default=Path("~/.cache/selfsup").expanduser())
    parser.add_argument("--force", action="store_true", help="build even if inputs are unchanged")
    parser.add_argument("--load-into-docker", action="store_true")
    parser.add_argument("--report", type=Path, help="write sizes and times as JSON here")
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for tool in ("podman",) + (("docker",) if ns.load_into_docker else ()):
        if shutil.which(tool) is None:
            print(f"error: {tool} is not installed: run `make system-deps`", file=sys.stderr)
            return 2
    results = []
    for variant in ns.variant or list(VARIANTS):
        built = build(variant, ns.cache, ns.force)
        if ns.load_into_docker and variant == "cpu":
            load_into_docker(built.image)
        results.append(built)
        verb = "reused" if built.reused else "built"
        notes = "".join(f"; {n}" for n in built.notes)
        size = f"{built.size_bytes / 1e9:.2f} GB"
        print(f"{built.image}: {verb} in {built.seconds:.0f} s, {size}{notes}")
    if ns.report is not None:
        ns.report.parent.mkdir(parents=True, exist_ok=True)
        ns.report.write_text(json.dumps([asdict(b) for b in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
