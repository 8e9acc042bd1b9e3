"""The pretrain stage on every GPU of this machine: what a pipeline task with ``--gpus N`` runs.

KFP gives a task one pod, which may hold several GPUs, and starts one process in it. With two or
more visible GPUs this launches ``torchrun --standalone --nproc-per-node=N selfsup pretrain …``
(the same CLI and DDP code as the Kubeflow Trainer TrainJob, docs/distributed.md) and returns the
metrics rank 0 wrote; with fewer, or when already inside a torchrun job, it is the stage itself.
Several nodes are the TrainJob's job, not a pipeline task's.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from selfsup.config import Params, PretrainParams, render_params
from selfsup.errors import SelfsupError
from selfsup.train import distributed, stage

log = logging.getLogger("selfsup.launch")


class LaunchError(SelfsupError):
    """A rank of the multi-GPU job failed (its log is above)."""


def torchrun_command(processes: int, script: Path, arguments: list[str]) -> list[str]:
    """``torchrun`` as this interpreter's module, one node, ``processes`` ranks."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        str(script),
        *arguments,
    ]


def run_on_every_gpu(
    dataset: Path, pairs: Path | None = None, *, params: PretrainParams, out: Path, **options: Any
) -> dict[str, Any]:
    """:func:`selfsup.train.stage.run` over all of this machine's GPUs (one rank each);
    ``options`` are the stage's (``checkpoints``, ``resume``, ``mirror``), passed on as the
    CLI's flags under torchrun."""
    processes = torch.cuda.device_count()
    if processes < 2 or distributed.from_env().enabled:
        return stage.run(dataset, pairs, params=params, out=out, **options)
    with tempfile.TemporaryDirectory(prefix="selfsup-launch-") as tmp:
        config, metrics = Path(tmp) / "params.yaml", Path(tmp) / "metrics.json"
        config.write_text(render_params(Params(pretrain=params)))
        arguments = ["pretrain", "--params", str(config), "--data", str(dataset)]
        arguments += ["--out", str(out), "--metrics", str(metrics)]
        arguments += ["--pairs", str(pairs)] if pairs is not None else []
        arguments += _flags(options)
        script = Path(sys.executable).with_name("selfsup")
        log.info("pretrain on %d GPUs: torchrun --nproc-per-node=%d", processes, processes)
        done = subprocess.run(torchrun_command(processes, script, arguments), env=os.environ)
        if done.returncode != 0:
            raise LaunchError(f"pretrain on {processes} GPUs failed (exit {done.returncode})")
        result: dict[str, Any] = json.loads(metrics.read_text())
        return result


def _flags(options: dict[str, Any]) -> list[str]:
    """The stage's keyword options as ``selfsup pretrain`` flags."""
    flags = {"checkpoints": "--checkpoints", "mirror": "--checkpoint-mirror", "resume": "--resume"}
    unknown = set(options) - set(flags)
    if unknown:
        raise TypeError(f"unknown pretrain options {sorted(unknown)}")
    out: list[str] = []
    for key, value in options.items():
        if key == "resume":
            out += [flags[key]] if value else []
        elif value is not None:
            out += [flags[key], str(value)]
    return out
