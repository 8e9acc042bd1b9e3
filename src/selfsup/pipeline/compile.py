"""Compile pipelines and components to KFP IR YAML, and the golden form the tests compare.

The golden copies under ``pipelines/golden/`` and ``components/`` are the compiled YAML minus the
SDK version stamp and the leading comment block (a human summary whose dict defaults the SDK
prints in hash order, so it differs between runs), so upgrading the pinned ``kfp`` alone does not
fail the comparison while any change to the DAG, images, resources or GPU settings does.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfsup.pipeline import forget, retrain, train
from selfsup.pipeline.components import (
    compress,
    data,
    distill,
    evaluate,
    forget_register,
    mine,
    pretrain,
    pull,
    register,
    unlearn,
)
from selfsup.pipeline.errors import PipelineError
from selfsup.pipeline.train import ClusterOptions
from selfsup.store import atomic_write_bytes

# name -> builder(options) of each pipeline.
PIPELINES: dict[str, Callable[[ClusterOptions], Any]] = {
    "train": lambda opts: train.build(opts),
    "retrain": lambda opts: retrain.build(opts),
    "forget": lambda opts: forget.build(opts),
}

# name -> (builder(image), whether it runs on the GPU pool) of each stage's container component.
COMPONENTS: dict[str, tuple[Callable[[str], Any], bool]] = {
    "data": (data.container, False),
    "mine-plan": (mine.plan_container, False),
    "mine-shard": (mine.shard_container, False),
    "mine-merge": (mine.merge_container, False),
    "pretrain": (pretrain.container, True),
    "evaluate": (evaluate.container, False),
    "distill": (distill.container, True),
    "compress": (compress.container, False),
    "register": (register.container, False),
    "pull": (pull.container, False),
    "unlearn": (unlearn.container, True),
    "forget-register": (forget_register.container, False),
}

_SDK_STAMP = re.compile(r"^sdkVersion: kfp-\S+\n", re.MULTILINE)
_HEADER = re.compile(r"\A(#[^\n]*\n)+")


def strip_sdk_version(text: str) -> str:
    """The golden form: no SDK version stamp, no leading comment block."""
    return _SDK_STAMP.sub("", _HEADER.sub("", text))


def _compile(component: Any) -> str:
    from kfp import compiler

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "out.yaml"
        compiler.Compiler().compile(component, str(target))
        return target.read_text()


def pipeline_yaml(name: str, options: ClusterOptions | None = None) -> str:
    """The compiled IR YAML of pipeline ``name``."""
    if name not in PIPELINES:
        raise PipelineError(f"unknown pipeline {name!r}; available: {sorted(PIPELINES)}")
    return _compile(PIPELINES[name](options or ClusterOptions()))


def component_yaml(name: str, options: ClusterOptions | None = None) -> str:
    """The compiled YAML of one stage's container component (loadable on its own)."""
    opts = options or ClusterOptions()
    builder, on_gpu = COMPONENTS[name]
    return _compile(builder(opts.gpu_image if on_gpu and opts.gpu else opts.image))


def compile_pipeline(
    name: str, out: Path, options: ClusterOptions | None = None, golden: bool = False
) -> Path:
    """Write pipeline ``name`` to ``out`` (atomically); ``golden`` strips the SDK stamp."""
    text = pipeline_yaml(name, options)
    atomic_write_bytes(out, (strip_sdk_version(text) if golden else text).encode())
    return out


def write_goldens(root: Path, options: ClusterOptions | None = None) -> list[Path]:
    """Regenerate ``pipelines/golden/*.yaml`` and ``components/*.yaml`` under ``root``."""
    written = []
    for name in PIPELINES:
        written.append(
            compile_pipeline(name, root / "pipelines/golden" / f"{name}.yaml", options, True)
        )
    for name in COMPONENTS:
        target = root / "components" / f"{name}.yaml"
        atomic_write_bytes(target, strip_sdk_version(component_yaml(name, options)).encode())
        written.append(target)
    return written
