"""``selfsup embed``: the encoder's features of a folder of image files, with their sample ids.

The images are found, read and decoded exactly as the ``folder`` data source does
(:func:`selfsup.data.sources.scan_image_folder`, :func:`~selfsup.data.sources.read_image_file`:
the same suffixes, hidden files skipped, the size limits of ``data.max_image_bytes`` /
``max_image_pixels``, resized to ``data.image_size``); an ``s3://bucket/prefix/NAME`` folder
uploaded with ``selfsup data upload`` is fetched (verified, cached) as ``data.folder`` is. A
sample's id is its path relative to the folder (``cat/001.jpg``), the same id a deletion
request names. An unreadable image stops the command before anything is written: an embedding
file never silently lacks a row.

Output, for ``--out F.npy``: ``F.npy`` (float32 ``[N, D]``, row i = id i), ``F.ids.txt`` (one id
per line, in the folder's sorted order) and ``F.json`` (the model's content hash, the source, N,
D, the image size), each written atomically, the ``.npy`` last.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.config import DataParams
from selfsup.data.remote import fetch_source, is_store_uri
from selfsup.data.sources import read_image_file, scan_image_folder
from selfsup.errors import DataError
from selfsup.models.artifact import load_encoder
from selfsup.models.embed import embed
from selfsup.store import atomic_write_bytes

IDS_SUFFIX = ".ids.txt"


def image_folder(images: str) -> Path:
    """The local folder of ``images``: a path, or an uploaded folder in the store (fetched)."""
    root = fetch_source(images, "folder") if is_store_uri(images) else Path(images).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {images} does not exist or is not a directory")
    return root


def sample_ids(root: Path) -> tuple[list[Path], list[str]]:
    """The folder's image files in order and their ids (paths relative to ``root``)."""
    paths, _, _ = scan_image_folder(root)
    ids = [p.relative_to(root).as_posix() for p in paths]
    bad = next((i for i in ids if "\n" in i or "\r" in i), None)
    if bad is not None:
        raise DataError(f"image file name {bad!r} holds a line break: rename it")
    return paths, ids


def decode_all(paths: list[Path], params: DataParams) -> torch.Tensor:
    """uint8 ``[N,3,S,S]`` of ``paths``; the first unreadable one is a DataError naming it."""
    images = []
    for path in paths:
        image = read_image_file(path, params)
        if image is None:
            raise DataError(
                f"image {path} cannot be decoded (corrupt, truncated or not an image): remove or "
                "replace it; no embeddings were written"
            )
        images.append(image)
    return torch.stack(images)


def outputs(out: Path) -> tuple[Path, Path, Path]:
    """(``F.npy``, ``F.ids.txt``, ``F.json``) for ``out`` = ``F.npy``."""
    out = Path(out)
    if out.suffix != ".npy":
        raise DataError(f"--out {out}: embeddings are written as .npy (pyarrow is not installed)")
    stem = out.with_suffix("")
    return out, stem.with_name(stem.name + IDS_SUFFIX), out.with_suffix(".json")


def run(
    model: Path, images: str, *, params: DataParams, out: Path, batch_size: int = 256
) -> dict[str, Any]:
    """Embed every image of the folder ``images`` with the encoder in ``model``; write ``out``.
    Returns what ``F.json`` holds."""
    npy, ids_path, meta_path = outputs(out)
    paths, ids = sample_ids(image_folder(images))
    encoder, manifest = load_encoder(Path(model))
    features = embed(encoder, decode_all(paths, params), batch_size).numpy().astype(np.float32)
    meta = {
        "model": str(manifest["content_hash"]),
        "images": str(images),
        "count": len(ids),
        "dim": int(features.shape[1]),
        "image_size": params.image_size,
        "ids": ids_path.name,
    }
    buffer = io.BytesIO()
    np.save(buffer, features, allow_pickle=False)
    npy.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(ids_path, "".join(f"{i}\n" for i in ids).encode())
    atomic_write_bytes(meta_path, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    atomic_write_bytes(npy, buffer.getvalue())
    return meta


def read_embeddings(out: Path) -> tuple[np.ndarray, list[str]]:
    """The features and ids ``run`` wrote to ``out``."""
    npy, ids_path, _ = outputs(out)
    return np.load(npy, allow_pickle=False), ids_path.read_text().splitlines()
