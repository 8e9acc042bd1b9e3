"""Compile pipelines and task components to KFP IR YAML, and the golden form the tests compare.

The golden copies under ``pipelines/golden/`` and ``components/`` are the compiled YAML minus the
SDK version stamp and the leading comment block (a human summary whose dict defaults the SDK
prints in hash order), so upgrading the pinned ``kfp`` alone does not fail the comparison while
any change to a task's code, the DAG, images, resources or GPU settings does.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from selfsup.pipeline.components import TASKS, component
from selfsup.pipeline.dags import PIPELINES, ClusterOptions, build
from selfsup.pipeline.errors import PipelineError
from selfsup.store import atomic_write_bytes

_SDK_STAMP = re.compile(r"^sdkVersion: kfp-\S+\n", re.MULTILINE)
_HEADER = re.compile(r"\A(#[^\n]*\n)+")


def strip_sdk_version(text: str) -> str:
    """The golden form: no SDK version stamp, no leading comment block."""
    return _SDK_STAMP.sub("", _HEADER.sub("", text))


def _compile(target: Any) -> str:
    from kfp import compiler

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.yaml"
        compiler.Compiler().compile(target, str(path))
        return path.read_text()


def pipeline_yaml(name: str, options: ClusterOptions | None = None) -> str:
    """The compiled IR YAML of pipeline ``name``."""
    return _compile(build(name, options))


def component_yaml(name: str, options: ClusterOptions | None = None) -> str:
    """The compiled YAML of task ``name``'s component (loadable on its own)."""
    if name not in TASKS:
        raise PipelineError(f"unknown task {name!r}; available: {sorted(TASKS)}")
    opts = options or ClusterOptions()
    on_gpu = TASKS[name].gpu and opts.gpu is not None
    return _compile(component(name, opts.gpu_image if on_gpu else opts.image))


def compile_pipeline(
    name: str, out: Path, options: ClusterOptions | None = None, golden: bool = False
) -> Path:
    """Write pipeline ``name`` to ``out`` (atomically); ``golden`` strips the SDK stamp."""
    text = pipeline_yaml(name, options)
    atomic_write_bytes(out, (strip_sdk_version(text) if golden else text).encode())
    return out


def write_goldens(root: Path, options: ClusterOptions | None = None) -> list[Path]:
    """Regenerate ``pipelines/golden/*.yaml`` and ``components/*.yaml`` under ``root``."""
    written = [
        compile_pipeline(name, root / "pipelines/golden" / f"{name}.yaml", options, True)
        for name in PIPELINES
    ]
    for name in TASKS:
        target = root / "components" / f"{name}.yaml"
        atomic_write_bytes(target, strip_sdk_version(component_yaml(name, options)).encode())
        written.append(target)
    return written
