"""Compile time of the KFP pipelines, against KFP's fixed cost measured in the same run.

Measures, in one warm process (kfp already imported), the median wall time of compiling
  * the ``train`` pipeline (its lightweight components, resources, retries, GPU pool), and
  * baseline: a one-task pipeline of one bare lightweight component on the same image, built
    in the same way (``dsl.component(base_image=..., install_kfp_package=False)``): what any KFP
    compile of a Python component costs;
and, cold, the wall time of ``selfsup pipeline compile`` as a fresh process (imports included).
Prints milliseconds and the ratio train / baseline.

    python bench/kfp_compile.py [--repeats 20]
"""

# No `from __future__ import annotations`: KFP reads the baseline component's annotations.

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from selfsup.pipeline import compile as compiling


def _baseline() -> Any:
    from kfp import dsl

    def hello() -> None:
        print("hello")

    component = dsl.component(base_image="selfsup:0.1.0-cpu", install_kfp_package=False)(hello)

    @dsl.pipeline(name="baseline")
    def baseline() -> None:
        component()

    return baseline


def _median_ms(action: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    compiling.pipeline_yaml("train")  # warm: imports, first-call caches
    train_ms = _median_ms(lambda: compiling.pipeline_yaml("train"), args.repeats)
    base_ms = _median_ms(lambda: compiling._compile(_baseline()), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "selfsup"), "pipeline", "compile",
             "--out", str(Path(tmp) / "train.yaml")],
            check=True, capture_output=True,
        )  # fmt: skip
        cli_s = time.perf_counter() - start
    print(
        json.dumps(
            {
                "train_compile_ms": round(train_ms, 1),
                "baseline_one_task_compile_ms": round(base_ms, 1),
                "ratio_train_over_baseline": round(train_ms / base_ms, 2),
                "cli_compile_cold_s": round(cli_s, 2),
                "repeats": args.repeats,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
