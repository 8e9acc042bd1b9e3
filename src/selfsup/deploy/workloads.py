"""What each shipped workload runs, read back with the real parsers.

A rendered container's command, arguments and environment are parsed by the real ``selfsup``
CLI (click, through ``typer.main.get_command``; nothing executes), a compiled pipeline task's by
KFP's own ``kfp.dsl.executor_main`` argument parser. The values they would act on — image, GPUs,
params path, experiment, pipeline — are what the tests assert and what the table in
docs/kubeflow.md shows (``python -m selfsup.deploy.workloads --write docs/kubeflow.md`` rewrites
it, a test compares it).
"""

from __future__ import annotations

import argparse
import ast
import os
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from unittest import mock

import yaml

from selfsup.deploy.checks import pod_spec
from selfsup.deploy.render import Object, render

# The kustomizations whose workloads are shipped: the table's name → directory under the repo.
KUSTOMIZATIONS = {
    "dev": "k8s/overlays/dev",
    "gpu": "k8s/overlays/gpu",
    "trainer": "k8s/trainer",
    "serving": "k8s/serving",
}
PIPELINES = "pipelines/golden"
TABLE_BEGIN = "<!-- workloads table: begin (python -m selfsup.deploy.workloads --write) -->"
TABLE_END = "<!-- workloads table: end -->"
SECRET = "<secret {name}/{key}>"


@dataclass(frozen=True)
class Invocation:
    """One ``selfsup`` process a workload starts, as the CLI parses it."""

    workload: str  # e.g. "CronJob selfsup-retrain (gpu)"
    container: str
    image: str
    argv: tuple[str, ...]  # command + args as rendered
    env: Mapping[str, str]  # the container's environment, configMap values resolved
    command: tuple[str, ...]  # the selfsup subcommand, e.g. ("pipeline", "submit")
    params: Mapping[str, Any]  # every option's value, as the CLI parses it
    config_files: Mapping[str, str] = field(default_factory=dict)  # path → "configmap/key"
    gpus: int = 0  # nvidia.com/gpu the container requests


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` is exactly ``env`` inside the block (click reads option variables here)."""
    with mock.patch.dict(os.environ, env, clear=True):
        yield


def parse_selfsup(
    args: Sequence[str], env: Mapping[str, str]
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The subcommand and the option values the real ``selfsup`` CLI parses from ``args`` (what
    follows the program name) with ``env`` as the environment. Raises the CLI's usage errors."""
    import typer
    import typer.main

    from selfsup.cli import app

    command: Any = typer.main.get_command(app)
    rest, path = list(args), list[str]()
    context = typer.Context(command, info_name="selfsup")
    with environment(env):
        while hasattr(command, "get_command"):  # a group: the next argument names a subcommand
            if not rest:
                raise ValueError(f"selfsup {' '.join(path)} needs a subcommand")
            name, *rest = rest
            sub = command.get_command(context, name)
            if sub is None:
                raise ValueError(f"selfsup {' '.join(path)} has no subcommand {name!r}")
            path.append(name)
            command, context = sub, typer.Context(sub, parent=context, info_name=name)
        parsed = command.make_context(path[-1], rest, parent=context.parent)
    return tuple(path), dict(parsed.params)


def option_envvars(path: Sequence[str]) -> set[str]:
    """The environment variables the options of ``selfsup <path>`` read."""
    import typer
    import typer.main

    from selfsup.cli import app

    command: Any = typer.main.get_command(app)
    context = typer.Context(command, info_name="selfsup")
    for name in path:
        command = command.get_command(context, name)
        context = typer.Context(command, parent=context, info_name=name)
    found: set[str] = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        found |= {envvar} if isinstance(envvar, str) else set(envvar or ())
    return found


def is_selfsup_image(image: str) -> bool:
    """The project's image (any registry, tag or digest)."""
    return image.split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1] in ("selfsup", "selfsup-cuda")


def selfsup_args(command: Sequence[str] | None, args: Sequence[str]) -> list[str] | None:
    """The arguments the ``selfsup`` program receives: the image's entrypoint is ``selfsup``, so
    a container without a command passes ``args``; a launcher (``torchrun``) runs the program
    named by a path ending in ``/selfsup``. None: the container does not run selfsup."""
    argv = [*(command or ()), *args]
    if not command:
        return list(args)
    for i, word in enumerate(argv):
        if PurePosixPath(word).name == "selfsup":
            return argv[i + 1 :]
    return None


def container_env(container: Object, objects: Sequence[Object]) -> dict[str, str]:
    """The container's environment: ``envFrom`` ConfigMaps, then ``env`` (which wins), with
    ConfigMap keys resolved; a Secret reference stays a placeholder naming it."""
    config_maps = {
        o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            ref = source["configMapRef"]["name"]
            if ref not in config_maps and not source["configMapRef"].get("optional"):
                raise ValueError(f"envFrom names ConfigMap {ref!r}, which is not rendered")
            env.update(config_maps.get(ref, {}))
        elif "secretRef" in source:
            env[f"<all of secret {source['secretRef']['name']}>"] = ""
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var.get("valueFrom", {})
        if "configMapKeyRef" in ref:
            cm = ref["configMapKeyRef"]
            env[var["name"]] = config_maps[cm["name"]][cm["key"]]
        elif "secretKeyRef" in ref:
            secret = ref["secretKeyRef"]
            env[var["name"]] = SECRET.format(name=secret["name"], key=secret["key"])
    return env


def config_map_files(pod: Object, container: Object, objects: Sequence[Object]) -> dict[str, str]:
    """Every file the container sees from a mounted ConfigMap: path → ``configmap/key``."""
    config_maps = {
        o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"
    }
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        source = volumes.get(mount["name"], {}).get("configMap")
        if source is None or source["name"] not in config_maps:
            continue
        items = source.get("items") or [{"key": k, "path": k} for k in config_maps[source["name"]]]
        for item in items:
            if item["key"] in config_maps[source["name"]]:
                files[f"{mount['mountPath']}/{item['path']}"] = f"{source['name']}/{item['key']}"
    return files


def _gpus(resources: Mapping[str, Any]) -> int:
    return int(resources.get("limits", {}).get("nvidia.com/gpu", 0))


def invocations(overlay: str, objects: Sequence[Object]) -> list[Invocation]:
    """Every selfsup process of the rendered ``objects``: each pod template's containers (a
    TrainingRuntime's jobs included, with the TrainJob's command on the trainer's container)."""
    from selfsup.deploy.checks import runtime_jobs

    trainjobs = [o for o in objects if o["kind"] == "TrainJob"]
    found: list[Invocation] = []
    for obj in objects:
        pods: list[tuple[str, Object | None, Object]] = []  # (workload, its TrainJob, pod holder)
        if obj["kind"] == "TrainingRuntime":
            for job in runtime_jobs(obj):
                for candidate in trainjobs:
                    if candidate["spec"]["runtimeRef"]["name"] == obj["metadata"]["name"]:
                        pods.append((f"TrainJob {candidate['metadata']['name']}", candidate, job))
        elif pod_spec(obj) is not None:
            pods.append((f"{obj['kind']} {obj['metadata']['name']}", None, obj))
        for workload, trainjob, holder in pods:
            pod: Object = pod_spec(holder) or {}
            for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
                image = str(container.get("image", ""))
                if not is_selfsup_image(image):
                    continue
                command, args = container.get("command"), container.get("args", [])
                resources = container.get("resources", {})
                trainer = (trainjob or {}).get("spec", {}).get("trainer", {})
                if trainer and container["name"] == "node":  # the TrainJob's trainer container
                    command, args = trainer.get("command"), trainer.get("args", [])
                    resources = dict(trainer.get("resourcesPerNode") or resources)
                    image = trainer.get("image", image)
                program_args = selfsup_args(command, args)
                if program_args is None:
                    continue
                env = container_env(container, objects)
                path, params = parse_selfsup(program_args, env)
                found.append(
                    Invocation(
                        workload=f"{workload} ({overlay})",
                        container=container["name"],
                        image=image,
                        argv=tuple([*(command or ["selfsup"]), *args]),
                        env=env,
                        command=path,
                        params=params,
                        config_files=config_map_files(pod, container, objects),
                        gpus=_gpus(resources),
                    )
                )
    return found


@dataclass(frozen=True)
class PipelineTask:
    """One executor of a compiled pipeline, as KFP's executor would start it."""

    pipeline: str
    executor: str
    image: str
    argv: tuple[str, ...]  # the executor_main arguments the container's shell script passes
    function: str  # --function_to_execute, as executor_main's own parser reads it
    defined: bool  # the embedded component source defines that function
    gpus: int


class _Parsed(Exception):
    pass


def executor_arguments(args: Sequence[str]) -> argparse.Namespace:
    """``args`` parsed by ``kfp.dsl.executor_main``'s own argument parser (stopped right after
    parsing: nothing is loaded or executed)."""
    from kfp.dsl import executor_main

    seen: dict[str, argparse.Namespace] = {}
    original = argparse.ArgumentParser.parse_known_args

    def capture(self: argparse.ArgumentParser, *a: Any, **k: Any) -> Any:
        seen["args"], _ = original(self, *a, **k)
        raise _Parsed

    with (
        mock.patch.object(argparse.ArgumentParser, "parse_known_args", capture),
        mock.patch.object(executor_main, "_setup_logging", lambda: None),
        mock.patch.object(sys, "argv", ["executor_main", *args]),
        suppress(_Parsed),
    ):
        executor_main.executor_main()
    return seen["args"]


def _executor_argv(container: Object) -> tuple[list[str], str]:
    """The arguments the container's ``sh -ec`` script passes to ``kfp.dsl.executor_main``, and
    the embedded component source (the script's ``$0``)."""
    shell, flag, script, source = container["command"]
    if (shell, flag) != ("sh", "-ec"):
        raise ValueError(f"unexpected command {container['command'][:2]}")
    line = next(ln for ln in script.splitlines() if "kfp.dsl.executor_main" in ln)
    words = shlex.split(line)
    start = words.index("kfp.dsl.executor_main") + 1
    forwarded = [w for w in words[start:] if w != "$@"]
    if "$@" not in words:
        raise ValueError("the executor script does not forward the container's arguments")
    return [*forwarded, *container.get("args", [])], source


def pipeline_tasks(path: Path) -> list[PipelineTask]:
    """Every executor of the compiled pipeline at ``path``."""
    spec = next(doc for doc in yaml.safe_load_all(path.read_text()) if "deploymentSpec" in doc)
    tasks = []
    for name, executor in sorted(spec["deploymentSpec"]["executors"].items()):
        container = executor["container"]
        argv, source = _executor_argv(container)
        function = executor_arguments(argv).function_to_execute
        defined = any(
            isinstance(node, ast.FunctionDef) and node.name == function
            for node in ast.walk(ast.parse(source))
        )
        accelerator = container.get("resources", {}).get("accelerator", {})
        tasks.append(
            PipelineTask(
                pipeline=spec["pipelineInfo"]["name"],
                executor=name.removeprefix("exec-"),
                image=container["image"],
                argv=tuple(argv),
                function=function,
                defined=defined,
                gpus=int(accelerator.get("resourceCount", accelerator.get("count", 0)) or 0),
            )
        )
    return tasks


def _code(text: object) -> str:
    return "`" + str(text).replace("|", "\\|") + "`"


_SHOWN = {  # the values shown per subcommand (every one is parsed; these are the acted-on ones)
    ("pipeline", "submit"): ("host", "namespace", "pipeline", "experiment", "params", "image",
                             "gpu_image", "gpus", "gpu_type"),
    ("pretrain",): ("params", "data", "out", "checkpoints", "resume"),
    ("store", "pull"): ("name", "dest", "store"),
}  # fmt: skip


def _values(inv: Invocation) -> str:
    names = _SHOWN.get(inv.command, tuple(sorted(inv.params)))
    parts = []
    for name in names:
        value = inv.params.get(name)
        text = f"{name}={value}"
        if str(value) in inv.config_files:
            text += f" (ConfigMap {inv.config_files[str(value)]})"
        parts.append(_code(text))
    parts.append(_code(f"nvidia.com/gpu={inv.gpus}"))
    return " ".join(parts)


def _rendered(inv: Invocation) -> str:
    settings = [f"{k}={v}" for k, v in sorted(inv.env.items()) if k.startswith("SELFSUP_")]
    command = _code(" ".join(inv.argv))
    return command + ("<br>env: " + " ".join(_code(s) for s in settings) if settings else "")


def table(repo: Path) -> str:
    """The markdown table of every shipped workload, from the rendered manifests and the
    compiled pipelines."""
    rows = [
        "| workload | container · image | command as rendered | what the real parser reads |",
        "|---|---|---|---|",
    ]
    for overlay, directory in KUSTOMIZATIONS.items():
        for inv in invocations(overlay, render(repo / directory)):
            rows.append(
                f"| {inv.workload} | {inv.container} · {_code(inv.image)} | {_rendered(inv)} "
                f"| `selfsup {' '.join(inv.command)}`: {_values(inv)} |"
            )
    for path in sorted((repo / PIPELINES).glob("*.yaml")):
        tasks = pipeline_tasks(path)
        images = " ".join(_code(i) for i in sorted({t.image for t in tasks}))
        template = _code(
            "sh -ec '… python3 -m kfp.dsl.executor_main --component_module_path "
            '<embedded source> "$@"\' --executor_input {{$}} --function_to_execute <function>'
        )
        parsed = " ".join(
            _code(f"{t.executor}→{t.function}" + (f" on {t.image}" if t.gpus else "")
                  + (f", nvidia.com/gpu={t.gpus}" if t.gpus else ""))
            for t in tasks
        )  # fmt: skip
        rows.append(
            f"| pipeline {_code(tasks[0].pipeline)} ({path.relative_to(repo)}) | every task · "
            f"{images} | {template} | `executor_main` (KFP's parser) `--function_to_execute`, "
            f"each defined in its embedded source: {parsed} |"
        )
    return "\n".join(rows) + "\n"


def replace_table(doc: str, new_table: str) -> str:
    """``doc`` with the text between the table markers replaced by ``new_table``."""
    begin, end = doc.index(TABLE_BEGIN) + len(TABLE_BEGIN), doc.index(TABLE_END)
    return doc[:begin] + "\n" + new_table + doc[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", type=Path, help="rewrite the table in this markdown file")
    parser.add_argument("--repo", type=Path, default=Path("."))
    options = parser.parse_args(argv)
    text = table(options.repo)
    if options.write is None:
        sys.stdout.write(text)
    else:
        options.write.write_text(replace_table(options.write.read_text(), text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
