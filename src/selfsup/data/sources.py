"""Where a dataset comes from: the CIFAR-10 archive, a torchvision download, a folder, or synthetic.

The ``cifar10-archive`` source reads either a JPEG-folder archive or CIFAR-10's own
``cifar-10-python.tar.gz`` (told apart by content); ``cifar10-download`` fetches that same tar, so
both go through :mod:`selfsup.data.cifar10_python`, the one safe reader of the pickled batches.

Every source yields the same thing, a :class:`SourceData`: splits ``train`` and ``test`` of uint8
``[N,3,S,S]`` images (``S = image_size``) with int64 labels (-1: unlabeled), the class names
(label = index), a count of the images that could not be decoded and, where the samples have
names people know, each row's source id (:class:`~selfsup.data.shards.SampleIds`):

* an archive member's ``<split>/<class>/<file>`` (its shared top-level folder dropped, kept as
  the ids' ``prefix``); for cifar-10-python the member name its import writes, so the tar and its
  import give identical datasets, ids included;
* a folder image's path inside ``data.folder`` (``train/cat/0001.jpg``, ``cat/0001.jpg``), plus,
  with ``data.ids_csv`` (columns ``file,id``), its user id;
* none for synthetic images (rows are named by index only).

Shared rules, so the sources behave alike:

* **Decoding** uses :func:`torchvision.io.decode_image` and falls back to PIL for formats
  torchvision lacks; every image is converted to RGB and resized (antialiased) to an ``S×S``
  square. The whole image is resized, not cropped: a downsampled dataset keeps all its content
  (as downsampled ImageNet does), at the cost of the aspect ratio.
* **Unreadable images** are counted with the first one's path as an example. ``on_corrupt="fail"``
  raises :class:`DataError` with both; ``"skip"`` drops them, logs a warning and reports the count.
* **Stratified subsets** (``train_per_class`` / ``test_per_class``) take exactly that many images
  of every class, chosen with a generator seeded by ``seed`` and the split's name. Only candidates
  are decoded, in that seeded order, until the class is full, so an unreadable image is replaced by
  the next one and a subset never decodes the whole dataset. For *unlabeled* data (one
  pseudo-class) the number is the total taken. Asking for more images than a class has is a
  :class:`DataError`.
* **Order**: each split is shuffled with a seeded generator before it is returned, so any prefix
  of a split (a shard, ``max_images``) is a class-balanced sample, and two runs with the same
  parameters produce identical tensors.
"""

from __future__ import annotations

import io
import logging
import math
import os
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.config import CIFAR10_ARCHIVE_ENV, DataParams
from selfsup.data import cifar10_python
from selfsup.data.archive import IMAGE_SUFFIXES, SPLITS, ArchiveImage, is_image_name, read_archive
from selfsup.data.download import download_cifar10
from selfsup.data.remote import fetch_source, is_store_uri
from selfsup.data.shards import ROW_ID, UNLABELED, SampleIds, Split
from selfsup.errors import DataError
from selfsup.observe.progress import Progress
from selfsup.store import MANIFEST_NAME, read_manifest, sha256_file

logger = logging.getLogger(__name__)

Decoder = Callable[[int], torch.Tensor | None]
"""Maps a candidate's index to its uint8 RGB ``[3,H,W]`` image at its stored size, or None when it
is unreadable; :func:`assemble_split` resizes it (and counts the stored sizes)."""


@dataclass(frozen=True)
class CorruptReport:
    """Unreadable images met while building one split: how many, and the first one's path."""

    count: int = 0
    example: str | None = None


@dataclass
class SourceSizes:
    """The stored sizes of the images a split was built from, before they were resized to
    ``S×S``: recorded in the manifest and logged, so an upsampled dataset (28×28 → 32×32) or a
    squashed one is never silent."""

    counts: dict[str, int] = field(default_factory=dict)  # "HxW" -> images

    def add(self, image: torch.Tensor) -> None:
        key = f"{image.shape[-2]}x{image.shape[-1]}"
        self.counts[key] = self.counts.get(key, 0) + 1

    def resized(self, size: int) -> int:
        """How many images were not already ``size×size``."""
        return sum(n for key, n in self.counts.items() if key != f"{size}x{size}")


@dataclass
class SourceData:
    """What a source produced: the splits, class names and what had to be skipped."""

    splits: dict[str, Split]
    class_names: list[str]
    origin: str
    corrupt: dict[str, CorruptReport] = field(default_factory=dict)
    archive: Path | None = None
    archive_info: dict[str, Any] = field(default_factory=dict)  # recorded in the manifest
    ids: SampleIds | None = None  # each row's source id, where the source names its samples
    ids_info: dict[str, Any] = field(default_factory=dict)  # recorded in the manifest
    sizes: dict[str, SourceSizes] = field(default_factory=dict)  # stored sizes, per split

    @property
    def corrupt_skipped(self) -> int:
        """Unreadable images skipped over all splits."""
        return sum(report.count for report in self.corrupt.values())

    @property
    def corrupt_example(self) -> str | None:
        """Path of the first unreadable image, if any."""
        return next((r.example for r in self.corrupt.values() if r.example), None)


# ----------------------------------------------------------------------------------------------
# Seeds, decoding and resizing


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose (a split, a shuffle), independent of the others."""
    state = np.random.SeedSequence([seed, zlib.crc32(purpose.encode())]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def _rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, purpose))


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 ``[3,H,W]`` image to ``[3,size,size]`` (antialiased); no-op when it fits."""
    from torchvision.transforms.v2 import functional as F

    if tuple(image.shape[-2:]) == (size, size):
        return image
    resized: torch.Tensor = F.resize(image, [size, size], antialias=True)
    return resized


def _decode_with_pil(data: bytes) -> torch.Tensor | None:
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as opened:
            rgb = ImageOps.exif_transpose(opened).convert("RGB")
            array = np.array(rgb, dtype=np.uint8)
    # PIL raises many exception types on bad input (OSError, SyntaxError, ValueError,
    # DecompressionBombError, struct.error ...); every one of them means "unreadable".
    except Exception:
        return None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


_TORCHVISION_DEPRECATION = "The image decoding and encoding capabilities of TorchVision"


def _decode_with_torchvision(data: bytes) -> torch.Tensor:
    """torchvision's decoder; raises for formats it lacks, for corrupt data, or once it is gone.

    torchvision 0.29 deprecates its image decoders in favour of TorchCodec and warns on every
    call; the pinned version has them, and PIL takes over once they are removed, so the warning
    is silenced here only (not process-wide).
    """
    from torchvision.io import ImageReadMode, decode_image

    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _TORCHVISION_DEPRECATION, DeprecationWarning)
        image: torch.Tensor = decode_image(
            encoded, mode=ImageReadMode.RGB, apply_exif_orientation=True
        )
    return image


def check_pixels(data: bytes, max_pixels: int, name: str) -> None:
    """Refuse an image whose header declares more than ``max_pixels`` (a decompression bomb:
    a small file that decodes to gigabytes), before it is decoded. Unreadable headers pass:
    the decoders then call the image unreadable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
    except Exception:
        return
    if width * height > max_pixels:
        raise DataError(
            f"image {name} is {width}×{height} = {width * height:,} pixels, over "
            f"data.max_image_pixels={max_pixels:,}"
        )


def decode_image_bytes(
    data: bytes, image_size: int | None, max_pixels: int | None = None, name: str = "image"
) -> torch.Tensor | None:
    """Decode an encoded image to uint8 RGB ``[3,S,S]`` (``S = image_size``; None: its stored
    size), or None when it cannot be read.

    torchvision's decoder (libjpeg-turbo, ~30 µs for a CIFAR JPEG, twice as fast as PIL) goes
    first; PIL covers the formats torchvision lacks (BMP, TIFF ...) and gives a second opinion
    before an image is called unreadable. With ``max_pixels``, an image declaring more pixels
    is a DataError before either decoder runs.
    """
    if not data:
        return None
    if max_pixels is not None:
        check_pixels(data, max_pixels, name)
    image: torch.Tensor | None
    try:
        image = _decode_with_torchvision(data)
    # torchvision raises RuntimeError for unsupported formats and for corrupt data alike, and
    # ImportError once its decoders are removed.
    except Exception:
        image = _decode_with_pil(data)
    if image is None:
        return None
    if image.ndim == 4:  # an animated GIF: keep the first frame
        image = image[0]
    if image.dtype != torch.uint8:  # 16-bit PNG
        from torchvision.transforms.v2 import functional as F

        image = F.to_dtype(image, torch.uint8, scale=True)
    if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] == 0 or image.shape[2] == 0:
        return None
    return image if image_size is None else resize_square(image, image_size)


# ----------------------------------------------------------------------------------------------
# Assembling a split: stratified subset, decoding, skipping, shuffling


def _class_label(label: int, class_names: Sequence[str]) -> str:
    return "unlabeled images" if label == UNLABELED else f"class {class_names[label]!r}"


def assemble_split(
    labels: Sequence[int],
    names: Sequence[str],
    decode: Decoder,
    *,
    split: str,
    class_names: Sequence[str],
    per_class: int | None,
    seed: int,
    where: str,
    image_size: int,
) -> tuple[Split, CorruptReport, list[int], SourceSizes]:
    """Decode candidates ``0..len(labels)-1`` into a shuffled :class:`Split` of ``image_size``
    squares; also returns the candidate each row came from and the images' stored sizes.

    With ``per_class`` every class (or, unlabeled, the whole split) contributes exactly that many
    images drawn in a seeded order; unreadable ones are replaced by the next candidate. Raises
    :class:`DataError` when a class cannot supply ``per_class`` readable images, or when the split
    ends up empty.
    """
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    if per_class is not None:
        wanted = [UNLABELED] if UNLABELED in groups else list(range(len(class_names)))
        for label in wanted:
            available = len(groups.get(label, []))
            if available < per_class:
                raise DataError(
                    f"{split}_per_class={per_class}, but {_class_label(label, class_names)} has "
                    f"only {available} images in the {split} split of {where}; lower "
                    f"data.{split}_per_class or set it to null to take all"
                )
    rng = _rng(seed, f"subset-{split}")
    images: list[torch.Tensor] = []
    taken: list[int] = []
    picked: list[int] = []
    corrupt, example = 0, None
    sizes = SourceSizes()
    total = len(labels) if per_class is None else per_class * len(groups)
    with Progress(total, f"data: decode {split}", unit="image") as progress:
        for label in sorted(groups):
            order = groups[label]
            if per_class is not None:
                order = [order[i] for i in rng.permutation(len(order))]
            got = 0
            for index in order:
                if per_class is not None and got == per_class:
                    break
                image = decode(index)
                if image is None:
                    corrupt += 1
                    example = example or names[index]
                    continue
                sizes.add(image)
                images.append(resize_square(image, image_size))
                taken.append(label)
                picked.append(index)
                got += 1
                progress.update(1)
            if per_class is not None and got < per_class:
                raise DataError(
                    f"{split}_per_class={per_class}, but {_class_label(label, class_names)} has "
                    f"only {got} readable images in the {split} split of {where} ({corrupt} "
                    f"unreadable, e.g. {example})"
                )
    if not images:
        raise DataError(f"no readable images in the {split} split of {where}")
    order_all = torch.from_numpy(_rng(seed, f"shuffle-{split}").permutation(len(images)))
    stacked = torch.stack(images)[order_all]
    label_tensor = torch.tensor(taken, dtype=torch.int64)[order_all]
    rows = [picked[i] for i in order_all.tolist()]
    split_data = Split(images=stacked, labels=label_tensor)
    return split_data, CorruptReport(corrupt, example), rows, sizes


def _check_corrupt(reports: dict[str, CorruptReport], on_corrupt: str, where: str) -> None:
    """Fail (``on_corrupt="fail"``) or warn about unreadable images; never silent."""
    total = sum(r.count for r in reports.values())
    if not total:
        return
    example = next(r.example for r in reports.values() if r.example)
    if on_corrupt == "fail":
        raise DataError(
            f"{total} unreadable image(s) in {where}, e.g. {example}; fix or remove them, or set "
            "data.on_corrupt=skip to skip them"
        )
    logger.warning("skipped %d unreadable image(s) in %s, e.g. %s", total, where, example)


def _build(
    candidates: dict[str, tuple[Sequence[int], Sequence[str], Decoder]],
    class_names: list[str],
    params: DataParams,
    *,
    origin: str,
    archive: Path | None = None,
    archive_info: dict[str, Any] | None = None,
    source_ids: Mapping[str, Sequence[str]] | None = None,
    user_ids: Mapping[str, Sequence[str | None]] | None = None,
    prefix: str = "",
    ids_info: dict[str, Any] | None = None,
) -> SourceData:
    """Assemble every split; ``source_ids`` / ``user_ids`` are per candidate, like ``names``."""
    splits: dict[str, Split] = {}
    reports: dict[str, CorruptReport] = {}
    rows: dict[str, list[int]] = {}
    sizes: dict[str, SourceSizes] = {}
    for split, (labels, names, decode) in candidates.items():
        per_class = params.train_per_class if split == "train" else params.test_per_class
        splits[split], reports[split], rows[split], sizes[split] = assemble_split(
            labels,
            names,
            decode,
            split=split,
            class_names=class_names,
            per_class=per_class,
            seed=params.seed,
            where=origin,
            image_size=params.image_size,
        )
    _check_corrupt(reports, params.on_corrupt, origin)
    ids = None
    if source_ids is not None:
        ids = SampleIds(
            source={split: [source_ids[split][i] for i in rows[split]] for split in rows},
            users=None
            if user_ids is None
            else {split: [user_ids[split][i] for i in rows[split]] for split in rows},
            prefix=prefix,
        )
    return SourceData(
        splits,
        class_names,
        origin,
        reports,
        archive,
        archive_info or {},
        ids,
        ids_info or {},
        sizes,
    )


# ----------------------------------------------------------------------------------------------
# The four sources


def resolve_archive(params: DataParams) -> Path:
    """The archive path: ``data.archive``, else ``$SELFSUP_CIFAR10_ARCHIVE``; it must exist.

    A directory written by ``selfsup data import-cifar10`` stands for the tar in it, whose
    checksum is verified against its manifest first.
    """
    if is_store_uri(params.archive):
        return fetch_source(str(params.archive), "archive")
    if params.archive:
        path, origin = Path(params.archive).expanduser(), "data.archive"
    elif os.environ.get(CIFAR10_ARCHIVE_ENV):
        path, origin = Path(os.environ[CIFAR10_ARCHIVE_ENV]).expanduser(), f"${CIFAR10_ARCHIVE_ENV}"
    else:
        raise DataError(
            "no CIFAR-10 archive given for data.source=cifar10-archive: set the environment "
            f"variable {CIFAR10_ARCHIVE_ENV} or the params key data.archive to the path of "
            "cifar-10-python.tar.gz or of a JPEG-folder archive (cifar10-jpg.tar.gz), or use "
            "data.source=cifar10-download"
        )
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        read_manifest(path, kind=cifar10_python.IMPORT_KIND)  # verifies the tar's sha256
        path = path / cifar10_python.PNG_ARCHIVE
    if not path.is_file():
        raise DataError(f"CIFAR-10 archive {path} (from {origin}) does not exist or is not a file")
    return path


def _load_cifar10_python(path: Path, params: DataParams, origin: str) -> SourceData:
    """The pickled batches' arrays as candidates: no decoding, only the resize when asked."""
    data = cifar10_python.read_cifar10_python(
        path, params.max_image_bytes, params.max_archive_bytes
    )
    cifar10_python.log_md5(data)
    candidates: dict[str, tuple[Sequence[int], Sequence[str], Decoder]] = {}
    for split, part in data.splits.items():
        images = torch.from_numpy(part.images)

        def decode(i: int, images: torch.Tensor = images) -> torch.Tensor | None:
            return images[i]

        candidates[split] = (part.labels.tolist(), part.names, decode)
    return _build(
        candidates,
        data.class_names,
        params,
        origin=origin,
        archive=path,
        archive_info=data.info(),
        source_ids={split: part.names for split, part in data.splits.items()},
        ids_info={"source_ids": "the member name of `selfsup data import-cifar10`"},
    )


def load_cifar10_archive(params: DataParams) -> SourceData:
    """CIFAR-10 from a local archive, read safely: cifar-10-python.tar.gz or a JPEG-folder tar."""
    path = resolve_archive(params)
    origin = f"archive {params.archive if is_store_uri(params.archive) else path}"
    if cifar10_python.is_cifar10_python(path):
        return _load_cifar10_python(path, params, origin)
    contents = read_archive(path, params.max_image_bytes, params.max_archive_bytes)
    class_names = contents.class_names
    index = {name: i for i, name in enumerate(class_names)}
    candidates: dict[str, tuple[Sequence[int], Sequence[str], Decoder]] = {}
    for split in SPLITS:
        members = contents.images[split]

        def decode(i: int, members: list[ArchiveImage] = members) -> torch.Tensor | None:
            member = members[i]
            return decode_image_bytes(member.data, None, params.max_image_pixels, member.name)

        candidates[split] = (
            [index[m.class_name] for m in members],
            [m.name for m in members],
            decode,
        )
    return _build(
        candidates,
        class_names,
        params,
        origin=origin,
        archive=path,
        source_ids={split: [m.source_id for m in contents.images[split]] for split in SPLITS},
        prefix=contents.prefix,
        ids_info={"source_ids": "archive member <split>/<class>/<file>", "prefix": contents.prefix},
    )


def load_cifar10_download(params: DataParams) -> SourceData:
    """CIFAR-10 downloaded once (torchvision, md5 checked) into ``download_root``, then read like
    a local cifar-10-python archive; offline without a cached copy it is a DataError."""
    root = Path(params.download_root).expanduser()
    path = download_cifar10(root)
    return _load_cifar10_python(path, params, f"torchvision CIFAR-10 download in {root}")


def _images_in(directory: Path, recursive: bool) -> list[Path]:
    files = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(
        p
        for p in files
        if is_image_name(p.name)
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def scan_image_folder(root: Path) -> tuple[list[Path], list[str], list[str]]:
    """Images of one folder and their class names: ``(paths, class of each path, class names)``.

    Sub-folders with images are classes (their images found recursively); a folder with images
    directly in it and no class folders is unlabeled (every class ``""``, no class names).
    """
    direct = _images_in(root, recursive=False)
    classes: list[tuple[str, list[Path]]] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found = _images_in(sub, recursive=True)
        if found:
            classes.append((sub.name, found))
    if direct and classes:
        raise DataError(
            f"{root} mixes images directly in it (e.g. {direct[0].name}) with class folders "
            f"(e.g. {classes[0][0]}/): put every image in a class folder (labelled) or none "
            "(unlabeled)"
        )
    if not direct and not classes:
        suffixes = " ".join(sorted(IMAGE_SUFFIXES))
        raise DataError(f"{root} holds no images (looked for files ending in {suffixes})")
    if direct:
        return direct, [""] * len(direct), []
    paths = [p for _, found in classes for p in found]
    owners = [name for name, found in classes for _ in found]
    return paths, owners, [name for name, _ in classes]


def _split_by_fraction(
    labels: Sequence[int], test_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Indices of (train, test): per class a seeded ``round(n * test_fraction)`` go to test."""
    rng = _rng(seed, "folder-split")
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    test: list[int] = []
    for label in sorted(groups):
        members = groups[label]
        n_test = min(len(members), math.floor(len(members) * test_fraction + 0.5))
        test.extend(members[i] for i in rng.permutation(len(members))[:n_test])
    chosen = set(test)
    return [i for i in range(len(labels)) if i not in chosen], sorted(test)


def read_image_file(path: Path, params: DataParams, resize: bool = True) -> torch.Tensor | None:
    """One image file as uint8 ``[3,S,S]`` (``S = params.image_size``; ``resize`` False: its
    stored size), or None when it cannot be read; a file over ``data.max_image_bytes`` or an
    image over ``data.max_image_pixels`` is a DataError. The folder source and ``selfsup embed``
    read images through this."""
    try:
        size = path.stat().st_size
        if size > params.max_image_bytes:
            raise DataError(
                f"image {path} is {size:,} bytes, over data.max_image_bytes="
                f"{params.max_image_bytes:,}"
            )
        data = path.read_bytes()
    except OSError:
        return None
    side = params.image_size if resize else None
    return decode_image_bytes(data, side, params.max_image_pixels, str(path))


def load_folder(params: DataParams) -> SourceData:
    """A user's image folder: ``train/`` + ``test/``, or one folder split by ``test_fraction``."""
    if not params.folder:
        raise DataError("data.source=folder needs data.folder: the path of an image folder")
    root = (
        fetch_source(params.folder, "folder")
        if is_store_uri(params.folder)
        else Path(params.folder).expanduser()
    )
    if not root.is_dir():
        raise DataError(f"image folder {root} (data.folder) does not exist or is not a directory")
    has_train, has_test = (root / "train").is_dir(), (root / "test").is_dir()
    if has_train != has_test:
        raise DataError(
            f"{root} has a {'train' if has_train else 'test'}/ folder but no "
            f"{'test' if has_train else 'train'}/: give both, or neither (then data.test_fraction "
            "of the images is held out)"
        )
    per_split: dict[str, tuple[list[Path], list[str]]] = {}
    if has_train:
        scanned = {split: scan_image_folder(root / split) for split in SPLITS}
        if bool(scanned["train"][2]) != bool(scanned["test"][2]):
            raise DataError(
                f"{root}: train/ and test/ must both have class folders or both be flat (unlabeled)"
            )
        class_names = sorted({c for _, _, names in scanned.values() for c in names})
        per_split = {split: (paths, owners) for split, (paths, owners, _) in scanned.items()}
    else:
        paths, owners, class_names = scan_image_folder(root)
        index = {name: i for i, name in enumerate(class_names)}
        labels = [index.get(o, UNLABELED) for o in owners]
        train_idx, test_idx = _split_by_fraction(labels, params.test_fraction, params.seed)
        if not train_idx or not test_idx:
            raise DataError(
                f"{root} has {len(paths)} images: too few to hold out "
                f"data.test_fraction={params.test_fraction} as a test split; add images or "
                "provide train/ and test/ folders"
            )
        per_split = {
            "train": ([paths[i] for i in train_idx], [owners[i] for i in train_idx]),
            "test": ([paths[i] for i in test_idx], [owners[i] for i in test_idx]),
        }
    index = {name: i for i, name in enumerate(class_names)}
    candidates: dict[str, tuple[Sequence[int], Sequence[str], Decoder]] = {}
    for split, (paths, owners) in per_split.items():

        def decode(i: int, paths: list[Path] = paths) -> torch.Tensor | None:
            return read_image_file(paths[i], params, resize=False)

        labels = [index.get(o, UNLABELED) for o in owners]
        candidates[split] = (labels, [str(p) for p in paths], decode)
    origin = f"folder {params.folder if is_store_uri(params.folder) else root}"
    source_ids = {
        split: [p.relative_to(root).as_posix() for p in paths]
        for split, (paths, _) in per_split.items()
    }
    ids_info: dict[str, Any] = {"source_ids": "path inside data.folder"}
    user_ids: dict[str, Sequence[str | None]] | None = None
    if params.ids_csv:
        csv_path = Path(params.ids_csv).expanduser()
        owners_of = read_ids_csv(csv_path, {i for ids in source_ids.values() for i in ids})
        user_ids = {split: [owners_of.get(i) for i in ids] for split, ids in source_ids.items()}
        ids_info["user_ids"] = {
            "csv": str(csv_path),
            "sha256": sha256_file(csv_path),
            "images_without_id": sum(i not in owners_of for v in source_ids.values() for i in v),
        }
    return _build(
        candidates,
        class_names,
        params,
        origin=origin,
        source_ids=source_ids,
        user_ids=user_ids,
        ids_info=ids_info,
    )


def read_ids_csv(path: Path, files: set[str]) -> dict[str, str]:
    """``data.ids_csv``: the user id of each listed image (``file`` → ``id``).

    ``file`` is the image's path inside ``data.folder`` (``/`` separated, as the source ids are).
    Images the CSV leaves out have no user id (they can still be named by path). A DataError,
    naming the rows, for a missing file or column, a row naming no image of the folder, a file
    listed twice, an empty id, or an id a request could not tell apart from a row id
    (``train/17``) or from an image's path.
    """
    import csv

    if not path.is_file():
        raise DataError(f"data.ids_csv {path} does not exist or is not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a spreadsheet is not a column
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"data.ids_csv {path} is not readable UTF-8 text: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    if "file" not in columns or "id" not in columns:
        raise DataError(f"data.ids_csv {path} needs the columns file,id; it has {columns}")
    reader.fieldnames = columns
    owners: dict[str, str] = {}
    problems: list[str] = []
    for line, row in enumerate(reader, start=2):
        name = (row.get("file") or "").strip().replace("\\", "/").removeprefix("./")
        owner = (row.get("id") or "").strip()
        if name not in files:
            problems.append(f"line {line}: {name!r} is not an image of data.folder")
        elif name in owners:
            problems.append(f"line {line}: {name!r} is listed twice")
        elif not owner:
            problems.append(f"line {line}: {name!r} has an empty id")
        elif ROW_ID.match(owner) or owner in files:
            kind = "a row id" if ROW_ID.match(owner) else "an image's path"
            problems.append(f"line {line}: id {owner!r} reads as {kind}")
        else:
            owners[name] = owner
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        shown = "; ".join(problems[:5]) + more
        raise DataError(f"data.ids_csv {path}: {shown}")
    return owners


# Synthetic images: a shape (class % 8) drawn with a fill pattern (class // 8), at a random
# position, scale and small rotation, in random colours (light on dark or dark on light), plus
# pixel noise. Colour carries no class information, so a model must learn shape and texture.
SHAPES = ("disk", "square", "triangle", "plus", "ring", "x", "bars", "diamond")
FILLS = ("", "hstriped-", "vstriped-", "checkered-")


def synthetic_class_names(classes: int) -> list[str]:
    """Names of the first ``classes`` synthetic classes: ``disk``, ``square`` … ``checkered-x``."""
    return [f"{FILLS[c // len(SHAPES)]}{SHAPES[c % len(SHAPES)]}" for c in range(classes)]


def _shape_mask(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Boolean mask of shape number ``shape`` in shape coordinates (roughly [-1, 1])."""
    au, av, r2 = u.abs(), v.abs(), u * u + v * v
    if shape == 0:
        return r2 <= 1.0
    if shape == 1:
        return torch.maximum(au, av) <= 0.8
    if shape == 2:
        return (v <= 0.75) & (au <= (v + 0.95) * 0.55)
    if shape == 3:
        return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))
    if shape == 4:
        return (r2 <= 1.0) & (r2 >= 0.36)
    if shape == 5:
        return (((u - v).abs() <= 0.35) | ((u + v).abs() <= 0.35)) & (torch.maximum(au, av) <= 0.9)
    if shape == 6:
        return (au <= 0.95) & (((v - 0.5).abs() <= 0.22) | ((v + 0.5).abs() <= 0.22))
    return au + av <= 1.0


def render_synthetic(labels: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """uint8 ``[N,3,size,size]`` images of the given classes, deterministic for ``generator``."""
    n = len(labels)

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, *shape, generator=generator)

    axis = torch.linspace(-1.0, 1.0, size)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    cx, cy = uniform(-0.3, 0.3, 1, 1), uniform(-0.3, 0.3, 1, 1)
    scale, angle = uniform(0.4, 0.65, 1, 1), uniform(-0.3, 0.3, 1, 1)
    dx, dy = (xs - cx) / scale, (ys - cy) / scale
    u = torch.cos(angle) * dx + torch.sin(angle) * dy
    v = -torch.sin(angle) * dx + torch.cos(angle) * dy
    mask = torch.zeros(n, size, size, dtype=torch.bool)
    texture = torch.ones(n, size, size)
    shapes, fills = labels % len(SHAPES), (labels // len(SHAPES)) % len(FILLS)
    for shape in range(len(SHAPES)):
        pick = shapes == shape
        if pick.any():
            mask[pick] = _shape_mask(shape, u[pick], v[pick])
    stripes_u, stripes_v = torch.sin(u * 7.0) > 0, torch.sin(v * 7.0) > 0
    for fill, pattern in ((1, stripes_v), (2, stripes_u), (3, stripes_u ^ stripes_v)):
        pick = fills == fill
        texture[pick] = torch.where(pattern[pick], 1.0, 0.35)
    light = uniform(0.6, 1.0, 3, 1, 1)
    dark = uniform(0.0, 0.4, 3, 1, 1)
    light_on_dark = torch.rand(n, 1, 1, 1, generator=generator) < 0.5
    fg, bg = torch.where(light_on_dark, light, dark), torch.where(light_on_dark, dark, light)
    weight = (mask.float() * texture).unsqueeze(1)
    image = bg + weight * (fg - bg)
    image = image + 0.06 * torch.randn(image.shape, generator=generator)
    return (image.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def make_synthetic(params: DataParams) -> SourceData:
    """Procedural labelled images (class-balanced), deterministic from ``seed``; for tests."""
    classes, size = params.synthetic_classes, params.image_size
    candidates: dict[str, tuple[Sequence[int], Sequence[str], Decoder]] = {}
    for split, count in (("train", params.synthetic_train), ("test", params.synthetic_test)):
        generator = torch.Generator().manual_seed(derive_seed(params.seed, f"synthetic-{split}"))
        labels = (torch.arange(count) % classes)[torch.randperm(count, generator=generator)]
        images = render_synthetic(labels, size, generator)

        def decode(i: int, images: torch.Tensor = images) -> torch.Tensor | None:
            return images[i]

        candidates[split] = (
            labels.tolist(),
            [f"synthetic {split}[{i}]" for i in range(count)],
            decode,
        )
    return _build(candidates, synthetic_class_names(classes), params, origin="synthetic images")


LOADERS: dict[str, Callable[[DataParams], SourceData]] = {
    "cifar10-archive": load_cifar10_archive,
    "cifar10-download": load_cifar10_download,
    "folder": load_folder,
    "synthetic": make_synthetic,
}


def load_source(params: DataParams) -> SourceData:
    """Build the train and test splits from ``params.source``."""
    return LOADERS[params.source](params)
