"""Atomic file and directory writes.

A reader (or a resumed run) must never see half an artifact: files are written to a temporary
sibling, flushed to disk and renamed into place; directories are built under a temporary name and
renamed as a whole. ``os.replace`` is atomic on POSIX within one filesystem, which is why the
temporary always lives next to the target.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

_CHUNK = 1 << 20


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _publishable(path: Path, mode: int) -> None:
    """Give a temp file/dir the permissions a plain ``open``/``mkdir`` would have.

    ``mkstemp``/``mkdtemp`` create owner-only entries (0600/0700); published artifacts must be
    readable by other users of a shared volume (a Kubeflow pod runs as another uid).
    """
    os.chmod(path, mode & ~_umask())


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Yield a handle on a temporary sibling of ``path``; on success it is flushed, fsynced and
    renamed over ``path``, on failure removed (``path`` untouched)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        _publishable(Path(tmp), 0o666)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory, then rename."""
    with _atomic_file(path) as handle:
        handle.write(data)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


MANIFEST = "manifest.json"  # selfsup.store.manifest.MANIFEST_NAME (that module imports this one)


def check_replaceable(final: Path, kind: str | None = None) -> None:
    """Refuse to replace ``final`` unless it is absent, an empty directory, or a selfsup artifact
    (it has a manifest) — of ``kind`` when given. A user's folder given as ``--out`` by mistake,
    or ``--out .``, is an error before anything is moved or deleted."""
    import json

    from selfsup.errors import OutputError

    final = Path(final)
    if final.name in ("", ".", "..") or final.resolve() in (Path.cwd(), Path.home(), Path("/")):
        raise OutputError(f"output {str(final)!r} must name a directory of its own, not this one")
    if not final.exists() and not final.is_symlink():
        return
    if not final.is_dir() or final.is_symlink():
        raise OutputError(f"output {final} exists and is not a directory: refusing to replace it")
    if not any(final.iterdir()):
        return
    manifest = final / MANIFEST
    if not manifest.is_file():
        raise OutputError(
            f"output {final} exists and is not a selfsup artifact (no {MANIFEST}): refusing to "
            "replace it; choose another output or remove it yourself"
        )
    if kind is not None:
        try:
            found = json.loads(manifest.read_text()).get("kind")
        except (ValueError, OSError, AttributeError):
            found = None
        if found != kind:
            raise OutputError(
                f"output {final} holds a {found!r} artifact, not a {kind!r}: refusing to replace "
                "it; choose another output"
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temporaries(final: Path) -> list[Path]:
    """Remove the temporary siblings of ``final`` left by killed writers (their process is gone:
    the pid is in the name); a live writer's are kept. Returns what was removed."""
    final = Path(final)
    removed: list[Path] = []
    if not final.parent.is_dir():
        return removed
    for entry in final.parent.glob(f".{final.name}.*"):
        parts = entry.name[len(final.name) + 2 :].split(".")
        if len(parts) < 2 or not parts[0].isdigit() or parts[-1] not in ("tmp", "old"):
            continue
        if not _alive(int(parts[0])):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_directory(final: Path, kind: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``final`` only if the block succeeds.

    On an exception the temporary directory is removed and ``final`` is left as it was. An
    existing ``final`` is replaced (moved aside first, then deleted) only when
    :func:`check_replaceable` allows it — checked before the block and again before the swap —
    so a re-run of a stage overwrites its output without a window in which nothing or something
    half-written is there, and never deletes what is not an artifact. Temporaries of killed
    writers are cleaned first.
    """
    final = Path(final)
    check_replaceable(final, kind)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(final)
    prefix = f".{final.name}.{os.getpid()}."
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=final.parent))
    _publishable(tmp, 0o777)
    try:
        yield tmp
        check_replaceable(final, kind)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old: Path | None = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=prefix, suffix=".old", dir=final.parent))
        os.replace(final, old / "previous")
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` via a temporary sibling and a rename (no half file visible)."""
    with _atomic_file(target) as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out, _CHUNK)
