"""CIFAR-10's ``cifar-10-python.tar.gz``: fetched once into a cache, read by the archive source.

The module is standard-library only at import, so ``make run`` can ask ``python -m
selfsup.data.download --check`` *before* the venv exists whether CIFAR-10 can be had (cached, or
the host answers within a few seconds) and stop at once with what to set when it cannot.
The download itself is torchvision's (``download_url``, md5 checked), into a temporary name that
is renamed when complete, so a cached file is always a whole, verified one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
import urllib.parse
from pathlib import Path

from selfsup.errors import DataError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # torchvision.datasets.CIFAR10.tgz_md5
CIFAR10_FILENAME = "cifar-10-python.tar.gz"
URL_ENV = "SELFSUP_CIFAR10_URL"  # another mirror; tests point it at an unreachable address
CACHE_ENV = "SELFSUP_CACHE_DIR"
ARCHIVE_ENV = "SELFSUP_CIFAR10_ARCHIVE"  # = config.CIFAR10_ARCHIVE_ENV (config needs pydantic)
PROBE_SECONDS = 5.0

WHAT_TO_SET = (
    f"set {ARCHIVE_ENV} to a cifar-10-python.tar.gz (or a JPEG-folder archive), "
    "or data.archive in params.yaml"
)


def cache_dir() -> Path:
    """``$SELFSUP_CACHE_DIR``, else ``~/.cache/selfsup``."""
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/selfsup").expanduser()


def cifar10_url() -> str:
    return os.environ.get(URL_ENV) or CIFAR10_URL


def unreachable(url: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why ``url``'s host cannot be reached (DNS, refused, timed out), or None when it answers.

    A bare TCP connect, resolution included, within ``timeout`` seconds in all: torchvision's own
    requests have no timeout and would hang behind a firewall that drops packets.
    """
    parsed = urllib.parse.urlsplit(url)
    if not parsed.hostname:
        return f"{url!r} names no host"
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as exc:  # socket.gaierror and TimeoutError are OSErrors
            outcome.append(f"cannot reach {host}:{port} ({exc or type(exc).__name__})")

    # a thread, because name resolution ignores socket timeouts
    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout)
    return outcome[0] if outcome else f"cannot reach {host}:{port} (no answer in {timeout:g} s)"


def download_cifar10(root: Path | None = None) -> Path:
    """The path of a verified ``cifar-10-python.tar.gz`` under ``root`` (default: the cache),
    downloaded first when absent. Offline it is a :class:`DataError` saying what to set."""
    root = Path(root).expanduser() if root is not None else cache_dir()
    target = root / CIFAR10_FILENAME
    if target.is_file():
        return target
    url = cifar10_url()
    problem = unreachable(url)
    if problem is not None:
        raise DataError(f"CIFAR-10 cannot be downloaded from {url}: {problem}; {WHAT_TO_SET}")
    from torchvision.datasets.utils import download_url

    root.mkdir(parents=True, exist_ok=True)
    partial = f".{CIFAR10_FILENAME}.{os.getpid()}.part"
    try:
        # torchvision prints "Downloading ..." on stdout: keep stdout for the path (make run).
        with contextlib.redirect_stdout(sys.stderr):
            download_url(url, str(root), filename=partial, md5=CIFAR10_MD5)
    except (OSError, RuntimeError, ValueError) as exc:
        (root / partial).unlink(missing_ok=True)
        raise DataError(
            f"downloading CIFAR-10 from {url} into {root} failed ({type(exc).__name__}: {exc}); "
            f"{WHAT_TO_SET}"
        ) from None
    os.replace(root / partial, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """``--check``: exit 0 when CIFAR-10 is cached or its host answers, else one ``error:`` line
    and 2. Without it: download when needed and print the archive's path."""
    parser = argparse.ArgumentParser(prog="python -m selfsup.data.download", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only say whether it can be had")
    parser.add_argument("--root", type=Path, default=None, help="cache folder (default: cache)")
    args = parser.parse_args(argv)
    root = args.root if args.root is not None else cache_dir()
    try:
        if args.check:
            if not (root / CIFAR10_FILENAME).is_file():
                problem = unreachable(cifar10_url())
                if problem is not None:
                    raise DataError(
                        f"no CIFAR-10 archive given and it cannot be downloaded ({problem}); "
                        f"{WHAT_TO_SET}"
                    )
            return 0
        print(download_cifar10(root))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
