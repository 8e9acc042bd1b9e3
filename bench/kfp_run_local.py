"""Overhead per task of ``selfsup pipeline run-local`` (kfp.local.SubprocessRunner) on tiny data.

The train DAG's six stage tasks (data, mine → pretrain → evaluate, compress, distill; ``tiny``
profile, same seed) run three ways, in the same run of this script:
  * direct: the stages called in this warm process (the stages' own work);
  * cli: ``selfsup data prepare`` / ``mine`` / ``pretrain`` / … as six fresh processes (what
    ``dvc repro`` runs; each pays interpreter start and imports, as a KFP subprocess does);
  * run-local: the train DAG under ``kfp.local.SubprocessRunner(use_venv=False)``;
and, to split the overhead, ``startup``: one fresh interpreter importing what a twin's
subprocess imports (kfp's executor, torch, the stages) and doing nothing else.
Prints median seconds of each, the overhead per task of run-local over direct and over cli, and
the part of it left after paying process start-up (target: ≤ 1 s per task beyond the stage's own
work). ``--out`` also writes the result JSON (the runner streams task logs to stdout).

    python bench/kfp_run_local.py [--repeats 3] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selfsup.config import profile_params, render_params
from selfsup.pipeline.dags import PIPELINES
from selfsup.pipeline.local import run_local

TASKS = PIPELINES["train"].local_tasks
# run-local also runs the up-front "validate params" task (no stage work of its own).
RUN_LOCAL_TASKS = len(TASKS) + 1


def _direct(root: Path) -> float:
    from selfsup.compress import stage as compress
    from selfsup.data import stage as data
    from selfsup.distill import stage as distill
    from selfsup.evaluate import stage as evaluate
    from selfsup.mining import stage as mine
    from selfsup.train import stage as pretrain

    p = profile_params("tiny")
    dataset, model = root / "data", root / "model"
    start = time.perf_counter()
    data.run(params=p.data, out=dataset)
    mine.run(params=p.mine, out=root / "mined")
    pretrain.run(dataset, root / "mined", params=p.pretrain, out=model)
    evaluate.run(dataset, model, params=p.evaluate, out=root / "eval")
    compress.run(dataset, model, params=p.compress, out=root / "compressed")
    distill.run(dataset, model, params=p.distill, out=root / "distilled")
    return time.perf_counter() - start


def _cli(root: Path) -> float:
    root.mkdir(parents=True)
    params = root / "params.yaml"
    params.write_text(render_params(profile_params("tiny")))
    selfsup = str(Path(sys.executable).parent / "selfsup")
    commands = [
        ["data", "prepare", "--out", str(root / "data")],
        ["mine", "--out", str(root / "mined")],
        ["pretrain", "--data", str(root / "data"), "--out", str(root / "model")],
        ["evaluate", "--model", str(root / "model"), "--data", str(root / "data"),
         "--out", str(root / "eval")],
        ["compress", "--model", str(root / "model"), "--data", str(root / "data"),
         "--out", str(root / "compressed")],
        ["distill", "--model", str(root / "model"), "--data", str(root / "data"),
         "--out", str(root / "distilled")],
    ]  # fmt: skip
    start = time.perf_counter()
    for command in commands:
        subprocess.run([selfsup, *command, "--params", str(params)], check=True,
                       capture_output=True)  # fmt: skip
    return time.perf_counter() - start


_IMPORTS = (
    "import kfp.dsl.executor_main, torch, selfsup.pipeline.runtime, selfsup.data.stage, "
    "selfsup.train.stage, selfsup.evaluate.stage, selfsup.mining.stage, "
    "selfsup.compress.stage, selfsup.distill.stage"
)


def _startup(root: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _IMPORTS], check=True, capture_output=True)
    return time.perf_counter() - start


def _run_local(root: Path) -> float:
    start = time.perf_counter()
    run_local(profile_params("tiny"), root)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _direct(Path(tmp) / "warmup")  # imports and first-call costs out of the measurement
    seconds: dict[str, list[float]] = {"direct": [], "startup": [], "cli": [], "run_local": []}
    for i in range(args.repeats):  # interleaved, so machine load affects all three alike
        for name, action in (
            ("direct", _direct),
            ("startup", _startup),
            ("cli", _cli),
            ("run_local", _run_local),
        ):
            with tempfile.TemporaryDirectory() as tmp:
                seconds[name].append(action(Path(tmp) / f"{name}{i}"))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    n = RUN_LOCAL_TASKS
    result = json.dumps(
        {
            "median_seconds": {k: round(v, 2) for k, v in median.items()},
            "tasks": n,
            "run_local_overhead_per_task_vs_direct_s": round(
                (median["run_local"] - median["direct"]) / n, 2
            ),
            "run_local_overhead_per_task_vs_cli_s": round(
                (median["run_local"] - median["cli"]) / n, 2
            ),
            "ratio_run_local_over_cli": round(median["run_local"] / median["cli"], 2),
            "run_local_overhead_per_task_beyond_startup_s": round(
                (median["run_local"] - median["direct"]) / n - median["startup"], 2
            ),
            "repeats": args.repeats,
            "all_seconds": {k: [round(x, 2) for x in v] for k, v in seconds.items()},
        },
        indent=2,
    )
    print(result)
    if args.out is not None:
        args.out.write_text(result + "\n")


if __name__ == "__main__":
    main()
