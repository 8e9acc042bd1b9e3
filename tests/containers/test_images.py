"""The built CPU image, run the way the cluster runs it (``make test-images``, not ``make test``).

The image is built by ``make images`` (or here), reused while its inputs are unchanged, and
loaded into a private Docker daemon; every task of the compiled train, retrain and forget
pipelines then runs in it under KFP's own ``kfp.local.DockerRunner`` — as UID 10001, on a
read-only root filesystem, with no network and no capabilities — on the tiny profile.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.services import docker_daemon

from selfsup.config import RegistryParams, profile_params
from selfsup.deploy import images
from selfsup.pipeline.local import run_local

pytestmark = pytest.mark.containers

# Wall-clock measurements (and rates made from them) differ between any two runs; so does the
# size of the TorchScript export, whose debug tables hold the source files' paths (/opt/venv/…
# in the image, the checkout here). Everything else must be identical.
DIFFERING = re.compile(r"(seconds|_s|per_second|real_time_factor|torchscript_bytes)$")
IMAGE = images.image_name("cpu")


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    with docker_daemon(Path("~/.cache/selfsup/docker").expanduser()) as host:
        previous = os.environ.get("DOCKER_HOST")
        os.environ["DOCKER_HOST"] = host
        try:
            yield host
        finally:
            if previous is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = previous


@pytest.fixture(scope="session")
def image(docker_host: str) -> str:
    """The CPU image, built unless one with the same inputs exists, in the test daemon."""
    built = images.build("cpu", Path("~/.cache/selfsup").expanduser())
    images.load_into_docker(built.image)
    return built.image


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False,
                          timeout=300)  # fmt: skip


def test_the_cli_runs_as_10001_read_only_without_network(image: str) -> None:
    restricted = ("--rm", "--user", "10001:10001", "--read-only", "--network", "none",
                  "--cap-drop", "ALL", "--security-opt", "no-new-privileges")  # fmt: skip
    done = _docker("run", *restricted, image, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: selfsup" in done.stdout and "pipeline" in done.stdout
    who = _docker("run", "--rm", "--entrypoint", "id", image, "-u")
    assert who.stdout.strip() == "10001"  # the image's own USER, not root
    no_pip = _docker("run", "--rm", "--entrypoint", "python3", image, "-m", "pip", "--version")
    assert no_pip.returncode != 0 and "No module named pip" in no_pip.stderr
    inspected = _docker("image", "inspect", image, "--format", "{{json .Config.Labels}}")
    labels = json.loads(inspected.stdout)
    revision = images.code_revision("cpu")  # the last commit of the code in it (-dirty: edits)
    assert labels["org.opencontainers.image.revision"] == revision
    assert labels[images.INPUTS_LABEL] == images.inputs_key("cpu")
    env = _docker("run", "--rm", "--entrypoint", "printenv", image, "SELFSUP_CODE_REVISION")
    assert env.stdout.strip() == revision


def _without_timings(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: _without_timings(v) for k, v in values.items() if not DIFFERING.search(k)}
    return values


def _shared(path: Path) -> Path:
    """A directory the container's user (10001) can write: KFP mounts it at the same path."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


def test_every_task_of_the_three_pipelines_runs_in_the_image(image: str, tmp_path: Path) -> None:
    """train, retrain, forget: the compiled components (the cluster's) in the image; the train
    DAG's metrics equal run-local's in this interpreter, timings aside."""
    params = profile_params("tiny")
    root = _shared(tmp_path / "runs")
    # The runner mounts only the pipeline root into the containers: the registry lives in it.
    registry = RegistryParams(uri=str(_shared(root / "registry")))
    contained = run_local(params, root, "train", runner="docker")
    reference = run_local(params, tmp_path / "subprocess", "train")
    assert set(contained.metrics) == {"data", "mine", "pretrain", "evaluate", "compress", "distill"}
    assert _without_timings(contained.metrics) == _without_timings(reference.metrics)
    for task in contained.metrics:  # each task wrote its outputs (the runner's exit code alone
        assert (contained.run_dir / task / "metrics").is_file()  # is not trusted, see docs)

    retrained = run_local(params, root, "retrain", registry, runner="docker")
    assert retrained.metrics["register"]["action"] == "promote"
    forgot = run_local(params, root, "forget", registry, ["train/0", "train/3"], runner="docker")
    assert forgot.metrics["unlearn"]["forget_count"] == 2
    assert forgot.metrics["register"]["model"] != retrained.metrics["register"]["model"]


def test_the_cuda_image_builds() -> None:
    """The GPU tasks' image builds (or is reused) with the same conventions. It is not run:
    its torch needs an NVIDIA driver and a GPU, which this machine kind has not."""
    built = images.build("cuda", Path("~/.cache/selfsup").expanduser())
    inspected = subprocess.run(
        ["podman", "image", "inspect", built.image, "--format", "{{json .Config}}"],
        capture_output=True, text=True, check=True, env=images.podman_env(),
    )  # fmt: skip
    config = json.loads(inspected.stdout)
    assert config["User"] == "10001:10001" and config["Entrypoint"] == ["selfsup"]
    assert "NVIDIA_VISIBLE_DEVICES=all" in config["Env"]
    assert config["Labels"][images.INPUTS_LABEL] == images.inputs_key("cuda")
    assert config["Labels"]["org.opencontainers.image.revision"] == images.code_revision("cuda")
