"""CIFAR-10's own distribution, ``cifar-10-python.tar.gz``, read safely — one reader for three uses.

The tar holds ``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``: Python 2
pickles of dicts (``data``: uint8 ``N×3072``, rows of 1024 R, G then B values of a 32×32 image;
``labels``; ``filenames``; ``label_names`` in ``batches.meta``). :func:`read_cifar10_python` is
the only code that parses it, and it serves

* the ``cifar10-archive`` source, which accepts this tar as ``data.archive`` (detected by content,
  :func:`is_cifar10_python`) besides a JPEG-folder archive;
* the ``cifar10-download`` source (torchvision downloads this same tar);
* ``selfsup data import-cifar10``, which converts it once into the JPEG/PNG-folder layout every
  archive reader understands (``train/<class>/<index>_<filename>.png``, lossless), with a
  manifest of checksums — to inspect, upload, or hand to tools that expect image folders.

Labels are indices into the *sorted* class names, as for any image-folder archive, so the tar and
its import give identical datasets (CIFAR-10's ``label_names`` are already sorted).

Safety: members are checked as in :mod:`selfsup.data.archive` (no absolute paths, ``..``, links or
devices) and read into memory, never extracted; the pickles are loaded by an unpickler that
resolves only numpy's array and dtype reconstructors, so a pickle that names anything else
(``os.system``, ``builtins.eval`` …) is a :class:`DataError` before it can run; every field is
then checked for type, shape and range. The md5 is compared with torchvision's and reported
(``import-cifar10 --verify-md5`` makes a mismatch an error): a re-packed copy is legitimate, and
its structure is what is validated strictly.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from selfsup.data.archive import (
    MAX_ARCHIVE_BYTES,
    MAX_MEMBER_BYTES,
    SPLITS,
    open_tar_stream,
    safe_members,
)
from selfsup.data.download import CIFAR10_MD5, cache_dir
from selfsup.errors import DataError
from selfsup.store import atomic_directory, sha256_file, write_manifest

logger = logging.getLogger(__name__)

FOLDER = "cifar-10-batches-py"
META = "batches.meta"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
IMPORT_KIND = "cifar10-png-archive"
PNG_ARCHIVE = "cifar10-png.tar"
SIDE = 32


def default_import_dir() -> Path:
    return cache_dir() / "cifar10-png"


# ----------------------------------------------------------------------------------------------
# Unpickling: numpy's reconstructors only


def _numpy_globals() -> dict[tuple[str, str], Any]:
    reconstruct = np.zeros(0, np.uint8).__reduce__()[0]  # the callable numpy pickles with
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,  # numpy 1 (the real file)
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,  # numpy 2
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves numpy's array/dtype reconstructors and refuses every other global."""

    def __init__(self, data: bytes, member: str) -> None:
        # latin1: how Python 3 reads Python 2 pickles of numpy arrays (numpy's own advice)
        super().__init__(io.BytesIO(data), encoding="latin1")
        self.member = member
        self.allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        found = self.allowed.get((module, name))
        if found is None:
            raise DataError(
                f"refusing {self.member}: its pickle asks for {module}.{name}, and a CIFAR-10 "
                "batch may only hold numpy arrays, lists and strings (a malicious or wrong file)"
            )
        return found


def _unpickle(data: bytes, member: str) -> dict[str, Any]:
    try:
        loaded = _NumpyOnlyUnpickler(data, member).load()
    except DataError:
        raise
    except Exception as exc:  # a corrupt pickle raises anything from EOFError to TypeError
        raise DataError(f"{member} is not a readable CIFAR-10 pickle ({exc})") from None
    if not isinstance(loaded, dict):
        raise DataError(f"{member} holds a {type(loaded).__name__}, not a CIFAR-10 dict")
    # Python 2 strings arrive as str, Python 3 pickles may carry bytes keys (b"data")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in loaded.items()}


def _field(batch: dict[str, Any], key: str, member: str) -> Any:
    if key not in batch:
        raise DataError(f"{member} has no {key!r} entry (it has {sorted(batch)})")
    return batch[key]


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str | bytes) for v in value):
        raise DataError(f"{what} must be a list of strings")
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]


def _class_names(value: Any) -> list[str]:
    names = _strings(value, f"{META} label_names")
    for name in names:
        if not name or name.startswith(".") or any(c in name for c in "/\\\0"):
            raise DataError(f"{META}: class name {name!r} cannot be a folder name")
    if not names or len(set(names)) != len(names):
        raise DataError(f"{META}: label_names must be distinct and non-empty, got {names}")
    return names


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _member_name(split: str, class_name: str, index: int, filename: str) -> str:
    """``<split>/<class>/<index>_<filename>.png``; the index keeps names unique, the filename is
    reduced to safe characters (it is only a label for people)."""
    stem = _UNSAFE.sub("_", PurePosixPath(filename).name).lstrip(".") or "image"
    if not stem.lower().endswith(".png"):
        stem += ".png"
    return f"{split}/{class_name}/{index:05d}_{stem}"


# ----------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class CifarSplit:
    images: np.ndarray[Any, Any]  # uint8 [N,3,32,32]
    labels: np.ndarray[Any, Any]  # int64 [N], index into Cifar10Python.class_names
    names: list[str]  # member names in the image-folder layout (also used in error messages)


@dataclass(frozen=True)
class Cifar10Python:
    path: Path
    class_names: list[str]  # sorted; labels index this
    label_names: list[str]  # batches.meta's order
    splits: dict[str, CifarSplit]
    md5: str

    @property
    def md5_official(self) -> bool:
        return self.md5 == CIFAR10_MD5

    def info(self) -> dict[str, Any]:
        """What the dataset manifest records about the archive."""
        return {"format": "cifar-10-python", "md5": self.md5, "md5_official": self.md5_official}


def _member_parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))


def is_cifar10_python(path: Path) -> bool:
    """True when the tar's first entries are under ``cifar-10-batches-py/`` (content, not name)."""
    try:
        with open_tar_stream(Path(path)) as tar:
            for seen, member in enumerate(tar):
                if FOLDER in _member_parts(member.name):
                    return True
                if seen >= 16 or member.isreg():
                    return False
    except (DataError, tarfile.TarError, OSError, EOFError, zlib.error):
        return False
    return False


def _read_members(path: Path, max_member_bytes: int, max_total_bytes: int) -> dict[str, bytes]:
    wanted = {META, *BATCHES["train"], *BATCHES["test"]}
    blobs: dict[str, bytes] = {}
    total = 0
    try:
        with open_tar_stream(path) as tar:
            for member in safe_members(tar, path):
                parts = _member_parts(member.name)
                if not member.isreg() or len(parts) < 2 or parts[-2] != FOLDER:
                    continue
                if parts[-1] not in wanted:
                    continue  # readme.html
                if parts[-1] in blobs:
                    raise DataError(f"refusing archive {path}: {member.name!r} appears twice")
                total += member.size
                if member.size > max_member_bytes or total > max_total_bytes:
                    raise DataError(
                        f"refusing archive {path}: member {member.name!r} ({member.size:,} bytes) "
                        f"passes data.max_image_bytes={max_member_bytes:,} or "
                        f"data.max_archive_bytes={max_total_bytes:,}"
                    )
                handle = tar.extractfile(member)
                if handle is None:  # pragma: no cover - isreg() members always have data
                    raise DataError(f"{path}: cannot read member {member.name!r}")
                blobs[parts[-1]] = handle.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable tar(.gz) archive (truncated?): {exc}") from None
    missing = sorted(wanted - set(blobs))
    if missing:
        raise DataError(
            f"{path} is not a complete cifar-10-python archive: no {FOLDER}/{', '.join(missing)}"
        )
    return blobs


def _read_batch(
    blob: bytes, member: str, classes: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], list[str]]:
    batch = _unpickle(blob, member)
    data = _field(batch, "data", member)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{member}: 'data' must be a uint8 N×{3 * SIDE * SIDE} numpy array")
    if data.shape[1] != 3 * SIDE * SIDE:
        raise DataError(f"{member}: 'data' rows have {data.shape[1]} values, not {3 * SIDE * SIDE}")
    raw_labels = _field(batch, "labels", member)
    if not isinstance(raw_labels, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in raw_labels
    ):
        raise DataError(f"{member}: 'labels' must be a list of integers")
    labels = np.asarray(raw_labels, dtype=np.int64)
    filenames = _strings(_field(batch, "filenames", member), f"{member} filenames")
    n = data.shape[0]
    if len(labels) != n or len(filenames) != n:
        raise DataError(
            f"{member}: {n} images but {len(labels)} labels and {len(filenames)} filenames"
        )
    if n and (labels.min() < 0 or labels.max() >= classes):
        raise DataError(f"{member}: labels must lie in 0..{classes - 1} ({META} has {classes})")
    return data.reshape(n, 3, SIDE, SIDE), labels, filenames


def read_cifar10_python(
    path: Path,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_ARCHIVE_BYTES,
) -> Cifar10Python:
    """Read and validate a ``cifar-10-python.tar.gz`` into memory (see the module docstring).

    Raises :class:`DataError` naming the member for an unsafe or missing member, a pickle that
    asks for anything but numpy's reconstructors, or a field of the wrong type, shape or range.
    """
    path = Path(path).expanduser()
    blobs = _read_members(path, max_member_bytes, max_total_bytes)
    meta = _unpickle(blobs.pop(META), f"{FOLDER}/{META}")
    label_names = _class_names(_field(meta, "label_names", f"{FOLDER}/{META}"))
    class_names = sorted(label_names)
    relabel = np.asarray([class_names.index(n) for n in label_names], dtype=np.int64)
    splits: dict[str, CifarSplit] = {}
    for split in SPLITS:
        parts = [
            _read_batch(blobs.pop(name), f"{FOLDER}/{name}", len(label_names))
            for name in BATCHES[split]
        ]
        images = np.concatenate([p[0] for p in parts])
        labels = relabel[np.concatenate([p[1] for p in parts])]
        filenames = [f for p in parts for f in p[2]]
        if not len(images):
            raise DataError(f"{path}: the {split} batches hold no images")
        names = [
            _member_name(split, class_names[label], i, filename)
            for i, (label, filename) in enumerate(zip(labels.tolist(), filenames, strict=True))
        ]
        splits[split] = CifarSplit(images, labels, names)
    with open(path, "rb") as handle:
        md5 = hashlib.file_digest(handle, "md5").hexdigest()
    return Cifar10Python(path, class_names, label_names, splits, md5)


def log_md5(data: Cifar10Python) -> None:
    if data.md5_official:
        logger.info("%s: md5 matches torchvision's cifar-10-python.tar.gz", data.path)
    else:
        logger.warning(
            "%s: md5 %s is not torchvision's %s (a re-packed or modified copy); its structure "
            "was validated",
            data.path,
            data.md5,
            CIFAR10_MD5,
        )


# ----------------------------------------------------------------------------------------------
# Importing into the image-folder layout


def _png(image: np.ndarray[Any, Any]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png_archive(path: Path, data: Cifar10Python) -> None:
    """Every image as a lossless PNG member ``<split>/<class>/<index>_<filename>.png`` of a plain
    tar (PNG is compressed already); fixed mtime and owner, so an import is reproducible."""
    with tarfile.open(path, "w") as tar:
        for split in SPLITS:
            part = data.splits[split]
            for image, name in zip(part.images, part.names, strict=True):
                encoded = _png(image)
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(encoded), 0o644, 0
                tar.addfile(info, io.BytesIO(encoded))


def import_cifar10(source: Path, out: Path, *, verify_md5: bool = False) -> dict[str, Any]:
    """Convert ``source`` (a cifar-10-python tar) into ``out/cifar10-png.tar`` + ``manifest.json``.

    ``out`` is replaced atomically; ``data.archive`` may name ``out`` (the manifest's checksum is
    then verified on read) or the tar in it. With ``verify_md5`` an md5 other than torchvision's is
    a DataError. Returns the manifest.
    """
    data = read_cifar10_python(source)
    if verify_md5 and not data.md5_official:
        raise DataError(
            f"{source}: md5 {data.md5} is not torchvision's {CIFAR10_MD5} for "
            "cifar-10-python.tar.gz (drop --verify-md5 to accept a re-packed copy)"
        )
    log_md5(data)
    with atomic_directory(Path(out), IMPORT_KIND) as tmp:
        write_png_archive(tmp / PNG_ARCHIVE, data)
        manifest = write_manifest(
            tmp,
            IMPORT_KIND,
            {"verify_md5": verify_md5},
            archive=PNG_ARCHIVE,
            layout="<split>/<class>/<index>_<filename>.png",
            source={"name": Path(source).name, "sha256": sha256_file(Path(source)), **data.info()},
            splits={split: len(part.labels) for split, part in data.splits.items()},
            class_names=data.class_names,
        )
    return manifest
