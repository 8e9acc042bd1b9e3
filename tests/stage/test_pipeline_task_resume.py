"""A retried pretrain task resumes: the compiled component's own container command (KFP's
executor in a subprocess, as in a pod) keeps its checkpoints in a real S3 store (Ceph RGW) under
the run key; SIGKILLed mid-run and started again on an empty disk — a retry's fresh pod — it
continues after the last finished epoch and ends with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from fixtures.kfp_executor import task_command

from selfsup.config import profile_params
from selfsup.models.artifact import load_encoder
from selfsup.pipeline.dags import section_arguments
from selfsup.store.s3 import S3Backend, S3Settings

EPOCHS = 6


def _pretrain_params() -> dict[str, object]:
    tiny = profile_params("tiny")
    params = tiny.model_copy(
        update={
            "pretrain": tiny.pretrain.model_copy(
                update={"epochs": EPOCHS, "batch_size": 8, "max_images": 48, "num_workers": 0}
            )
        }
    )
    return section_arguments(params)["pretrain"]


def _start(tiny_dataset: Path, task_dir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    digest = json.loads((tiny_dataset / "manifest.json").read_text())
    command = task_command(
        "pretrain",
        task_dir,
        pretrain_params=_pretrain_params(),
        data_hash=digest["content_hash"],
        dataset=tiny_dataset,
        mined=tiny_dataset,
        run_id="run-1",
    )
    return subprocess.Popen(  # its own process group: a pod's kill takes every process
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _env(s3_settings: S3Settings, mirror: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # python3
        "SELFSUP_S3_ENDPOINT": s3_settings.endpoint,
        "AWS_ACCESS_KEY_ID": s3_settings.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_settings.secret_key,
        "SELFSUP_CHECKPOINTS": mirror,
    }


def test_a_killed_pretrain_task_resumes_from_the_store_to_identical_weights(
    tiny_dataset: Path, tmp_path: Path, s3_settings: S3Settings, bucket: str
) -> None:
    straight = _start(tiny_dataset, tmp_path / "straight", _env(s3_settings, f"s3://{bucket}/a"))
    log, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, log

    env = _env(s3_settings, f"s3://{bucket}/b")
    killed = _start(tiny_dataset, tmp_path / "try-1", env)
    store = S3Backend(bucket, "b", s3_settings)
    deadline = time.monotonic() + 240
    while not store.list_keys("") and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until epoch 1's checkpoint is in the store
    os.killpg(killed.pid, signal.SIGKILL)
    log, _ = killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL, f"finished before the kill:\n{log}"
    assert not (tmp_path / "try-1" / "model" / "encoder.pt").exists()

    retried = _start(tiny_dataset, tmp_path / "try-2", env)  # a fresh disk: nothing local
    log, _ = retried.communicate(timeout=300)
    assert retried.returncode == 0, log
    assert "pulled checkpoint" in log
    resumed_after = int(log.split("resumed from ")[1].split("after epoch ")[1].split()[0])
    assert 1 <= resumed_after < EPOCHS, log

    a = load_encoder(tmp_path / "straight" / "model")[0].state_dict()
    b = load_encoder(tmp_path / "try-2" / "model")[0].state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
