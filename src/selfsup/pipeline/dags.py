"""The pipelines: ``train``, ``retrain`` (train → register through the gate) and ``forget``.

One builder per pipeline serves the cluster and ``run-local`` alike; they differ in one switch,
``ClusterOptions.fan_out``: on the cluster mining is plan → ``ParallelFor`` over the shards →
merge of the collected shards; offline (``kfp.local`` cannot collect a loop's outputs) it is one
``mine`` task. Every task comes from :func:`selfsup.pipeline.components.component`, so the
objects the local runner executes are the ones compiled for the cluster. Parameters mirror
params.yaml: one struct per section, defaulting to the ``default`` profile.
"""

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from selfsup.config import Params, RegistryParams
from selfsup.pipeline.components import TASKS, component
from selfsup.pipeline.errors import PipelineError
from selfsup.pipeline.gpu import DEFAULT_POOL, GpuPool, use_gpu_pool
from selfsup.pipeline.images import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE
from selfsup.pipeline.runtime import KNOBS, NULLS_KEY, SECTIONS
from selfsup.pipeline.task_settings import (
    DEFAULT_RETRY,
    Retry,
    apply_resources,
    apply_retry,
    never_cache,
    observe,
    run_as_image_user,
    use_s3,
)
from selfsup.serve.kserve import DEPLOYER_SECRET, DEPLOYER_TOKEN_DIR
from selfsup.train.checkpoint import MIRROR_ENV

# The cluster's S3 store: the MinIO of k8s/base (in-cluster DNS), for videos and the registry.
S3_ENDPOINT = "http://minio.selfsup.svc.cluster.local:9000"
# The cluster's registry: a versioned bucket on that store.
CLUSTER_REGISTRY = RegistryParams(uri="s3://selfsup/registry")
# Where the cluster's pods read the raw data (seeded once by `selfsup data upload`): a pod has
# no local archive, so the compiled pipelines' defaults name the store's copy.
CLUSTER_SOURCE = "s3://selfsup/sources/cifar10-jpg"


def cluster_defaults(base: Params | None = None) -> Params:
    """``base`` (default: params.yaml's defaults) with the data read from the store: the UI's
    parameter defaults and the cluster's ConfigMaps."""
    params = base or Params()
    data = params.data.model_copy(update={"archive": CLUSTER_SOURCE})
    return params.model_copy(update={"data": data})


CHAMPION = "champion"


@dataclass(frozen=True)
class ClusterOptions:
    """What differs between clusters: the images, the GPU pool (None: GPU tasks on CPU nodes),
    retries, mining's fan-out and its parallelism, the run's exit handler (both off for
    ``kfp.local``, which runs neither), the S3 endpoint, where checkpoints outlive a pod, and
    whether a promoted model is served (off for ``kfp.local``: no cluster to apply to)."""

    image: str = DEFAULT_IMAGE
    gpu_image: str = DEFAULT_GPU_IMAGE
    gpu: GpuPool | None = DEFAULT_POOL
    retry: Retry = DEFAULT_RETRY
    fan_out: bool = True
    exit_handler: bool = True
    mine_parallelism: int = 4
    s3_endpoint: str = S3_ENDPOINT
    checkpoints: str = "s3://selfsup/checkpoints"
    serve: bool = True


def section_arguments(params: Params) -> dict[str, dict[str, Any]]:
    """Each section as a dict a KFP struct can hold (no nulls), keeping the section's meaning.

    KFP structs refuse null values, and a missing key validates to the field's default. So a
    null that *is* the default is dropped, and a null that overrides a non-null default
    (``max_images: null`` = train on everything) is listed under ``NULLS_KEY`` instead, which
    :func:`selfsup.pipeline.runtime.section_params` turns back into null.
    """
    out: dict[str, dict[str, Any]] = {}
    for section in type(params).model_fields:
        values = getattr(params, section).model_dump(mode="json")
        defaults = type(getattr(params, section))().model_dump(mode="json")
        kept = {k: v for k, v in values.items() if v is not None}
        nulls = sorted(k for k, v in values.items() if v is None and defaults.get(k) is not None)
        out[section] = {**kept, NULLS_KEY: nulls} if nulls else kept
    return out


class Dag:
    """Adds tasks to the pipeline ``name`` being defined, each with its settings from ``TASKS``."""

    def __init__(self, opts: ClusterOptions, name: str) -> None:
        self.opts, self.name = opts, name

    def add(self, name: str, display: str | None = None, **inputs: Any) -> Any:
        """Task ``name`` on ``inputs`` and the run's id (KFP resolves the placeholder: the run
        that its metrics and registry lineage name), with the cluster settings of ``TASKS``."""
        from kfp import dsl

        spec, opts = TASKS[name], self.opts
        on_gpu = spec.gpu and opts.gpu is not None
        op = component(name, opts.gpu_image if on_gpu else opts.image)
        task = op(**spec.fixed, **inputs, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER).set_display_name(
            display or name
        )
        apply_resources(task, spec.resources)
        if spec.retried:
            apply_retry(task, opts.retry)
        observe(run_as_image_user(task), self.name)
        if on_gpu and opts.gpu is not None:
            use_gpu_pool(task, opts.gpu)
        if not spec.cached:
            never_cache(task)
        if spec.s3:
            use_s3(task, opts.s3_endpoint)
        if spec.checkpointed:
            task.set_env_variable(MIRROR_ENV, opts.checkpoints)
        return task

    def on_model(self, name: str, params: Any, prepared: Any, model: Any) -> Any:
        """A task that reads the dataset and a model (evaluate, distill, compress)."""
        return self.add(
            name,
            **{"stage_params" if TASKS[name].fixed else f"{name}_params": params},
            data_hash=prepared.outputs["content_hash"],
            dataset=prepared.outputs["dataset"],
            model=model,
        )

    def register(self, display: str | None = None, *, model: Any, **inputs: Any) -> Any:
        """``register`` through the gate, then — only when it promoted (``dsl.If`` on its
        ``decision``) — ``serve`` of ``model`` with the deployer's token (serving-rbac.yaml)."""
        from kfp import dsl, kubernetes

        registered = self.add("register", display, **inputs)
        if self.opts.serve:
            with dsl.If(registered.outputs["decision"] == "promoted", "promoted"):
                served = self.add("serve", registry_params=inputs["registry_params"], model=model)
                kubernetes.use_secret_as_volume(served, DEPLOYER_SECRET, DEPLOYER_TOKEN_DIR)
        return registered

    def mine(self, mine_params: Any) -> Any:
        """The mined dataset's producer: the fan-out's merge, or one task offline."""
        from kfp import dsl

        if not self.opts.fan_out:
            return self.add("mine", mine_params=mine_params)
        plan = self.add("mine-plan", mine_params=mine_params)
        loop = dsl.ParallelFor(plan.output, "mine shards", self.opts.mine_parallelism)
        with loop as index:
            shard = self.add("mine-shard", mine_params=mine_params, index=index)
        return self.add(
            "mine-merge", mine_params=mine_params, shards=dsl.Collected(shard.outputs["shard"])
        )

    def train(
        self, data_params: Any, mine_params: Any, pretrain_params: Any, evaluate_params: Any
    ) -> tuple[Any, Any, Any]:
        """data, mine → pretrain (GPU pool) → evaluate; returns those three tasks."""
        prepared = self.add("data", data_params=data_params)
        mined = self.mine(mine_params)
        trained = self.add(
            "pretrain",
            pretrain_params=pretrain_params,
            data_hash=prepared.outputs["content_hash"],
            dataset=prepared.outputs["dataset"],
            mined=mined.outputs["mined"],
        )
        model = trained.outputs["model"]
        return prepared, trained, self.on_model("evaluate", evaluate_params, prepared, model)


def train_tasks(dag: Dag, p: dict[str, Any]) -> None:
    prepared, trained, evaluated = dag.train(
        p["data_params"], p["mine_params"], p["pretrain_params"], p["evaluate_params"]
    )
    model = trained.outputs["model"]
    compressed = dag.on_model("compress", p["compress_params"], prepared, model)
    dag.on_model("distill", p["distill_params"], prepared, model)
    evaluation, compact = evaluated.outputs["evaluation"], compressed.outputs["output"]
    dag.add("model-card", evaluation=evaluation, model=model, compressed=compact)


def retrain_tasks(dag: Dag, p: dict[str, Any]) -> None:
    _, trained, evaluated = dag.train(
        p["data_params"], p["mine_params"], p["pretrain_params"], p["evaluate_params"]
    )
    dag.register(
        model=trained.outputs["model"],
        registry_params=p["registry_params"],
        candidate=trained.outputs["model"],
        evaluation=evaluated.outputs["evaluation"],
    )


def retrain_distilled_tasks(dag: Dag, p: dict[str, Any]) -> None:
    """The cheap retrain: distill the current data with the champion as teacher, train a fresh
    student on the distilled set, and register it through the same gate."""
    prepared = dag.add("data", data_params=p["data_params"])
    champion = dag.add("pull", "pull champion", registry_params=p["registry_params"], ref=CHAMPION)
    distilled = dag.on_model("distill", p["distill_params"], prepared, champion.outputs["model"])
    student = dag.add(
        "pretrain-distilled",
        pretrain_params=p["pretrain_params"],
        distilled=distilled.outputs["output"],
    )
    model = student.outputs["model"]
    evaluated = dag.on_model("evaluate", p["evaluate_params"], prepared, model)
    dag.register(
        model=model,
        registry_params=p["registry_params"],
        candidate=model,
        evaluation=evaluated.outputs["evaluation"],
    )


def forget_tasks(dag: Dag, p: dict[str, Any]) -> None:
    prepared = dag.add("data", data_params=p["data_params"])
    champion = dag.add("pull", "pull champion", registry_params=p["registry_params"], ref=CHAMPION)
    served = dag.add(
        "unlearn",
        unlearn_params=p["unlearn_params"],
        forget_ids=p["forget_ids"],
        data_hash=prepared.outputs["content_hash"],
        dataset=prepared.outputs["dataset"],
        model=champion.outputs["model"],
    )
    evaluated = dag.on_model(
        "evaluate", p["evaluate_params"], prepared, served.outputs["unlearned"]
    )
    dag.register(
        "audit and promote",
        model=served.outputs["unlearned"],
        registry_params=p["registry_params"],
        candidate=served.outputs["request"],
        evaluation=evaluated.outputs["evaluation"],
        gate="deletion",
    )


@dataclass(frozen=True)
class Pipeline:
    """A pipeline: its tasks, the params sections it takes as parameters, whether it takes the
    registry and a deletion request, the tasks whose metrics ``run-local`` collects, and the
    values it always runs with (``forced``: section → fields, over any params given)."""

    tasks: Callable[[Dag, dict[str, Any]], None]
    name: str
    description: str
    sections: tuple[str, ...]
    local_tasks: tuple[str, ...]
    registry: bool = False
    request: bool = False
    forced: dict[str, dict[str, Any]] = field(default_factory=dict)

    def parameters(self, defaults: Params, registry: RegistryParams) -> dict[str, Any]:
        """The pipeline's parameters and their defaults (the UI shows these)."""
        forced = {s: getattr(defaults, s).model_copy(update=v) for s, v in self.forced.items()}
        values = section_arguments(defaults.model_copy(update=forced))
        # Where the registry is comes from the deployment; its gate, from params.yaml.
        gate = defaults.gate.model_dump()
        values["registry"] = RegistryParams(uri=registry.uri, **gate).model_dump(mode="json")
        sections = self.sections + (("registry",) if self.registry else ())
        out: dict[str, Any] = {"forget_ids": []} if self.request else {}
        for knob, (section, name) in KNOBS.items():
            if section in sections and name not in self.forced.get(section, {}):
                out[knob] = values[section].pop(name)
        out.update({f"{section}_params": values[section] for section in sections})
        return out

    def describe(self) -> str:
        """The pipeline's docstring: its parameters' descriptions, for the UI."""
        lines = [self.description, "", "Args:"]
        for knob, (section, name) in KNOBS.items():
            model = (
                RegistryParams if section == "registry" else Params.model_fields[section].annotation
            )
            info = model.model_fields[name]  # type: ignore[union-attr]
            choices = (
                typing.get_args(info.annotation)
                if typing.get_origin(info.annotation) is typing.Literal
                else ()
            )
            text = info.description or (" | ".join(map(str, choices)) if choices else name)
            lines.append(f"    {knob}: {section}.{name}: {text}")
        for section in SECTIONS:
            lines.append(f"    {section}_params: the {section} section of params.yaml (the rest)")
        lines.append(
            "    forget_ids: the deletion request: row ids such as train/17, source file names "
            "(train/cat/0001.jpg) or user ids (data.ids_csv)"
        )
        return "\n".join(lines)


PIPELINES: dict[str, Pipeline] = {
    "train": Pipeline(
        train_tasks,
        "selfsup-train",
        "selfsup: validate params -> data, mine-plan -> mine shards (ParallelFor) -> mine-merge "
        "-> pretrain (GPU pool) -> evaluate, compress, distill (GPU pool) -> model-card; record "
        "outcome on exit",
        ("data", "mine", "pretrain", "evaluate", "distill", "compress"),
        ("data", "mine", "pretrain", "evaluate", "compress", "distill"),
    ),
    "retrain": Pipeline(
        retrain_tasks,
        "selfsup-retrain",
        "selfsup: validate params -> data, mine-plan -> mine shards (ParallelFor) -> mine-merge "
        "-> pretrain (GPU pool) -> evaluate -> register (promotion gate) -> serve (KServe, only "
        "when promoted); record outcome on exit",
        ("data", "mine", "pretrain", "evaluate"),
        ("data", "mine", "pretrain", "evaluate", "register"),
        registry=True,
    ),
    "retrain-distilled": Pipeline(
        retrain_distilled_tasks,
        "selfsup-retrain-distilled",
        "selfsup, the cheap retrain: validate params -> data, pull champion -> distill (the "
        "champion teaches) -> pretrain-distilled (a fresh student on the distilled set) -> "
        "evaluate -> register (promotion gate) -> serve (KServe, only when promoted); record "
        "outcome on exit",
        ("data", "distill", "pretrain", "evaluate"),
        ("data", "pull", "distill", "pretrain-distilled", "evaluate", "register"),
        registry=True,
        # The student recipe of bench/distill_compare.py: many epochs over the m images.
        forced={"pretrain": {"method": "distilled", "epochs": 30, "batch_size": 100}},
    ),
    "forget": Pipeline(
        forget_tasks,
        "selfsup-forget",
        "selfsup: deletion request -> validate params -> data, pull champion -> unlearn (GPU "
        "pool) -> evaluate -> audit and promote -> serve (KServe, only when promoted); record "
        "outcome on exit",
        ("data", "unlearn", "evaluate"),
        ("data", "pull", "unlearn", "evaluate", "register"),
        registry=True,
        request=True,
    ),
}


# Pipeline parameter types as KFP reads them (a struct per section, a list of sample ids).
ANNOTATIONS: dict[type, Any] = {dict: dict[str, Any], list: list[str]}


def pipeline(name: str) -> Pipeline:
    if name not in PIPELINES:
        raise PipelineError(f"unknown pipeline {name!r}; available: {sorted(PIPELINES)}")
    return PIPELINES[name]


def build(
    name: str,
    options: ClusterOptions | None = None,
    defaults: Params | None = None,
    registry: RegistryParams = CLUSTER_REGISTRY,
) -> Any:
    """Pipeline ``name`` as a KFP pipeline (compile it, or call it under ``kfp.local``).

    KFP reads a pipeline's parameters from its signature and calls it positionally, so one
    function serves every pipeline: its signature is made from :meth:`Pipeline.parameters`.
    """
    from kfp import dsl

    spec = pipeline(name)
    dag = Dag(options or ClusterOptions(), spec.name)
    parameters = spec.parameters(defaults or cluster_defaults(), registry)

    def tasks(values: dict[str, Any]) -> None:
        structs = {k: v for k, v in values.items() if k != "forget_ids"}
        checked = dag.add("validate", "validate params", **structs).outputs
        spec.tasks(dag, {**values, **{k: checked[k] for k in values if k.endswith("_params")}})

    def run(*channels: Any) -> None:
        values = dict(zip(parameters, channels, strict=True))
        if not dag.opts.exit_handler:
            tasks(values)
            return
        final = dag.add(
            "outcome", "record outcome", registry_params=values.get("registry_params", {})
        )
        with dsl.ExitHandler(final, name="run"):
            tasks(values)

    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                key,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=value,
                annotation=ANNOTATIONS.get(type(value), type(value)),
            )
            for key, value in parameters.items()
        ],
        return_annotation=None,
    )
    run.__doc__ = spec.describe()
    return dsl.pipeline(name=spec.name, description=spec.description)(run)


def pipeline_arguments(
    name: str,
    params: Params,
    registry: RegistryParams = CLUSTER_REGISTRY,
    forget_ids: list[str] | None = None,
) -> dict[str, Any]:
    """The run arguments of pipeline ``name`` for ``params``: exactly its parameters (a KFP
    server refuses a run with unknown ones)."""
    spec = pipeline(name)
    if spec.request != (forget_ids is not None):
        raise PipelineError("a deletion request's ids go with the forget pipeline, and only it")
    arguments = spec.parameters(params, registry)
    if forget_ids is not None:
        arguments["forget_ids"] = list(forget_ids)
    return arguments
