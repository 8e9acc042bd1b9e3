"""MNIST-format (IDX) datasets (MNIST, Fashion-MNIST, KMNIST), read safely, written as a folder.

Debian packages Fashion-MNIST (``apt install dataset-fashion-mnist``: the four
``*-ubyte.gz`` files in :data:`DEBIAN_FASHION_MNIST`), which makes it a second labelled dataset
every machine of this project can install offline. :func:`import_idx` converts such a directory
once into the layout the ``folder`` source reads (``train/<class>/<index>.png``,
``test/<class>/<index>.png``, lossless 8-bit grayscale), with a checksummed manifest; the data
stage then records the images as grayscale and resized, as it does for any folder.

The files are untrusted input and are parsed by hand, strictly, because IDX is four header fields
and a byte array: the magic must say unsigned bytes with 3 (images) or 1 (labels) dimensions, the
payload must be exactly as long as the header says, gzip is decompressed with a size cap (no
decompression bomb), and image and label counts and label values are checked before anything is
written.
"""

from __future__ import annotations

import gzip
import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.data.archive import SPLITS
from selfsup.errors import DataError
from selfsup.store import atomic_directory, sha256_file, write_manifest

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IMPORT_KIND = "idx-image-folder"
# The standard file names of the MNIST family, per split: (images, labels).
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Class names by label, for ``--classes``; folder names, so no ``/``.
CLASS_PRESETS: dict[str, tuple[str, ...]] = {
    "digits": tuple(str(i) for i in range(10)),
    "fashion-mnist": (
        "t-shirt-top",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle-boot",
    ),
}
MAX_FILE_BYTES = 1 << 30
_UBYTE = 0x08


@dataclass(frozen=True)
class IdxSplit:
    """One split: uint8 images ``[N,H,W]`` and their labels ``[N]``."""

    images: np.ndarray[Any, np.dtype[np.uint8]]
    labels: np.ndarray[Any, np.dtype[np.uint8]]


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it ends in ``.gz``, never more than MAX_FILE_BYTES."""
    try:
        with path.open("rb") as raw:
            stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw
            data = stream.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise DataError(f"{path}: more than {MAX_FILE_BYTES} bytes; not an IDX file of images")
    return data


def parse_idx(data: bytes, dims: int, where: str) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """An IDX array of unsigned bytes with ``dims`` dimensions, checked against its header."""
    header = 4 + 4 * dims
    if len(data) < header:
        raise DataError(f"{where}: {len(data)} bytes, shorter than an IDX header")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != _UBYTE or ndim != dims:
        raise DataError(
            f"{where}: not an IDX file of unsigned bytes with {dims} dimension(s) "
            f"(magic {data[:4].hex()}, expected 0000080{dims})"
        )
    shape = struct.unpack(f">{dims}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise DataError(
            f"{where}: header says shape {shape} ({expected} bytes) but the file has {len(data)} "
            "(truncated or padded)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _split_file(directory: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory}: no {stem}.gz (or {stem}); expected the MNIST-format files")


def read_idx_split(directory: Path, split: str, num_classes: int) -> IdxSplit:
    """One split of an MNIST-format directory, with counts and label range checked."""
    image_stem, label_stem = FILES[split]
    image_path, label_path = _split_file(directory, image_stem), _split_file(directory, label_stem)
    images = parse_idx(_read_bytes(image_path), 3, str(image_path))
    labels = parse_idx(_read_bytes(label_path), 1, str(label_path))
    if len(images) != len(labels):
        raise DataError(f"{directory} {split}: {len(images)} images but {len(labels)} labels")
    if len(labels) and int(labels.max()) >= num_classes:
        raise DataError(
            f"{label_path}: label {int(labels.max())} but only {num_classes} class names given"
        )
    return IdxSplit(images, labels)


def class_names_for(classes: str) -> list[str]:
    """A preset's names (:data:`CLASS_PRESETS`) or a comma-separated list of folder names."""
    if classes in CLASS_PRESETS:
        return list(CLASS_PRESETS[classes])
    names = [name.strip() for name in classes.split(",")]
    bad = [n for n in names if not n or "/" in n or n in (".", "..")]
    if bad or len(set(names)) != len(names):
        raise DataError(
            f"--classes {classes!r}: expected one of {sorted(CLASS_PRESETS)} or distinct, "
            "non-empty comma-separated folder names"
        )
    return names


def _write_pngs(root: Path, split: IdxSplit, class_names: list[str]) -> None:
    from PIL import Image

    for label in np.unique(split.labels):  # a folder per class that has images
        (root / class_names[label]).mkdir(parents=True)
    for index, (image, label) in enumerate(zip(split.images, split.labels, strict=True)):
        Image.fromarray(image).save(root / class_names[label] / f"{index:05d}.png")


def import_idx(source: Path, out: Path, classes: str = "digits") -> dict[str, Any]:
    """Convert ``source`` (the four MNIST-format files) into the image folder ``out``.

    Both splits are read and checked before anything is written; ``out`` is replaced atomically.
    Returns the manifest (split sizes, class names, the source files' checksums).
    """
    source = Path(source)
    if not source.is_dir():
        raise DataError(f"{source}: not a directory of MNIST-format files")
    class_names = class_names_for(classes)
    splits = {split: read_idx_split(source, split, len(class_names)) for split in SPLITS}
    with atomic_directory(Path(out), IMPORT_KIND) as tmp:
        for name, split in splits.items():
            _write_pngs(tmp / name, split, class_names)
        files = [_split_file(source, stem) for pair in FILES.values() for stem in pair]
        return write_manifest(
            tmp,
            IMPORT_KIND,
            {"classes": classes},
            layout="<split>/<class>/<index>.png",
            source={f.name: sha256_file(f) for f in files},
            splits={name: len(split.labels) for name, split in splits.items()},
            class_names=class_names,
            image_shape=list(splits["train"].images.shape[1:]),
        )
