"""``run-local``: a pipeline offline, under KFP's own ``kfp.local.SubprocessRunner``.

The runner executes each task's component — the object compiled for the cluster — in a
subprocess of this interpreter (``use_venv=False``: no image, no network), wiring artifacts as the
DAG says; only mining's fan-out is off (:class:`~selfsup.pipeline.dags.ClusterOptions`). It
ignores resources, GPU settings and retries, and treats ``pipeline_root`` as a local directory:
outputs land under ``root/<pipeline>-<timestamp>/<task>/``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from selfsup.config import Params, RegistryParams
from selfsup.pipeline.dags import ClusterOptions, build, pipeline, pipeline_arguments
from selfsup.pipeline.errors import PipelineError

# kfp.local 2.16 collects no ParallelFor outputs and runs no dsl.ExitHandler.
LOCAL_OPTIONS = ClusterOptions(fan_out=False, exit_handler=False, serve=False)


@dataclass(frozen=True)
class LocalRun:
    """Where a local run wrote its outputs, each task's metrics and the wall-clock time."""

    run_dir: Path
    metrics: dict[str, dict[str, Any]]
    seconds: float

    def task_dir(self, task: str) -> Path:
        return self.run_dir / task


RUNNERS = ("subprocess", "docker")


def docker_runner(image_user: int = 10001) -> Any:
    """KFP's DockerRunner, its containers run the way the cluster's restricted pods do: the
    image's non-root user, a read-only root filesystem (a tmpfs /tmp for the task's files), no
    network, no capabilities, no privilege escalation. ``entrypoint=[""]`` resets the image's
    ``selfsup`` entrypoint: a pod's ``command`` replaces it, Docker's would only prepend it."""
    from kfp import local

    return local.DockerRunner(
        user=f"{image_user}:{image_user}",
        read_only=True,
        tmpfs={"/tmp": "rw,size=2g"},
        network_mode="none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        entrypoint=[""],
        environment={"HOME": "/tmp"},
    )


def run_local(
    params: Params,
    root: Path,
    name: str = "train",
    registry: RegistryParams | None = None,
    forget_ids: list[str] | None = None,
    runner: str = "subprocess",
) -> LocalRun:
    """Run pipeline ``name`` on ``params`` (e.g. the tiny profile) with outputs under ``root``;
    retrain and forget use ``registry`` (default ``./registry``), forget serves ``forget_ids``.

    ``runner``: ``subprocess`` (this interpreter) or ``docker`` (each task in the image the
    compiled pipeline names, under :func:`docker_runner`; ``root`` and the registry must then
    be writable by the image's user)."""
    from kfp import local

    if runner not in RUNNERS:
        raise PipelineError(f"unknown runner {runner!r}; runners: {', '.join(RUNNERS)}")

    spec = pipeline(name)
    if spec.request and not forget_ids:
        raise PipelineError("the forget pipeline needs the deletion request's sample ids")
    gate = registry or RegistryParams()
    arguments = pipeline_arguments(name, params, gate, forget_ids if spec.request else None)
    # In containers here every task takes the CPU image: there is no GPU to give the CUDA one.
    options = LOCAL_OPTIONS if runner == "subprocess" else replace(LOCAL_OPTIONS, gpu=None)
    dag = build(name, options, params, gate)
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.iterdir())
    chosen = local.SubprocessRunner(use_venv=False) if runner == "subprocess" else docker_runner()
    local.init(runner=chosen, pipeline_root=str(root))
    start = time.perf_counter()
    try:
        dag(**arguments)
    except RuntimeError as exc:  # kfp.local raises RuntimeError when a task fails
        raise PipelineError(f"local run failed: {exc}") from None
    seconds = time.perf_counter() - start
    fresh = [p for p in root.glob(f"{spec.name}-*") if p.is_dir() and p not in before]
    if len(fresh) != 1:
        raise PipelineError(f"expected one new local run under {root}, found {len(fresh)}")
    run_dir = fresh[0]
    metrics = {t: json.loads((run_dir / t / "metrics").read_text()) for t in spec.local_tasks}
    return LocalRun(run_dir=run_dir, metrics=metrics, seconds=seconds)
