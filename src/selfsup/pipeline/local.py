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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfsup.config import Params, RegistryParams
from selfsup.pipeline.dags import ClusterOptions, build, pipeline, pipeline_arguments
from selfsup.pipeline.errors import PipelineError

# kfp.local 2.16 collects no ParallelFor outputs and runs no dsl.ExitHandler.
LOCAL_OPTIONS = ClusterOptions(fan_out=False, exit_handler=False)


@dataclass(frozen=True)
class LocalRun:
    """Where a local run wrote its outputs, each task's metrics and the wall-clock time."""

    run_dir: Path
    metrics: dict[str, dict[str, Any]]
    seconds: float

    def task_dir(self, task: str) -> Path:
        return self.run_dir / task


def run_local(
    params: Params,
    root: Path,
    name: str = "train",
    registry: RegistryParams | None = None,
    forget_ids: list[str] | None = None,
) -> LocalRun:
    """Run pipeline ``name`` on ``params`` (e.g. the tiny profile) with outputs under ``root``;
    retrain and forget use ``registry`` (default ``./registry``), forget serves ``forget_ids``."""
    from kfp import local

    spec = pipeline(name)
    if spec.request and not forget_ids:
        raise PipelineError("the forget pipeline needs the deletion request's sample ids")
    gate = registry or RegistryParams()
    arguments = pipeline_arguments(name, params, gate, forget_ids if spec.request else None)
    dag = build(name, LOCAL_OPTIONS, params, gate)
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.iterdir())
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
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
