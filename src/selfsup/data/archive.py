"""Safe reading of a CIFAR-10-style JPEG-folder archive (``.tar`` / ``.tar.gz``).

The archive is streamed with :mod:`tarfile` and its image members are read into memory; nothing is
extracted to disk. An archive is untrusted input: a member with an absolute path, a ``..``
component, or one that is a link, device or FIFO could make a careless extractor write outside its
target, so *any* such member refuses the whole archive (a :class:`~selfsup.errors.DataError`
naming the member) before a single image is returned.

Layout: ``<prefix?>/<split>/<class>/<image>`` with split ``train`` or ``test`` and an optional
prefix of any depth (a top-level folder, as ``git archive`` or GitHub zips add), shared by all
images. Other files (a README, ``.DS_Store``) are ignored.
"""

from __future__ import annotations

import logging
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from selfsup.errors import DataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
LAYOUT_HINT = "expected <prefix?>/train/<class>/<image> and <prefix?>/test/<class>/<image>"


@dataclass(frozen=True)
class ArchiveImage:
    """One image member: its archive name, split, class folder and encoded bytes."""

    name: str
    split: str
    class_name: str
    data: bytes

    @property
    def source_id(self) -> str:
        """``<split>/<class>/<file>``: the member's name without the archive's shared prefix
        (packaging, as ``git archive`` adds), the id a deletion request may name it by."""
        return "/".join(_parts(self.name)[-3:])


@dataclass
class ArchiveContents:
    """The images of an archive, grouped by split, in archive order."""

    path: Path
    images: dict[str, list[ArchiveImage]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    prefix: str = ""  # the folders above <split>/ shared by every image, "" or ending in "/"

    @property
    def class_names(self) -> list[str]:
        """Sorted class folder names over all splits (label = index in this list)."""
        return sorted({img.class_name for imgs in self.images.values() for img in imgs})


def is_image_name(name: str) -> bool:
    """An image by its suffix; hidden files (``.DS_Store``, ``._x.jpg`` AppleDouble) are not."""
    base = PurePosixPath(name).name
    return not base.startswith(".") and PurePosixPath(base).suffix.lower() in IMAGE_SUFFIXES


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` is unsafe to accept, or None when it is a plain file or directory."""
    name = member.name
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        return "has an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "has a '..' path component"
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "is a device file"
    if member.isfifo():
        return "is a FIFO"
    if not (member.isreg() or member.isdir()):
        return "is not a regular file or directory"
    return None


def safe_members(tar: tarfile.TarFile, path: Path) -> Iterator[tarfile.TarInfo]:
    """The members of ``tar`` (the archive at ``path``), each checked first: one that
    :func:`member_problem` refuses ends the read with a DataError naming it."""
    for member in tar:
        problem = member_problem(member)
        if problem is not None:
            raise DataError(
                f"refusing archive {path}: member {member.name!r} {problem}; an archive must "
                "hold only plain files and directories under relative paths"
            )
        yield member


def _parts(name: str) -> tuple[str, ...]:
    """Path components without empty and ``.`` parts (``./train/x`` == ``train/x``)."""
    return tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))


def open_tar_stream(path: Path) -> tarfile.TarFile:
    """Open a tar(.gz) for one sequential pass; a missing or non-tar file is a DataError."""
    if not path.exists():
        raise DataError(f"archive {path} does not exist")
    if not path.is_file():
        raise DataError(f"archive {path} is not a file")
    try:
        # Stream mode ("r|*"): one sequential pass, gzip or plain tar detected from the header.
        return tarfile.open(path, mode="r|*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable tar(.gz) archive: {exc}") from None


# Defaults of DataParams.max_image_bytes / max_archive_bytes.
MAX_MEMBER_BYTES = 64 << 20
MAX_ARCHIVE_BYTES = 16 << 30


def read_archive(
    path: Path, max_member_bytes: int = MAX_MEMBER_BYTES, max_total_bytes: int = MAX_ARCHIVE_BYTES
) -> ArchiveContents:
    """Read every image of a JPEG-folder archive into memory, refusing unsafe archives.

    Raises :class:`DataError` for a missing or non-tar file, a truncated archive, any unsafe
    member (naming it), an image member over ``max_member_bytes`` or images over
    ``max_total_bytes`` in all (both checked from the member's header, before it is read: a
    small .tar.gz can hold a huge member), images under more than one prefix, or a split
    without images.
    """
    path = Path(path).expanduser()
    contents = ArchiveContents(path=path, images={s: [] for s in SPLITS})
    prefixes: dict[tuple[str, ...], str] = {}
    total = 0
    try:
        with open_tar_stream(path) as tar:
            for member in safe_members(tar, path):
                if not member.isreg():
                    continue
                parts = _parts(member.name)
                if not is_image_name(member.name) or len(parts) < 3 or parts[-3] not in SPLITS:
                    contents.ignored.append(member.name)
                    continue
                prefixes.setdefault(parts[:-3], member.name)
                total += member.size
                if member.size > max_member_bytes or total > max_total_bytes:
                    too_big = member.size > max_member_bytes
                    raise DataError(
                        f"refusing archive {path}: member {member.name!r} is {member.size:,} "
                        f"bytes, over data.max_image_bytes={max_member_bytes:,}"
                        if too_big
                        else f"refusing archive {path}: its images pass "
                        f"data.max_archive_bytes={max_total_bytes:,} bytes at {member.name!r}"
                    )
                handle = tar.extractfile(member)
                if handle is None:  # pragma: no cover - isreg() members always have data
                    raise DataError(f"{path}: cannot read member {member.name!r}")
                contents.images[parts[-3]].append(
                    ArchiveImage(member.name, parts[-3], parts[-2], handle.read())
                )
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable tar(.gz) archive (truncated?): {exc}") from None
    if len(prefixes) > 1:
        examples = ", ".join(repr(name) for name in list(prefixes.values())[:3])
        raise DataError(
            f"{path} holds images under {len(prefixes)} different top-level folders "
            f"(e.g. {examples}); {LAYOUT_HINT}"
        )
    if prefixes:
        contents.prefix = "".join(f"{part}/" for part in next(iter(prefixes)))
    for split, images in contents.images.items():
        if not images:
            raise DataError(f"{path} has no images in a {split}/ folder; {LAYOUT_HINT}")
    if contents.ignored:
        logger.info(
            "%s: ignored %d non-image or out-of-layout files (e.g. %s)",
            path,
            len(contents.ignored),
            contents.ignored[0],
        )
    return contents
