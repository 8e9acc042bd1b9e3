"""``run-local``: the train (or retrain) DAG offline, with KFP's own local runner.

``kfp.local.SubprocessRunner(use_venv=False)`` executes each lightweight twin in a subprocess of
this interpreter (no image, no cluster, no network), wiring artifacts between tasks exactly as
the DAG says. It ignores resources, GPU settings and retries, and treats any ``pipeline_root``
as a local directory — so the outputs land under ``root/<pipeline>-<timestamp>/<task>/``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfsup.config import Params, RegistryParams
from selfsup.pipeline import forget, retrain, train
from selfsup.pipeline.errors import PipelineError

# pipeline -> (pipeline name, its tasks' names, in the DAG's order).
LOCAL_PIPELINES: dict[str, tuple[str, tuple[str, ...]]] = {
    "train": (
        train.PIPELINE_NAME,
        ("data", "mine", "pretrain", "evaluate", "compress", "distill"),
    ),
    "retrain": (retrain.PIPELINE_NAME, ("data", "mine", "pretrain", "evaluate", "register")),
    "forget": (forget.PIPELINE_NAME, ("data", "pull", "unlearn", "evaluate", "forget-register")),
}


@dataclass(frozen=True)
class LocalRun:
    """Where a local run wrote its outputs, each task's metrics and the wall-clock time."""

    run_dir: Path
    metrics: dict[str, dict[str, Any]]
    seconds: float

    def task_dir(self, task: str) -> Path:
        return self.run_dir / task


def _newest_run(root: Path, name: str, before: set[Path]) -> Path:
    runs = [p for p in root.glob(f"{name}-local-*") if p.is_dir()]
    fresh = [p for p in runs if p not in before]
    if len(fresh) != 1:
        raise PipelineError(f"expected one new local run under {root}, found {len(fresh)}")
    return fresh[0]


def run_local(
    params: Params,
    root: Path,
    pipeline: str = "train",
    registry: RegistryParams | None = None,
    forget_ids: list[str] | None = None,
) -> LocalRun:
    """Run the ``train``, ``retrain`` (registering into ``registry``, default ``./registry``)
    or ``forget`` (serving ``forget_ids`` on that registry's champion) DAG on ``params`` (e.g.
    the tiny profile) with outputs under ``root``."""
    from kfp import local

    if pipeline not in LOCAL_PIPELINES:
        raise PipelineError(f"unknown pipeline {pipeline!r}; available: {sorted(LOCAL_PIPELINES)}")
    name, tasks = LOCAL_PIPELINES[pipeline]
    if pipeline == "forget" and not forget_ids:
        raise PipelineError("the forget pipeline needs the deletion request's sample ids")
    if pipeline == "train":
        dag = train.build_local(params)
    elif pipeline == "retrain":
        dag = retrain.build_local(params, registry)
    else:
        dag = forget.build_local(params, registry)
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.iterdir())
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    start = time.perf_counter()
    try:
        dag(forget_ids=list(forget_ids or [])) if pipeline == "forget" else dag()
    except RuntimeError as exc:  # kfp.local raises RuntimeError when a task fails
        raise PipelineError(f"local run failed: {exc}") from None
    seconds = time.perf_counter() - start
    run_dir = _newest_run(root, name, before)
    metrics = {task: json.loads((run_dir / task / "metrics").read_text()) for task in tasks}
    return LocalRun(run_dir=run_dir, metrics=metrics, seconds=seconds)
