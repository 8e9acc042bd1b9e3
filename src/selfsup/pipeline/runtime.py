"""What a pipeline task does around its stage call, inside its pod (or a local subprocess).

A task function (:mod:`selfsup.pipeline.components`) is ``with task(...) as t:`` plus the stage
call. :func:`task` validates the params section, refuses a dataset whose content hash is not
the task's cache key, ends a :class:`~selfsup.errors.SelfsupError` in one line (no traceback,
exit non-zero) and pushes the task's Prometheus metrics (``$SELFSUP_PUSHGATEWAY``; grouped by
the KFP run id and the task's name; also when it fails). :meth:`Task.done` logs the stage's
metrics on the KFP Metrics artifact — KFP's own executor then writes them to the executor output
that the UI reads.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from selfsup.errors import ConfigError, IntegrityError, SelfsupError
from selfsup.observe.metrics import StageRun

# Keys whose value is null: KFP structs cannot carry null (see dags.section_arguments).
NULLS_KEY = "_nulls"


def _section_model(section: str) -> type[BaseModel]:
    from selfsup.config import Params, RegistryParams

    if section == "registry":
        return RegistryParams
    field_info = Params.model_fields.get(section)
    if field_info is None or not isinstance(field_info.annotation, type):
        raise ConfigError(f"unknown params section {section!r}")
    model: type[BaseModel] = field_info.annotation
    return model


def section_params(section: str, values: Mapping[str, Any]) -> Any:
    """Validate one params section (unknown keys and bad values are a ConfigError naming them);
    keys listed under ``NULLS_KEY`` are set to null first."""
    from pydantic import ValidationError

    raw = dict(values)
    nulls = raw.pop(NULLS_KEY, [])
    if not isinstance(nulls, list) or not all(isinstance(k, str) for k in nulls):
        raise ConfigError(f"pipeline parameter {section!r}: {NULLS_KEY} must list key names")
    raw.update(dict.fromkeys(nulls))
    try:
        return _section_model(section).model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{section}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid pipeline parameter {section!r}: {problems}") from None


# The knobs people change, as typed pipeline parameters of their own (the UI shows them with
# their type and description): knob → (section, field). Each is taken out of its section's
# struct, which holds the rest, and put back by the up-front ``validate`` task.
KNOBS: dict[str, tuple[str, str]] = {
    "method": ("pretrain", "method"),
    "epochs": ("pretrain", "epochs"),
    "batch_size": ("pretrain", "batch_size"),
    "data_source": ("data", "source"),
    "knn_margin": ("registry", "knn_margin"),
    "rankme_margin": ("registry", "rankme_margin"),
}
SECTIONS = ("data", "mine", "pretrain", "evaluate", "distill", "compress", "unlearn", "registry")
# An integer knob that the pipeline does not have (kfp.local casts every integer input with
# int(), so the default cannot be None); never a valid value of one, so a given -1 is refused.
UNSET = -1


def validated_sections(given: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    """The ``validate`` task: every ``<section>_params`` struct given, with the knobs given put
    back into their sections, validated once — a bad value is one line before any work, and
    no retry repeats it. Returns each section (``{}`` when not given) in ``SECTIONS`` order."""
    structs = {s: given.get(f"{s}_params") for s in SECTIONS}
    try:
        for knob, (section, name) in KNOBS.items():
            value, struct = given.get(knob), structs[section]
            if value in (None, UNSET) and (struct is None or name in struct):
                continue  # not a parameter of this pipeline, or set in the struct itself
            if value is not None:
                if structs[section] is None:
                    raise ConfigError(f"pipeline parameter {knob!r} needs {section}_params")
                structs[section] = {**structs[section], name: given[knob]}  # type: ignore[dict-item]
        for section, values in structs.items():
            if values is not None:
                section_params(section, values)
    except SelfsupError as exc:
        raise SystemExit(f"error: {exc}") from None
    return tuple(dict(structs[s] or {}) for s in SECTIONS)


def check_data_hash(dataset: Path, expected: str) -> None:
    """Refuse a dataset whose content hash is not the one the task was keyed (and cached) on."""
    from selfsup.data.shards import read_dataset_manifest

    actual = str(read_dataset_manifest(Path(dataset), verify=False)["content_hash"])
    if actual != expected:
        raise IntegrityError(
            f"dataset {dataset} has content hash {actual}, but the task was given {expected}: "
            "the artifact changed after the data task ran; re-run the pipeline without cache"
        )


def confusion_metadata(evaluation: Path) -> dict[str, Any]:
    """The confusion matrix of an evaluation directory as KFP's ``ClassificationMetrics``
    metadata (built by KFP itself, so the UI draws it); empty when the data had no labels."""
    from kfp import dsl

    from selfsup.evaluate.stage import CONFUSION_NAME

    path = Path(evaluation) / CONFUSION_NAME
    if not path.is_file():
        return {}
    confusion = json.loads(path.read_text())
    artifact = dsl.ClassificationMetrics()
    artifact.log_confusion_matrix(confusion["categories"], confusion["matrix"])
    return dict(artifact.metadata)


# The stages the ``on_model`` task runs (dataset + encoder → one artifact), by name.
MODEL_STAGES = ("distill", "compress")


def model_stage(stage: str) -> Any:
    """The ``run`` of stage ``stage``, one of ``MODEL_STAGES``."""
    import importlib

    if stage not in MODEL_STAGES:
        raise ConfigError(f"unknown stage {stage!r} for this task; stages: {list(MODEL_STAGES)}")
    return importlib.import_module(f"selfsup.{stage}.stage").run


@dataclass
class Task:
    """One running task: its validated ``params``, where its metrics go (the KFP artifact and
    the Prometheus push) and the KFP run it belongs to."""

    params: Any
    metrics: Any = None
    observed: StageRun = field(default_factory=StageRun)
    name: str = ""
    run_id: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def done(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Log ``values`` (flattened) on the Metrics artifact and keep them, nested, in its file."""
        from selfsup.observe.metrics import flatten_metrics

        self.values = dict(values)
        self.observed.record(self.name, self.values)
        if self.metrics is not None:
            for key, value in flatten_metrics(self.values).items():
                self.metrics.log_metric(key, value)
            path = Path(self.metrics.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.values, indent=2, sort_keys=True) + "\n")
        return self.values

    def run(self, stage: Any, *inputs: Any, out: Any, **options: Any) -> dict[str, Any]:
        """``stage(*input paths, params=…, out=out path)`` on artifacts, its metrics recorded."""
        paths = [Path(a.path) if hasattr(a, "path") else a for a in inputs]
        return self.done(stage(*paths, params=self.params, out=Path(out.path), **options))

    @staticmethod
    def resumable() -> dict[str, Any]:
        """Checkpoint options for a training stage: on this task's disk, copied to the store in
        ``$SELFSUP_CHECKPOINTS`` when set, and resumed from there — a retried task (a fresh
        pod) continues after the last finished epoch."""
        from selfsup.train.checkpoint import MIRROR_ENV

        local = Path(tempfile.mkdtemp(prefix="selfsup-checkpoints-"))
        # The task's process ends with the task: its local copy goes then (offline runs would
        # otherwise leave one per pretrain in /tmp); the store keeps the mirror.
        atexit.register(shutil.rmtree, local, ignore_errors=True)
        return {"checkpoints": local, "resume": True, "mirror": os.environ.get(MIRROR_ENV)}

    def registry(self) -> Any:
        """The registry the section names (``$SELFSUP_REGISTRY`` wins: on the cluster, s3://)."""
        from selfsup.registry.register import open_registry

        return open_registry(os.environ.get("SELFSUP_REGISTRY") or self.params.uri)

    def lineage(self, source: str) -> dict[str, str]:
        """What the registry records about this run: the KFP run id and the code revision (the
        image's ``SELFSUP_CODE_REVISION``, else the source checkout's git commit)."""
        import selfsup
        from selfsup.registry.lineage import code_revision

        revision = code_revision(Path(selfsup.__file__).resolve().parent)
        return {"source": source, "run": self.run_id, "code_revision": revision}

    @staticmethod
    def ids_file(ids: list[str], directory: Path) -> Path:
        """A deletion request (sample ids) as the id file the unlearn stage reads."""
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ConfigError(
                "forget_ids must be a list of sample ids such as 'train/17', 'train/cat/0001.jpg'"
            )
        path = Path(directory) / "forget.txt"
        path.write_text("".join(f"{i}\n" for i in ids))
        return path

    @staticmethod
    def copy_dir(artifact: Any, part: str, target: Any) -> None:
        """Copy directory ``part`` of ``artifact`` to the output artifact ``target``."""
        if Path(target.path).exists():
            shutil.rmtree(target.path)
        shutil.copytree(Path(artifact.path) / part, target.path)

    @staticmethod
    def publish_evaluation(evaluation: Any, report: Any, confusion: Any) -> None:
        """The evaluation's HTML report and confusion matrix onto their UI artifacts."""
        Path(report.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(evaluation.path) / "report.html", report.path)
        metadata = confusion_metadata(Path(evaluation.path))
        confusion.metadata.update(metadata)
        Path(confusion.path).parent.mkdir(parents=True, exist_ok=True)
        Path(confusion.path).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def task(
    section: str,
    values: Mapping[str, Any],
    metrics: Any = None,
    dataset: Any = None,
    data_hash: str | None = None,
    *,
    run_id: str = "",
    name: str | None = None,
) -> Iterator[Task]:
    """Run task ``name`` (default: ``section``) of KFP run ``run_id``: params validated, dataset
    checked against ``data_hash``, metrics pushed, one-line errors.

    Any exception other than a SelfsupError is a bug and keeps its traceback.
    """
    from selfsup.observe.metrics import stage_metrics

    name = name or section
    try:
        with stage_metrics(name, run_id=run_id or None) as observed:
            params = section_params(section, values)
            if dataset is not None and data_hash is not None:
                check_data_hash(Path(dataset.path), data_hash)
            yield Task(params, metrics, observed, name, run_id)
    except SelfsupError as exc:
        raise SystemExit(f"error: {exc}") from None


# The registry's gates, by the ``register`` task's ``gate``: the task's name (its metrics) and
# the lineage's source.
GATES: dict[str, tuple[str, str]] = {
    "champion": ("register", "kubeflow"),
    "deletion": ("forget-register", "kubeflow-forget"),
}


def register_through(
    gate: str, registry_values: Mapping[str, Any], candidate: Any, evaluation: Any, metrics: Any,
    run_id: str,
) -> dict[str, Any]:  # fmt: skip
    """The ``register`` task: ``candidate`` (an encoder, or unlearn's whole output for the
    deletion gate) registered with ``evaluation``'s metrics, promoted only if ``gate`` admits it."""
    from selfsup.registry.register import register_and_gate, register_unlearned

    admit: dict[str, Callable[..., dict[str, Any]]] = {
        "champion": register_and_gate,
        "deletion": register_unlearned,
    }
    name, source = GATES.get(gate, ("register", ""))
    with task("registry", registry_values, metrics, run_id=run_id, name=name) as t:
        if gate not in GATES:
            raise ConfigError(f"unknown registry gate {gate!r}; gates: {sorted(GATES)}")
        scores = Path(evaluation.path) / "metrics.json"
        decision = admit[gate](
            t.registry(), Path(candidate.path), scores, t.params, t.lineage(source)
        )
        return t.done(decision)


def record_outcome(
    state: str, error: str, registry_values: Mapping[str, Any], run_id: str
) -> dict[str, Any]:
    """A run's final ``state`` (KFP's ``PipelineTaskFinalStatus``), pushed as the ``outcome``
    task's metric ``failed`` (0/1); when it failed and ``registry_values`` name a registry, a
    "failed" decision is recorded there with ``error``."""
    from selfsup.observe.metrics import stage_metrics

    failed = state != "SUCCEEDED"
    result: dict[str, Any] = {"failed": float(failed), "state": state}
    try:
        with stage_metrics("outcome", run_id=run_id or None) as observed:
            if failed and registry_values:
                run = Task(section_params("registry", registry_values), run_id=run_id)
                result["decision"] = run.registry().record_failure(run_id, error or state)
            observed.record("outcome", result)
    except SelfsupError as exc:
        raise SystemExit(f"error: {exc}") from None
    return result


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A temporary directory for a task's intermediate files."""
    with tempfile.TemporaryDirectory(prefix="selfsup-task-") as tmp:
        yield Path(tmp)
