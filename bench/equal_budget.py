"""Equal-budget time-to-accuracy: selfsup's real training path vs lightly's documented loop.

Both arms train at the same settings, back to back in one process (``--order`` picks which goes
first), and every epoch's encoder is scored by the same kNN top-1 afterwards:

* **selfsup**: ``selfsup.train.stage.run`` — exactly what ``selfsup pretrain`` runs (data
  loading, the configured augmentation backend, the checkpoint written after every epoch). To
  see each epoch's encoder without touching the loop, the bench wraps the
  ``save_checkpoint`` that the stage calls after every epoch (the same hook tests/conftest.py's
  ``kill_after_first_epoch`` uses): the wrapper lets the real checkpoint be written, reads the
  clocks, then copies the encoder's weights in memory, off the clock. Training with
  ``epochs=k`` and ``resume`` was ruled out: the epoch count is part of the checkpoint's run key
  and of the cosine schedule, so it would train something else.
* **lightly** (the baseline), as lightly's SimCLR example writes it: a plain PyTorch loop over a
  ``DataLoader`` of PIL images through ``SimCLRTransform`` (the augmentation parameters of
  ``AugmentParams``: ``LightlyViews`` of bench/pretrain_throughput.py), each view forwarded
  separately (``--lightly-step concat``: one forward of both, as selfsup does), and
  ``NTXentLoss(temperature=pretrain.temperature)``.

Shared by both: the encoder (``build_encoder``) and ``ProjectionHead`` with the same initial
weights (``torch.manual_seed(pretrain.seed)`` then the encoder, then the head, as the stage
builds them), the input normalisation recorded in the dataset manifest, the optimiser and the
warm-up + cosine schedule of ``selfsup.train.optim`` (stepped every batch), the batch size, the
epochs, the same ``max_images`` subset of the train split, the DataLoader workers, the device
and the threads.

Clocks: each arm's clock starts before it reads its data and stops at the end of each epoch
(for selfsup, once that epoch's checkpoint is written, as in ``selfsup pretrain``). Wall time is
``time.perf_counter``; CPU time is ``getrusage`` of this process plus its reaped children (the
DataLoader workers, which end with each epoch: ``persistent_workers`` is off in both). Copying
the weights is excluded from both clocks; the kNN evaluation runs after both arms have trained,
so it is off both clocks and cannot disturb them.

kNN top-1 is ``selfsup evaluate``'s (``selfsup.evaluate.knn.knn_classify`` with
``evaluate.knn_k`` and ``evaluate.knn_temperature``): encoder features of the test split against
a bank of the whole train split. Epoch 0 is the initial weights (both arms share them) at time 0.

Reported: per epoch of each arm, the cumulative training wall and CPU seconds and the kNN; the
wall and CPU time each arm takes to reach lightly's final kNN (linear interpolation between
epochs; ``null`` when not reached) and their ratios selfsup / lightly (< 1: selfsup is faster);
the kNN of each at the other's final wall time (an arm that has finished keeps its final kNN).
``--jsonl PATH`` appends the whole record as one JSON line.

A dataset to run on (real CIFAR-10, about 25 s): the ``data`` stage of dvc.yaml,

    SELFSUP_CIFAR10_ARCHIVE=/work/shared/data/cifar10-jpg.tar.gz \\
        selfsup data prepare --params params.yaml --out /tmp/cifar10

then the default profile's measurement (19 minutes on a 2-core machine: 4 and 11 minutes of
training, 17 kNN passes of about 14 s; BENCHMARKS.md)::

    python bench/equal_budget.py --data /tmp/cifar10 --lightly-workers 1 \\
        --jsonl bench/equal_budget.jsonl

Options: ``--profile default|gpu|tiny``, ``--set pretrain.KEY=VALUE`` (repeatable; any dotted key,
validated like params.yaml), ``--seed N`` (``pretrain.seed``), ``--order
selfsup-first|lightly-first``. lightly==1.6.0 is in the ``dev`` extra (``pip install -e
'.[dev]'``), so ``make venv`` installs it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

import selfsup
from selfsup.config import Params, apply_overrides, profile_params, validate_params
from selfsup.data.shards import Split, load_split, read_dataset_manifest
from selfsup.errors import ConfigError
from selfsup.evaluate.knn import knn_classify, top1_accuracy
from selfsup.models import Encoder, ProjectionHead, build_encoder
from selfsup.models.artifact import data_normalization
from selfsup.models.embed import embed
from selfsup.models.encoders import Normalization
from selfsup.train import optim, stage
from selfsup.train.accel import resolve_device
from selfsup.train.loaders import training_split

try:
    from lightly.loss import NTXentLoss
    from pretrain_throughput import LightlyViews  # bench/: the baseline's data path
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError(
        f"bench/equal_budget.py needs lightly==1.6.0 (the dev extra: pip install -e '.[dev]') "
        f"and bench/ on sys.path (run it as `python bench/equal_budget.py`): {exc}"
    ) from exc

log = logging.getLogger("bench.equal_budget")

# ---------------------------------------------------------------------------------------------
# The report: pure functions of the per-epoch curves (tested by hand-computed examples).


def crossing(values: Sequence[float], target: float) -> float | None:
    """The first fractional index at which the piecewise-linear ``values`` reach ``target``
    (``i + f``: between points ``i`` and ``i + 1``); None when no point reaches it."""
    for i, value in enumerate(values):
        if value >= target:
            if i == 0:
                return 0.0
            before = values[i - 1]
            return i - 1 + (target - before) / (value - before)
    return None


def at(series: Sequence[float], position: float) -> float:
    """``series`` linearly interpolated at a fractional index."""
    last = len(series) - 1
    if not 0 <= position <= last:
        raise ValueError(f"position {position} outside 0..{last}")
    if last == 0:
        return float(series[0])
    i = min(int(position), last - 1)
    return float(series[i] + (position - i) * (series[i + 1] - series[i]))


def value_at_time(times: Sequence[float], values: Sequence[float], t: float) -> float:
    """``values`` at time ``t`` on the piecewise-linear curve through ``(times, values)``; past
    the last time the last value (training is over, the model stays as it ended)."""
    if t >= times[-1]:
        return float(values[-1])
    if t <= times[0]:
        return float(values[0])
    for i in range(1, len(times)):
        if t <= times[i]:
            fraction = (t - times[i - 1]) / (times[i] - times[i - 1])
            return float(values[i - 1] + fraction * (values[i] - values[i - 1]))
    raise AssertionError("unreachable")


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def summarize(
    selfsup_arm: dict[str, list[float]], lightly_arm: dict[str, list[float]]
) -> dict[str, Any]:
    """The comparison of two curves ``{"wall": [...], "cpu": [...], "knn": [...]}`` (index 0:
    the initial weights at time 0, then one point per epoch)."""
    target = lightly_arm["knn"][-1]
    reach: dict[str, dict[str, float | None]] = {}
    for name, arm in (("selfsup", selfsup_arm), ("lightly", lightly_arm)):
        position = crossing(arm["knn"], target)
        reach[name] = {
            "epochs": position,
            "wall_s": None if position is None else at(arm["wall"], position),
            "cpu_s": None if position is None else at(arm["cpu"], position),
        }
    s_final_wall, l_final_wall = selfsup_arm["wall"][-1], lightly_arm["wall"][-1]
    s_at_l = value_at_time(selfsup_arm["wall"], selfsup_arm["knn"], l_final_wall)
    l_at_s = value_at_time(lightly_arm["wall"], lightly_arm["knn"], s_final_wall)
    return {
        "target_knn": target,
        "reached": reach["selfsup"]["epochs"] is not None,
        "time_to_target": reach,
        "wall_ratio_to_target": _ratio(reach["selfsup"]["wall_s"], reach["lightly"]["wall_s"]),
        "cpu_ratio_to_target": _ratio(reach["selfsup"]["cpu_s"], reach["lightly"]["cpu_s"]),
        "knn_at_lightly_final_wall": {"wall_s": l_final_wall, "selfsup": s_at_l, "lightly": target},
        "knn_at_selfsup_final_wall": {
            "wall_s": s_final_wall,
            "selfsup": selfsup_arm["knn"][-1],
            "lightly": l_at_s,
        },
        "knn_gain_at_equal_wall": s_at_l - target,
        "final": {
            "selfsup_knn": selfsup_arm["knn"][-1],
            "lightly_knn": target,
            "wall_ratio": _ratio(s_final_wall, l_final_wall),
            "cpu_ratio": _ratio(selfsup_arm["cpu"][-1], lightly_arm["cpu"][-1]),
        },
    }


def _fmt(value: float | None, spec: str) -> str:
    return "not reached" if value is None else format(value, spec)


def render(record: dict[str, Any]) -> str:
    """The human-readable table of a record."""
    lines = []
    for name in record["order"]:
        arm = record[name]
        lines.append(f"{name}: epoch  train wall s  train CPU s  kNN top-1")
        rows = zip(arm["wall"], arm["cpu"], arm["knn"], strict=True)
        for epoch, (wall, cpu, knn) in enumerate(rows):
            lines.append(f"{'':{len(name)}}  {epoch:>5}  {wall:>12.1f}  {cpu:>11.1f}  {knn:.4f}")
    s = record["summary"]
    reach = s["time_to_target"]

    def reached(name: str) -> str:
        when = reach[name]
        if when["wall_s"] is None:
            return f"  {name}: not reached (its final kNN {record[name]['knn'][-1]:.4f})"
        return f"  {name} after {when['wall_s']:.1f} s wall, {when['cpu_s']:.1f} s CPU"

    lines += [
        f"lightly's final kNN {s['target_knn']:.4f}, reached by",
        reached("selfsup"),
        reached("lightly"),
        f"  ratio selfsup/lightly: wall {_fmt(s['wall_ratio_to_target'], '.3f')}, "
        f"CPU {_fmt(s['cpu_ratio_to_target'], '.3f')}",
        f"kNN at lightly's final wall time ({s['knn_at_lightly_final_wall']['wall_s']:.1f} s): "
        f"selfsup {s['knn_at_lightly_final_wall']['selfsup']:.4f}, lightly "
        f"{s['target_knn']:.4f} ({100 * s['knn_gain_at_equal_wall']:+.2f} pts)",
        f"kNN at selfsup's final wall time ({s['knn_at_selfsup_final_wall']['wall_s']:.1f} s): "
        f"selfsup {s['knn_at_selfsup_final_wall']['selfsup']:.4f}, lightly "
        f"{s['knn_at_selfsup_final_wall']['lightly']:.4f}",
        f"final: wall ratio {_fmt(s['final']['wall_ratio'], '.3f')}, CPU ratio "
        f"{_fmt(s['final']['cpu_ratio'], '.3f')}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The clocks and the two arms.


def cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (DataLoader workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class Clock:
    """Wall and CPU seconds since construction, less the spans run under :meth:`paused`."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), cpu_seconds()

    def now(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall0, cpu_seconds() - self.cpu0

    @contextmanager
    def paused(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            self.wall0 += time.perf_counter() - wall
            self.cpu0 += cpu_seconds() - cpu


@dataclass
class Arm:
    """One arm's curve: cumulative training wall/CPU seconds after each epoch (index 0: the
    start) and the encoder weights then, plus the loop's own per-epoch numbers."""

    name: str
    wall: list[float] = field(default_factory=lambda: [0.0])
    cpu: list[float] = field(default_factory=lambda: [0.0])
    weights: list[dict[str, torch.Tensor]] = field(default_factory=list)
    knn: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def epoch_done(self, clock: Clock, encoder_state: dict[str, torch.Tensor]) -> None:
        wall, cpu = clock.now()
        self.wall.append(wall)
        self.cpu.append(cpu)
        with clock.paused():
            self.weights.append(_copy(encoder_state))

    def curve(self) -> dict[str, Any]:
        return {"wall": self.wall, "cpu": self.cpu, "knn": self.knn, **self.extra}


def _copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


_SAVE = "save_checkpoint"  # what the stage calls once an epoch is over


@contextmanager
def _after_each_checkpoint(hook: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Call ``hook(state)`` after the stage writes each epoch's checkpoint."""
    real_save: Callable[[Path, dict[str, Any]], Path] = getattr(stage, _SAVE)

    def save_then_hook(directory: Path, state: dict[str, Any]) -> Path:
        path = real_save(directory, state)
        hook(state)
        return path

    setattr(stage, _SAVE, save_then_hook)
    try:
        yield
    finally:
        setattr(stage, _SAVE, real_save)


def run_selfsup(data: Path, params: Params, workdir: Path) -> Arm:
    """``selfsup pretrain``'s training: ``stage.run`` as the CLI calls it (fresh checkpoints)."""
    arm, clock = Arm("selfsup"), Clock()
    with _after_each_checkpoint(lambda state: arm.epoch_done(clock, state["encoder"])):
        metrics = stage.run(
            data,
            params=params.pretrain,
            out=workdir / "selfsup-model",
            checkpoints=workdir / "selfsup-ckpt",
        )
    arm.extra = {
        "stage_wall_s": clock.now()[0],  # with the model directory written after the last epoch
        "epoch_seconds": metrics["epoch_seconds"],
        "images_per_second": metrics["images_per_second"],
        "loss_per_epoch": metrics["loss_per_epoch"],
    }
    return arm


def initial_encoder_state(params: Params, data: Path) -> dict[str, torch.Tensor]:
    """The encoder weights both arms start from (seeded as the stage seeds)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.pretrain.seed)
        return _copy(build_encoder(params.pretrain, data_normalization(data)[0]).state_dict())


def lightly_model(
    params: Params, normalization: Normalization, device: torch.device
) -> tuple[Encoder, nn.Module]:
    """The encoder and encoder + head, seeded as the stage seeds them: the encoder's weights
    drawn first, then the head's."""
    p = params.pretrain
    torch.manual_seed(p.seed)
    encoder = build_encoder(p, normalization).to(device)
    projector = ProjectionHead(encoder.out_dim, p.projector_hidden, p.projector_out).to(device)
    return encoder, nn.Sequential(encoder, projector)


def run_lightly(
    data: Path, params: Params, concat: bool = False, workers: int | None = None
) -> Arm:
    """lightly's SimCLR example loop at selfsup's settings (``workers``: its DataLoader workers,
    None: ``pretrain.num_workers``, as selfsup's)."""
    p = params.pretrain
    arm, clock = Arm("lightly"), Clock()
    device = resolve_device(p.device)
    images = training_split(data, p).images
    normalization, _ = data_normalization(data)
    dataset = LightlyViews(images, p.augment)
    encoder, model = lightly_model(params, normalization, device)
    criterion = NTXentLoss(temperature=p.temperature)
    optimizer = optim.optimizer(p, model)
    steps = len(images) // p.batch_size
    scheduler = optim.scheduler(optimizer, steps * p.epochs, math.ceil(p.warmup_epochs * steps))
    loader = DataLoader(
        dataset,
        batch_size=p.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=p.num_workers if workers is None else workers,
        generator=torch.Generator().manual_seed(p.seed),
        pin_memory=device.type == "cuda",
    )
    losses, rates, seconds = [], [], []
    for epoch in range(p.epochs):
        model.train()
        started, total, seen = time.perf_counter(), torch.zeros(()), 0
        for x0, x1 in loader:
            x0, x1 = x0.to(device), x1.to(device)
            if concat:
                z0, z1 = model(torch.cat([x0, x1])).chunk(2)
            else:
                z0, z1 = model(x0), model(x1)
            loss = criterion(z0, z1)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
            total += loss.detach().cpu() * len(x0)
            seen += len(x0)
        elapsed = time.perf_counter() - started
        losses.append(float(total) / max(seen, 1))
        rates.append(seen / elapsed)
        seconds.append(elapsed)
        log.info(
            "lightly epoch %d/%d loss %.4f %.0f images/s",
            epoch + 1,
            p.epochs,
            losses[-1],
            rates[-1],
        )
        arm.epoch_done(clock, encoder.state_dict())
    arm.extra = {"epoch_seconds": seconds, "images_per_second": rates, "loss_per_epoch": losses}
    return arm


@torch.no_grad()
def knn_top1(
    weights: dict[str, torch.Tensor], params: Params, data: Path, train: Split, test: Split
) -> float:
    """``selfsup evaluate``'s kNN top-1 of an encoder with these weights (on the CPU)."""
    encoder = build_encoder(params.pretrain, data_normalization(data)[0])
    encoder.load_state_dict(weights)
    e = params.evaluate
    bank = embed(encoder, train.images, e.batch_size)
    queries = embed(encoder, test.images, e.batch_size)
    names = read_dataset_manifest(data, verify=False).get("class_names") or []
    result = knn_classify(
        bank,
        train.labels,
        queries,
        num_classes=max(len(names), int(max(train.labels.max(), test.labels.max())) + 1),
        k=e.knn_k,
        temperature=e.knn_temperature,
        batch_size=e.batch_size,
    )
    return float(top1_accuracy(result.predictions, test.labels))


# ---------------------------------------------------------------------------------------------


def bench_params(profile: str, sets: Sequence[str], seed: int | None) -> Params:
    """A profile's params with ``--set`` overrides (and ``--seed``), validated as params.yaml."""
    overrides = [*sets, *([f"pretrain.seed={seed}"] if seed is not None else [])]
    raw = apply_overrides(profile_params(profile).model_dump(), overrides)
    where = f"profile {profile!r}" + (f" with --set {' '.join(overrides)}" if overrides else "")
    params = validate_params(raw, where)
    if params.pretrain.method != "simclr":
        raise ConfigError(f"pretrain.method={params.pretrain.method}: the bench compares SimCLR")
    return params


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a prepared dataset directory")
    parser.add_argument("--profile", default="default", help="default | gpu | tiny")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one params value, e.g. --set pretrain.epochs=2; repeatable",
    )
    parser.add_argument("--seed", type=int, default=None, help="pretrain.seed")
    parser.add_argument(
        "--order", choices=["selfsup-first", "lightly-first"], default="selfsup-first"
    )
    parser.add_argument(
        "--lightly-step",
        choices=["separate", "concat"],
        default="separate",
        help="lightly's forward: each view on its own (its example) or both in one batch",
    )
    parser.add_argument(
        "--lightly-workers",
        type=int,
        default=None,
        help="lightly's DataLoader workers (default: pretrain.num_workers, as selfsup's); its PIL "
        "views are made per image, so it may be faster with a worker than without",
    )
    parser.add_argument("--jsonl", type=Path, help="append the record as one JSON line here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    params = bench_params(args.profile, args.sets, args.seed)
    data = Path(args.data)
    order = ["selfsup", "lightly"] if args.order == "selfsup-first" else ["lightly", "selfsup"]
    arms: dict[str, Arm] = {}
    with tempfile.TemporaryDirectory(prefix="equal-budget-") as tmp:
        for name in order:
            log.info("training %s", name)
            if name == "selfsup":
                arms[name] = run_selfsup(data, params, Path(tmp))
            else:
                concat = args.lightly_step == "concat"
                arms[name] = run_lightly(data, params, concat, args.lightly_workers)

    log.info("kNN of every epoch's encoder (off the clocks)")
    started = time.perf_counter()
    train, test = load_split(data, "train"), load_split(data, "test")
    initial = initial_encoder_state(params, data)
    knn0 = knn_top1(initial, params, data, train, test)
    for arm in arms.values():
        arm.knn = [knn0, *(knn_top1(w, params, data, train, test) for w in arm.weights)]
    eval_seconds = time.perf_counter() - started

    curves = {name: arm.curve() for name, arm in arms.items()}
    record: dict[str, Any] = {
        "bench": "equal_budget",
        "utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "selfsup": selfsup.__version__,
            "git": _git_revision(),
            "torch": torch.__version__,
            "lightly": importlib.metadata.version("lightly"),
            "python": platform.python_version(),
        },
        "argv": sys.argv[1:] if argv is None else list(argv),
        "profile": args.profile,
        "sets": args.sets,
        "order": order,
        "lightly_step": args.lightly_step,
        "lightly_workers": params.pretrain.num_workers
        if args.lightly_workers is None
        else args.lightly_workers,
        "data": str(data),
        "data_hash": read_dataset_manifest(data, verify=False)["content_hash"],
        "train_images": len(training_split(data, params.pretrain)),
        "knn_bank": len(train),
        "knn_queries": len(test),
        "pretrain": params.pretrain.model_dump(),
        "evaluate": {
            "knn_k": params.evaluate.knn_k,
            "knn_temperature": params.evaluate.knn_temperature,
        },
        "eval_seconds": eval_seconds,
        **curves,
        "summary": summarize(curves["selfsup"], curves["lightly"]),
    }
    print(render(record))
    print(json.dumps(record["summary"], indent=2))
    if args.jsonl is not None:
        with Path(args.jsonl).open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    return record


if __name__ == "__main__":
    main()
