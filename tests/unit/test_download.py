"""Getting cifar-10-python.tar.gz: offline it says what to set, at once; never a download here.

Every test keeps the network out: the resolver is monkeypatched to fail, or torchvision's
``download_url`` is replaced by a fake that copies a local fixture.
"""

from __future__ import annotations

import shutil
import socket
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import torchvision.datasets.utils
from fixtures.cifar10_python import make_cifar10_python

from selfsup.config import CIFAR10_ARCHIVE_ENV, DataParams
from selfsup.data import download, sources
from selfsup.errors import DataError


def no_download(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("torchvision's download_url must not be called")


def no_dns(*args: Any, **kwargs: Any) -> Any:
    raise socket.gaierror(-3, "Temporary failure in name resolution")


def test_archive_env_names_agree() -> None:
    assert download.ARCHIVE_ENV == CIFAR10_ARCHIVE_ENV  # download.py avoids importing config


def test_offline_the_download_source_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", no_download)
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"cannot be downloaded from https://www\.cs") as err:
        sources.load_source(
            DataParams(source="cifar10-download", download_root=str(tmp_path / "dl"))
        )
    assert time.perf_counter() - start < 1
    assert f"set {CIFAR10_ARCHIVE_ENV} to a cifar-10-python.tar.gz" in str(err.value)
    assert "name resolution" in str(err.value) and "data.archive" in str(err.value)
    assert not (tmp_path / "dl").exists() or not list((tmp_path / "dl").iterdir())


def fake_download(fixture: Path, calls: list[str]) -> Any:
    def download_url(url: str, root: str, filename: str, md5: str) -> None:
        assert md5 == "c58f30108f718f92721af3b95e74349a"
        calls.append(url)
        Path(root).mkdir(parents=True, exist_ok=True)
        shutil.copy(fixture, Path(root) / filename)

    return download_url


def test_downloaded_once_then_read_like_a_local_archive(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fixture = make_cifar10_python(tmp_path / "fixture.tar.gz")
    calls: list[str] = []
    monkeypatch.setattr(download, "unreachable", lambda url: None)
    monkeypatch.setattr(
        torchvision.datasets.utils, "download_url", fake_download(fixture.path, calls)
    )
    monkeypatch.setenv(download.URL_ENV, "https://mirror.example/cifar-10-python.tar.gz")
    params = DataParams(source="cifar10-download", download_root=str(tmp_path / "dl"))
    data = sources.load_source(params)
    assert calls == ["https://mirror.example/cifar-10-python.tar.gz"]
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["cifar-10-python.tar.gz"]
    assert {s: len(split) for s, split in data.splits.items()} == {"train": 50, "test": 20}
    assert data.archive_info["format"] == "cifar-10-python"
    # cached: no second download, even offline
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", no_download)
    assert len(sources.load_source(params).splits["test"]) == 20


def test_a_failed_download_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(url: str, root: str, filename: str, md5: str) -> None:
        (Path(root) / filename).write_bytes(b"half a file")
        raise urllib.error.URLError("connection reset by peer")

    monkeypatch.setattr(download, "unreachable", lambda url: None)
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", broken)
    with pytest.raises(DataError, match=r"downloading CIFAR-10 .* failed .*connection reset"):
        download.download_cifar10(tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []


def test_check_exits_2_with_one_line_offline_and_0_when_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert download.main(["--check"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: no CIFAR-10 archive given and it cannot be downloaded")
    assert f"set {CIFAR10_ARCHIVE_ENV}" in line
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "cifar-10-python.tar.gz").write_bytes(b"cached")
    assert download.main(["--check"]) == 0
    assert download.main([]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'cache' / 'cifar-10-python.tar.gz'}\n"


def test_unreachable_reports_refused_and_unresolvable_hosts() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]  # bound, not listening: connections are refused
        problem = download.unreachable(f"http://127.0.0.1:{port}/x.tar.gz", timeout=2)
    assert problem is not None and f"cannot reach 127.0.0.1:{port}" in problem
    assert download.unreachable("file:///x") == "'file:///x' names no host"


def test_a_host_that_never_answers_is_given_up_within_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def hangs(*args: Any, **kwargs: Any) -> Any:
        time.sleep(30)  # a resolver or firewall that never answers

    monkeypatch.setattr(socket, "create_connection", hangs)
    start = time.perf_counter()
    problem = download.unreachable("https://www.cs.toronto.edu/x", timeout=0.3)
    assert time.perf_counter() - start < 2
    assert problem == "cannot reach www.cs.toronto.edu:443 (no answer in 0.3 s)"
