"""Bounded retries: exact attempt counts, backoff, and S3 against a server that is down."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from selfsup.errors import StoreError
from selfsup.store.retry import RetriesExhausted, RetryPolicy, with_retries
from selfsup.store.s3 import S3Backend, S3Settings


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(attempts=6, base_delay_s=0.5, max_delay_s=3.0)
    assert [policy.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_transient_errors_are_retried_until_success() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("blip")
        return "ok"

    policy = RetryPolicy(attempts=4, base_delay_s=0.001)
    assert with_retries(flaky, policy, lambda e: isinstance(e, ConnectionError), "x") == "ok"
    assert len(calls) == 3


def test_retries_are_bounded() -> None:
    calls = []

    def down() -> None:
        calls.append(1)
        raise ConnectionError("refused")

    with pytest.raises(RetriesExhausted) as info:
        with_retries(down, RetryPolicy(3, 0.001), lambda e: True, "x")
    assert len(calls) == 3 and info.value.attempts == 3


def test_permanent_errors_are_not_retried() -> None:
    calls = []

    def denied() -> None:
        calls.append(1)
        raise PermissionError("bad key")

    with pytest.raises(PermissionError):
        with_retries(denied, RetryPolicy(5, 0.001), lambda e: isinstance(e, ConnectionError), "x")
    assert len(calls) == 1


@pytest.fixture
def hanging_up_server() -> Iterator[tuple[int, list[int]]]:
    """A TCP server that accepts each connection and closes it at once (a broken S3)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], accepted
    stop.set()
    thread.join()
    sock.close()


def _settings(port: int) -> S3Settings:
    return S3Settings(f"http://127.0.0.1:{port}", "key", "secret")


def test_s3_gives_up_after_exactly_the_policys_attempts(
    hanging_up_server: tuple[int, list[int]],
) -> None:
    port, accepted = hanging_up_server
    backend = S3Backend("bucket", "", _settings(port), RetryPolicy(3, 0.01), timeout_s=2)
    with pytest.raises(StoreError, match="failed 3 times"):
        backend.exists("a/b")
    assert len(accepted) == 3


def test_s3_server_down_is_a_clear_error_in_bounded_time() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = S3Backend("bucket", "", _settings(port), RetryPolicy(3, 0.05), timeout_s=2)
    start = time.monotonic()
    with pytest.raises(StoreError, match=r"failed 3 times \(is it up and reachable\?\)"):
        backend.get_bytes("x")
    assert time.monotonic() - start < 5


def test_settings_come_from_env_or_a_mounted_secret(tmp_path: Path) -> None:
    env = {
        "SELFSUP_S3_ENDPOINT": "http://h:1",
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    assert S3Settings.from_env(env) == S3Settings("http://h:1", "a", "s")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "AWS_ACCESS_KEY_ID").write_text("ka\n")
    (secret / "AWS_SECRET_ACCESS_KEY").write_text("ks\n")
    from_dir = S3Settings.from_env(
        {"SELFSUP_S3_ENDPOINT": "http://h:1", "SELFSUP_S3_SECRET_DIR": str(secret)}
    )
    assert (from_dir.access_key, from_dir.secret_key) == ("ka", "ks")
    assert "ks" not in repr(from_dir)
    with pytest.raises(StoreError, match="no S3 credentials"):
        S3Settings.from_env({"SELFSUP_S3_ENDPOINT": "http://h:1"})
    with pytest.raises(StoreError, match="no S3 endpoint"):
        S3Settings.from_env({})


class _BreakingS3(BaseHTTPRequestHandler):
    """Serves one object; the first GET breaks after half the bytes, later GETs honour Range."""

    payload = bytes(range(256)) * 4096 * 4  # 4 MiB: the client reads 1 MiB chunks
    requests: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        ranged = self.headers.get("Range")
        type(self).requests.append(ranged)
        start = int(ranged.removeprefix("bytes=").split("-")[0]) if ranged else 0
        body = self.payload[start:]
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if len(type(self).requests) == 1:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_download_broken_midway_resumes_from_the_last_byte() -> None:
    _BreakingS3.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BreakingS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        backend = S3Backend("bucket", "", _settings(port), RetryPolicy(3, 0.01), timeout_s=5)
        data = b"".join(backend.iter_chunks("blob"))
    finally:
        server.shutdown()
        server.server_close()
    assert data == _BreakingS3.payload
    assert len(_BreakingS3.requests) == 2
    assert _BreakingS3.requests[0] is None
    resumed_at = int(str(_BreakingS3.requests[1]).removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(_BreakingS3.payload) // 2


def test_a_silent_endpoint_fails_in_under_30_s_with_the_default_settings() -> None:
    """An endpoint that accepts connections and never answers (a hung proxy): the default read
    timeout and retry policy end it in one StoreError well under 30 s, not minutes."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_hold() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_and_hold, daemon=True)
    thread.start()
    try:
        backend = S3Backend("bucket", "", _settings(sock.getsockname()[1]))
        start = time.monotonic()
        with pytest.raises(StoreError, match=r"failed 4 times \(is it up and reachable\?\)"):
            backend.exists("a/b")
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        sock.close()
    assert len(held) == 4 and elapsed < 30


@pytest.mark.parametrize("bucket", ["Bad_Bucket", "ab", "x" * 64, "-lead", "a..b"])
def test_an_invalid_bucket_name_is_one_store_error(bucket: str) -> None:
    with pytest.raises(StoreError, match=rf"s3://{bucket}: not a valid bucket name"):
        S3Backend(bucket, "", _settings(1))
