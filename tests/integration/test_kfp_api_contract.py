"""Contract test of `selfsup pipeline submit` / `schedule` against the KFP v2beta1 REST API.

A real HTTP server on 127.0.0.1 (a free port) stands in for the KFP API server: it answers the
calls the official SDK client (`kfp.Client`) makes with the response shapes of the v2beta1 API
and records every request. The tests then check the contract from our side: which endpoints are
called in which order, that the uploaded package is the compiled train pipeline, that the run /
recurring run reference the uploaded version, carry params.yaml's values as arguments and (for
schedules) the 6-field cron, and that a bad cron never reaches the server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from typer.testing import CliRunner

from selfsup.cli import app
from selfsup.config import profile_params, render_params
from selfsup.pipeline.dags import PIPELINES, pipeline_arguments

PIPELINE_NAME = PIPELINES["train"].name

pytestmark = pytest.mark.integration
runner = CliRunner()
API = "/apis/v2beta1"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes


@dataclass
class FakeKfp:
    """State of the stand-in server: what exists and what was asked of it."""

    calls: list[Recorded] = field(default_factory=list)
    pipelines: dict[str, str] = field(default_factory=dict)  # name -> id
    experiments: dict[str, str] = field(default_factory=dict)

    def answer(self, call: Recorded) -> tuple[int, dict[str, Any]]:
        path, query = call.path, call.query
        if call.method == "GET" and path == f"{API}/healthz":
            return 200, {"multi_user": False}
        if call.method == "GET" and path in (f"{API}/pipelines", f"{API}/experiments"):
            wanted = json.loads(query["filter"][0])["predicates"][0]["stringValue"]
            table = self.pipelines if path.endswith("pipelines") else self.experiments
            kind = "pipeline" if path.endswith("pipelines") else "experiment"
            found = (
                [{f"{kind}_id": table[wanted], "display_name": wanted}] if wanted in table else []
            )
            return 200, {f"{kind}s": found, "total_size": len(found)}
        if call.method == "POST" and path == f"{API}/pipelines/upload":
            name = query["name"][0]
            self.pipelines[name] = f"pipeline-{len(self.pipelines) + 1}"
            return 200, {"pipeline_id": self.pipelines[name], "display_name": name}
        if call.method == "POST" and path == f"{API}/pipelines/upload_version":
            versions = sum(c.path.endswith("upload_version") for c in self.calls)
            return 200, {
                "pipeline_id": query["pipelineid"][0],
                "pipeline_version_id": f"version-{versions + 1}",
                "display_name": query["name"][0],
            }
        if call.method == "POST" and path == f"{API}/experiments":
            name = json.loads(call.body)["display_name"]
            self.experiments[name] = f"experiment-{len(self.experiments) + 1}"
            return 200, {"experiment_id": self.experiments[name], "display_name": name}
        if call.method == "POST" and path == f"{API}/runs":
            return 200, {"run_id": "run-1", "display_name": json.loads(call.body)["display_name"]}
        if call.method == "POST" and path == f"{API}/recurringruns":
            body = json.loads(call.body)
            return 200, {"recurring_run_id": "recurring-1", "display_name": body["display_name"]}
        return 404, {"error": f"not part of the contract: {call.method} {path}"}

    def of(self, method: str, suffix: str) -> list[Recorded]:
        return [c for c in self.calls if c.method == method and c.path == API + suffix]


@pytest.fixture
def kfp_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[str, FakeKfp]]:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.config/kfp context leaks in
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "KF_PIPELINES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    state = FakeKfp()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            call = Recorded(self.command, url.path, parse_qs(url.query), self.rfile.read(length))
            status, payload = state.answer(call)
            state.calls.append(call)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # port 0: a free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(render_params(profile_params("tiny")))
    return path


def _uploaded_package(call: Recorded) -> dict[str, Any]:
    """The pipeline spec inside a multipart upload body."""
    start = call.body.index(b"\r\n\r\n") + 4
    end = call.body.rindex(b"\r\n--")
    return dict(next(yaml.safe_load_all(call.body[start:end])))


def test_submit_contract(kfp_server: tuple[str, FakeKfp], tmp_path: Path) -> None:
    host, state = kfp_server
    result = runner.invoke(app, [
        "pipeline", "submit", "--host", host, "--params", str(_params(tmp_path)),
        "--experiment", "selfsup-test", "--version", "v-test", "--run-name", "run-test",
        "--image", "registry.example.com/selfsup:0.1.0-cpu",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "run run-1" in result.output

    # Pipeline looked up by name, created (first upload), then the named version uploaded.
    (lookup,) = state.of("GET", "/pipelines")
    assert PIPELINE_NAME in lookup.query["filter"][0]
    (created,) = state.of("POST", "/pipelines/upload")
    assert created.query["name"] == [PIPELINE_NAME]
    (version,) = state.of("POST", "/pipelines/upload_version")
    assert version.query["name"] == ["v-test"] and version.query["pipelineid"] == ["pipeline-1"]
    spec = _uploaded_package(version)
    assert spec["pipelineInfo"]["name"] == PIPELINE_NAME
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert "registry.example.com/selfsup:0.1.0-cpu" in images

    (experiment,) = state.of("POST", "/experiments")
    assert json.loads(experiment.body)["display_name"] == "selfsup-test"

    (run,) = state.of("POST", "/runs")
    body = json.loads(run.body)
    assert body["display_name"] == "run-test"
    assert body["experiment_id"] == "experiment-1"
    assert body["pipeline_version_reference"] == {
        "pipeline_id": "pipeline-1",
        "pipeline_version_id": "version-1",
    }
    assert body["runtime_config"]["parameters"] == pipeline_arguments(
        "train", profile_params("tiny")
    )
    order = [c.path.removeprefix(API) for c in state.calls if c.method == "POST"]
    assert order == ["/pipelines/upload", "/pipelines/upload_version", "/experiments", "/runs"]


def test_schedule_contract_reuses_the_pipeline(
    kfp_server: tuple[str, FakeKfp], tmp_path: Path
) -> None:
    """Schedules run ``retrain`` by default: train, then the registry's promotion gate."""
    retrain_name = PIPELINES["retrain"].name
    host, state = kfp_server
    state.pipelines[retrain_name] = "pipeline-existing"
    state.experiments["selfsup"] = "experiment-existing"
    result = runner.invoke(app, [
        "pipeline", "schedule", "--host", host, "--params", str(_params(tmp_path)),
        "--cron", "0 0 3 * * *", "--name", "nightly", "--version", "v-nightly",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not state.of("POST", "/pipelines/upload")  # existing pipeline: only a new version
    assert not state.of("POST", "/experiments")  # existing experiment is reused
    (recurring,) = state.of("POST", "/recurringruns")
    body = json.loads(recurring.body)
    assert body["display_name"] == "nightly"
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert body["max_concurrency"] == 1
    assert body["no_catchup"] is True
    assert body["experiment_id"] == "experiment-existing"
    assert body["pipeline_version_reference"]["pipeline_id"] == "pipeline-existing"
    expected = pipeline_arguments("retrain", profile_params("tiny"))
    assert body["runtime_config"]["parameters"] == expected
    (version,) = state.of("POST", "/pipelines/upload_version")
    spec = _uploaded_package(version)
    assert spec["pipelineInfo"]["name"] == retrain_name
    assert "register" in spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]


def test_five_field_cron_never_reaches_the_server(
    kfp_server: tuple[str, FakeKfp], tmp_path: Path
) -> None:
    host, state = kfp_server
    result = runner.invoke(app, [
        "pipeline", "schedule", "--host", host, "--params", str(_params(tmp_path)),
        "--cron", "0 3 * * *",
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "'0 0 3 * * *'" in result.output and "Traceback" not in result.output
    assert state.calls == []


def test_server_errors_are_one_clear_line(kfp_server: tuple[str, FakeKfp], tmp_path: Path) -> None:
    host, state = kfp_server
    healthy = state.answer

    def failing(call: Recorded) -> tuple[int, dict[str, Any]]:
        if call.path.endswith("/healthz"):
            return healthy(call)
        return 500, {"error": "database is down"}

    state.answer = failing  # type: ignore[method-assign]
    result = runner.invoke(app, [
        "pipeline", "submit", "--host", host, "--params", str(_params(tmp_path)),
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "HTTP 500" in result.output and "database is down" in result.output
    assert "Traceback" not in result.output


def test_unreachable_server_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    result = runner.invoke(app, [
        "pipeline", "submit", "--host", "http://127.0.0.1:9", "--params", str(_params(tmp_path)),
    ])  # fmt: skip
    assert result.exit_code == 2 and "cannot reach the KFP API server" in result.output
