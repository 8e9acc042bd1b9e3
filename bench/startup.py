"""Start-up of each stage command, and the tiny profile's whole ``dvc repro`` chain.

**Start-up** is the time from spawning a stage command to the moment its stage begins real work:
the CLI's imports, params validation, the stage module's imports (torch, kornia ...), and the
stage's first check of its inputs. It is measured by running each command of ``dvc.yaml`` on the
tiny profile with an input directory that does not exist: the stage's first act is to open it,
so the command exits 2 right there, and its wall time is the start-up. Two references are timed
in the same rounds: ``python -c pass`` (the interpreter) and ``python -c "import torch"`` (the
floor of any stage that trains or embeds). Rounds are interleaved; medians are reported.

**The tiny chain** is ``dvc repro`` of every stage on the ``tiny`` profile in a fresh copy of the
working tree (the test suite's ``tests/fixtures/repo_copy.py``), from an empty cache; it is timed
``--chains`` times.

    python bench/startup.py [--rounds 5] [--chains 1] [--jsonl out.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test suite's working-tree copy, reused as is
from fixtures.repo_copy import git_repo_copy  # noqa: E402

BIN = Path(sys.executable).parent
MISSING = "/nonexistent/selfsup-startup"
# Each stage as dvc.yaml calls it, pointed at a missing input (its first check).
_COMMANDS = {
    "pretrain": "pretrain --data {missing} --out {tmp}/o",
    "evaluate": "evaluate --model {missing} --data {missing} --out {tmp}/o",
    "mine": "mine --set mine.source=folder --videos {missing} --out {tmp}/o",
    "unlearn": "unlearn --model {missing} --data {missing} --forget {missing} --out {tmp}/o",
    "distill": "distill --model {missing} --data {missing} --out {tmp}/o",
    "compress": "compress --model {missing} --data {missing} --out {tmp}/o",
}
REFERENCES = {"python -c pass": ["-c", "pass"], "import torch": ["-c", "import torch"]}


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def timed(args: list[str], cwd: Path, expect: int) -> float:
    began = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != expect:
        raise SystemExit(
            f"{' '.join(args)}: exit {done.returncode}, expected {expect}\n"
            f"{done.stdout}\n{done.stderr}"
        )
    return seconds


def write_tiny_params(directory: Path) -> None:
    command = [BIN / "selfsup", "params", "write", "--profile", "tiny", "--force", "--out"]
    subprocess.run([*command, directory / "params.yaml"], check=True, capture_output=True)


def startup(rounds: int) -> dict[str, float]:
    """Median seconds per stage command and per reference, over interleaved rounds."""
    times: dict[str, list[float]] = {name: [] for name in [*REFERENCES, *_COMMANDS]}
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        cwd = Path(tmp)
        write_tiny_params(cwd)
        for _ in range(rounds):
            for name, args in REFERENCES.items():
                times[name].append(timed([sys.executable, *args], cwd, 0))
            for name, line in _COMMANDS.items():
                command = [str(BIN / "selfsup"), *line.format(missing=MISSING, tmp=tmp).split()]
                times[name].append(timed(command, cwd, 2))
    return {name: statistics.median(values) for name, values in times.items()}


def tiny_chain() -> float:
    """Seconds of ``dvc repro`` (every stage, tiny profile) in a fresh working-tree copy."""
    with tempfile.TemporaryDirectory(prefix="tiny-chain-") as tmp:
        repo = git_repo_copy(Path(tmp) / "repo")
        write_tiny_params(repo)
        return timed([str(BIN / "dvc"), "repro"], repo, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--jsonl", type=Path)
    args = parser.parse_args()
    medians = startup(args.rounds)
    chains = [tiny_chain() for _ in range(args.chains)]
    floor = medians["import torch"]
    print(f"{'command':16s} {'median s':>9s} {'- import torch':>15s}")
    for name, seconds in medians.items():
        print(f"{name:16s} {seconds:9.2f} {seconds - floor:+15.2f}")
    print(f"tiny dvc repro (all stages): {', '.join(f'{s:.1f} s' for s in chains)}")
    if args.jsonl:
        record = {
            "bench": "startup",
            "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "rounds": args.rounds,
            "medians": medians,
            "tiny_chain_seconds": chains,
        }
        with args.jsonl.open("a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
