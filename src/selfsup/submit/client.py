"""Upload a pipeline version to a Kubeflow Pipelines API server, start a run or a schedule.

Thin over ``kfp.Client``: the pipeline is looked up by name (created on first use), every upload
is a new, named version, and runs and recurring runs reference that exact version — so what a
schedule runs does not change under it when someone uploads again. Arguments are the params.yaml
sections, the pipeline's parameters. The auth token, if the server needs one, comes from the
environment (``SELFSUP_KFP_TOKEN``), never from a flag that would land in shell history.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfsup.pipeline.errors import PipelineError
from selfsup.submit.cron import validate_cron

TOKEN_ENV = "SELFSUP_KFP_TOKEN"


@dataclass(frozen=True)
class Target:
    """Where to submit: the API server, the (multi-user) namespace and the experiment."""

    host: str
    experiment: str = "selfsup"
    namespace: str | None = None


@dataclass(frozen=True)
class Uploaded:
    """The pipeline and the version an upload created."""

    pipeline_id: str
    version_id: str


def _client(target: Target) -> Any:
    import kfp

    if not target.host.startswith(("http://", "https://")):
        raise PipelineError(f"--host {target.host!r} must start with http:// or https://")
    return _api_call(
        "connecting to the KFP API server",
        kfp.Client,
        host=target.host,
        namespace=target.namespace or "kubeflow",
        existing_token=os.environ.get(TOKEN_ENV) or None,
    )


def _api_call(what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one client call; an API or connection failure becomes a PipelineError saying what."""
    from kfp_server_api.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return call(*args, **kwargs)
    except ApiException as exc:
        raise PipelineError(f"{what} failed: HTTP {exc.status} {exc.reason}: {exc.body}") from None
    except (HTTPError, TimeoutError) as exc:  # kfp.Client raises TimeoutError when healthz fails
        raise PipelineError(f"{what} failed: cannot reach the KFP API server ({exc})") from None


def upload(client: Any, package: Path, pipeline_name: str, version: str) -> Uploaded:
    """Upload ``package`` as version ``version`` of pipeline ``pipeline_name`` (created if new)."""
    pipeline_id = _api_call("looking up the pipeline", client.get_pipeline_id, pipeline_name)
    if pipeline_id is None:
        created = _api_call(
            "creating the pipeline", client.upload_pipeline, str(package), pipeline_name
        )
        pipeline_id = created.pipeline_id
    made = _api_call(
        "uploading the pipeline version",
        client.upload_pipeline_version,
        str(package),
        version,
        pipeline_id=pipeline_id,
    )
    return Uploaded(pipeline_id=str(pipeline_id), version_id=str(made.pipeline_version_id))


def _experiment_id(client: Any, target: Target) -> str:
    made = _api_call(
        "creating the experiment",
        client.create_experiment,
        target.experiment,
        namespace=target.namespace,
    )
    return str(made.experiment_id)


def start(
    target: Target,
    package: Path,
    pipeline_name: str,
    version: str,
    name: str,
    arguments: dict[str, Any],
    cron: str | None = None,
) -> tuple[Uploaded, str]:
    """Upload a version, then start one run of it or (``cron``: 6 fields, seconds first) a
    recurring run; returns the upload and the run's or recurring run's id.

    A cron string is checked before anything is uploaded. A schedule runs one at a time and does
    not catch up missed runs (a retrain that was down for a week should run once, not seven).
    """
    expression = validate_cron(cron) if cron is not None else None
    client = _client(target)
    uploaded = upload(client, package, pipeline_name, version)
    common = {
        "experiment_id": _experiment_id(client, target),
        "job_name": name,
        "params": arguments,
        "pipeline_id": uploaded.pipeline_id,
        "version_id": uploaded.version_id,
    }
    if expression is None:
        run = _api_call("starting the run", client.run_pipeline, **common)
        return uploaded, str(run.run_id)
    recurring = _api_call(
        "creating the recurring run",
        client.create_recurring_run,
        cron_expression=expression,
        max_concurrency=1,
        no_catchup=True,
        **common,
    )
    return uploaded, str(recurring.recurring_run_id)
