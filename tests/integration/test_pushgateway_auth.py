"""The Pushgateway's basic auth, as k8s/ ships it, against the real Pushgateway binary: started
with the web config of the Secret template (a bcrypt hash filled in), it refuses anonymous pushes
and deletes, and accepts the stage metrics `selfsup.observe` pushes with the credentials from
the environment (the Secret's `username` / `password`)."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from selfsup.observe.metrics import PushTarget, StageRun, build_registry, push

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
BINARY = "prometheus-pushgateway"  # Debian's package; `make system-deps` installs it


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():  # crypt is deprecated, but glibc's bcrypt is what we need
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(address, username, password) of a Pushgateway started with the template's web config."""
    if shutil.which(BINARY) is None:
        pytest.fail(f"{BINARY} is not installed: run `make system-deps`")
    template = yaml.safe_load((REPO / "k8s/secret-templates/selfsup-pushgateway.yaml").read_text())
    username, password = template["stringData"]["username"], secrets.token_hex(16)
    web = yaml.safe_load(template["stringData"]["web-config.yml"])
    assert list(web) == ["basic_auth_users"] and list(web["basic_auth_users"]) == [username]
    web["basic_auth_users"][username] = _bcrypt(password)
    config = tmp_path_factory.mktemp("pushgateway") / "web-config.yml"
    config.write_text(yaml.safe_dump(web))
    port = _free_port()
    process = subprocess.Popen(  # no --persistence.file: nothing is kept between runs
        [BINARY, f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={config}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"{BINARY} exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"127.0.0.1:{port}", username, password
    finally:
        process.terminate()
        process.wait(timeout=10)


def _status(url: str, method: str, auth: tuple[str, str] | None = None, body: bytes = b"") -> int:
    request = urllib.request.Request(url, data=body or None, method=method)
    if auth is not None:
        request.add_header("Authorization", "Basic " + b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_anonymous_push_and_delete_are_refused(gateway: tuple[str, str, str]) -> None:
    address, username, password = gateway
    group = f"http://{address}/metrics/job/selfsup/run_id/x"
    assert _status(group, "PUT", body=b"x 1\n") == 401
    assert _status(group, "DELETE") == 401
    assert _status(group, "DELETE", (username, "wrong")) == 401
    assert _status(group, "PUT", (username, password), b"x 1\n") == 200
    assert _status(group, "DELETE", (username, password)) == 202


def test_stage_metrics_reach_it_with_the_credentials_from_the_environment(
    gateway: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, username, password = gateway
    monkeypatch.setenv("SELFSUP_PUSHGATEWAY", address)
    monkeypatch.setenv("SELFSUP_PUSHGATEWAY_USERNAME", username)
    monkeypatch.setenv("SELFSUP_PUSHGATEWAY_PASSWORD", password)
    target = PushTarget.from_env(run_id="auth-run")
    assert target is not None and password not in repr(target)
    run = StageRun()
    run.items = 7
    assert push(target, "data", build_registry("data", run, 1.0, False, 0.0), 5.0)
    request = urllib.request.Request(f"http://{address}/metrics")
    request.add_header(
        "Authorization", "Basic " + b64encode(f"{username}:{password}".encode()).decode()
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    assert "selfsup_stage_items_processed_total{" in text and 'run_id="auth-run"' in text


def test_a_wrong_password_warns_and_the_stage_goes_on(gateway: tuple[str, str, str]) -> None:
    address, username, _ = gateway
    target = PushTarget(address, "p", "r", username, "not-the-password")
    assert push(target, "data", build_registry("data", StageRun(), 1.0, False, 0.0), 5.0) is False
