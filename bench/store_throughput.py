"""Artifact store throughput against baselines measured in the same run, on a real Ceph RGW.

1. A ~200 MB model directory (one large weights file + small files) uploaded and downloaded
   through ``selfsup.store`` (manifest-verified, content-addressed, sha256 checked on download)
   and through boto3's managed transfer (``upload_file``/``download_file``, default
   TransferConfig: 8 MiB multipart threshold/chunks, 10 threads) to fresh prefixes. Prints MB/s
   and the ratio selfsup / boto3 (> 1: selfsup is faster). Median of ``--repeats`` runs
   (default 5), alternating which tool goes first, after an untimed warm-up upload of each.
2. A 10,000-image dataset pushed as the project's shards and as 10,000 loose PNG files, through
   ``selfsup.store`` and through ``dvc push`` (the DVC S3 remote, default jobs). Prints seconds
   and the ratio against ``dvc push`` of the loose files.

Starts its own throw-away Ceph RGW (needs `make system-deps`); takes about two minutes.

    python bench/store_throughput.py [--model-mb 200] [--images 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import torch
from boto3.s3.transfer import TransferConfig
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from selfsup.data.shards import Split, write_dataset  # noqa: E402
from selfsup.store import write_manifest  # noqa: E402
from selfsup.store.artifacts import ArtifactStore  # noqa: E402
from selfsup.store.s3 import S3Backend, S3Settings  # noqa: E402
from tests.fixtures.services import S3Service, ceph_rgw  # noqa: E402


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def model_dir(root: Path, megabytes: int) -> int:
    """A model directory: one large weights file + metrics/loss/manifest, like pretrain's."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    (root / "encoder.pt").write_bytes(rng.bytes(megabytes << 20))
    (root / "metrics.json").write_text(json.dumps({"loss": [1.0] * 100}))
    (root / "loss.csv").write_text("epoch,loss\n" + "".join(f"{i},1.0\n" for i in range(200)))
    write_manifest(root, "encoder", {})
    return sum(p.stat().st_size for p in root.iterdir())


def bench_model(
    s3: S3Settings, client: Any, work: Path, megabytes: int, repeats: int
) -> dict[str, Any]:
    src = work / "model"
    size = model_dir(src, megabytes)
    files = sorted(p for p in src.iterdir() if p.is_file())
    bucket = "bench-model"
    S3Backend(bucket, "", s3).ensure_bucket()
    config = TransferConfig()  # boto3's defaults: what a user of the managed transfer gets
    times: dict[str, list[float]] = {
        k: [] for k in ("selfsup_up", "boto3_up", "selfsup_down", "boto3_down")
    }
    # Warm-up (not timed): the first writes into a fresh RGW create its pools and grow the
    # in-memory OSD (the first 200 MB upload took ~3x longer than the next ones, either tool).
    ArtifactStore(S3Backend(bucket, "warm", s3)).push(src, "w")
    client.upload_file(str(src / "encoder.pt"), bucket, "warm/boto3", Config=config)

    def boto_up(i: int) -> None:
        for f in files:
            client.upload_file(str(f), bucket, f"boto3-{i}/{f.name}", Config=config)

    def boto_down(i: int) -> None:
        out = work / f"boto-{i}"
        out.mkdir()
        for f in files:
            client.download_file(bucket, f"boto3-{i}/{f.name}", str(out / f.name), Config=config)

    for i in range(repeats):  # alternate who goes first, so neither always gets a warm cache
        store = ArtifactStore(S3Backend(bucket, f"selfsup-{i}", s3))  # fresh prefix: no dedup
        dst = work / f"pulled-{i}"
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("selfsup_up", lambda store=store: store.push(src, "models/m")),
            ("boto3_up", lambda i=i: boto_up(i)),
            ("selfsup_down", lambda store=store, dst=dst: store.pull("models/m", dst)),
            ("boto3_down", lambda i=i: boto_down(i)),
        ]
        order = steps if i % 2 == 0 else [steps[1], steps[0], steps[3], steps[2]]
        for key, action in order:
            times[key].append(timed(action))
        shutil.rmtree(dst)
        shutil.rmtree(work / f"boto-{i}")
    med = {k: statistics.median(v) for k, v in times.items()}
    mb = size / 1e6
    return {
        "model_bytes": size,
        "seconds_median": med,
        "seconds_all": times,
        "upload_mb_s": {"selfsup": mb / med["selfsup_up"], "boto3": mb / med["boto3_up"]},
        "download_mb_s": {"selfsup": mb / med["selfsup_down"], "boto3": mb / med["boto3_down"]},
        "upload_ratio_selfsup_over_boto3": med["boto3_up"] / med["selfsup_up"],
        "download_ratio_selfsup_over_boto3": med["boto3_down"] / med["selfsup_down"],
    }


def dataset(work: Path, n: int) -> tuple[Path, Path]:
    """The same ``n`` 32×32 images as loose PNGs and as the project's shards."""
    gen = torch.Generator().manual_seed(0)
    # smooth random images (a few colours per image): PNG sizes like real small images
    base = torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=gen)
    images = torch.nn.functional.interpolate(base.float(), size=32, mode="bilinear").to(torch.uint8)
    labels = torch.arange(n) % 10
    loose = work / "loose"
    for i in range(n):
        path = loose / f"class{int(labels[i])}" / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray(images[i].permute(1, 2, 0).numpy()).save(buffer, format="PNG")
        path.write_bytes(buffer.getvalue())
    write_manifest(loose, "dataset-loose", {})
    shards = work / "shards"
    write_dataset(
        shards,
        {"train": Split(images=images, labels=labels)},
        source="bench",
        class_names=[f"class{i}" for i in range(10)],
        params={},
        shard_size=5_000,
    )
    return loose, shards


def dvc_push(repo_dir: Path, data: Path, service: S3Service, bucket: str) -> float:
    """Seconds of ``dvc push`` of ``data`` (``dvc add`` not counted) to a fresh S3 remote."""
    repo_dir.mkdir()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": service.access_key,
        "AWS_SECRET_ACCESS_KEY": service.secret_key,
        "DVC_NO_ANALYTICS": "1",
    }
    dvc = [sys.executable, "-m", "dvc"]

    def run(*args: str) -> None:
        subprocess.run(args, cwd=repo_dir, env=env, check=True, capture_output=True)

    run("git", "init", "-q")
    run(*dvc, "init", "-q")
    run(*dvc, "remote", "add", "-d", "s3", f"s3://{bucket}/dvc")
    run(*dvc, "remote", "modify", "s3", "endpointurl", service.endpoint)
    shutil.copytree(data, repo_dir / "data", ignore=shutil.ignore_patterns("manifest.json"))
    run(*dvc, "add", "data")
    return timed(lambda: run(*dvc, "push"))


def bench_dataset(s3: S3Settings, service: S3Service, work: Path, n: int) -> dict[str, Any]:
    loose, shards = dataset(work, n)
    out: dict[str, Any] = {
        "images": n,
        "loose_files": sum(1 for p in loose.rglob("*.png")),
        "loose_bytes": sum(p.stat().st_size for p in loose.rglob("*.png")),
        "shard_files": sum(1 for p in shards.rglob("*.pt")),
        "shard_bytes": sum(p.stat().st_size for p in shards.rglob("*.pt")),
    }
    seconds: dict[str, float] = {}
    for kind, src in (("loose", loose), ("shards", shards)):
        bucket = f"bench-data-{kind}"
        S3Backend(bucket, "", s3).ensure_bucket()
        store = ArtifactStore(S3Backend(bucket, "selfsup", s3))  # default: 8 workers
        seconds[f"selfsup_push_{kind}"] = timed(lambda s=store, d=src: s.push(d, "datasets/d"))
        seconds[f"dvc_push_{kind}"] = dvc_push(work / f"dvc-{kind}", src, service, bucket)
    out["seconds"] = seconds
    base = seconds["dvc_push_loose"]
    out["speedup_vs_dvc_push_loose"] = {k: base / v for k, v in seconds.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-mb", type=int, default=200)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="selfsup-bench-"))
    try:
        with ceph_rgw(memstore_bytes=4 << 30) as service:
            s3 = S3Settings(service.endpoint, service.access_key, service.secret_key)
            client = boto3.client(
                "s3",
                endpoint_url=service.endpoint,
                aws_access_key_id=service.access_key,
                aws_secret_access_key=service.secret_key,
                region_name="us-east-1",
            )
            result = {
                "endpoint": "Ceph RGW 16.2 (memstore OSD) on 127.0.0.1",
                "boto3": boto3.__version__,
                "run_id": uuid.uuid4().hex[:8],
                "model": bench_model(s3, client, work, args.model_mb, args.repeats),
                "dataset": bench_dataset(s3, service, work, args.images),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
