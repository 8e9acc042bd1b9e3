"""Reading JPEG-folder archives: layout parsing, and refusal of unsafe or unreadable archives."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from conftest import CLASS_COLOURS, ArchiveBuilder, encode_image

from selfsup.data.archive import read_archive
from selfsup.errors import DataError

JPEG = encode_image(CLASS_COLOURS[0], (8, 8), 0, "JPEG")


def write_tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    """A tar.gz of the given members (regular ones get a small JPEG as content)."""
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            if info.isreg():
                info.size = len(JPEG)
                tar.addfile(info, io.BytesIO(JPEG))
            else:
                tar.addfile(info)
    return path


def regular(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


GOOD = [regular("d/train/cat/0.jpg"), regular("d/test/cat/0.jpg")]


def test_reads_layout_with_top_level_folder(make_archive: ArchiveBuilder) -> None:
    path = make_archive(classes=3, train=4, test=2, prefix="CIFAR-10-images-master/")
    contents = read_archive(path)
    assert contents.class_names == ["class0", "class1", "class2"]
    assert {s: len(v) for s, v in contents.images.items()} == {"train": 12, "test": 6}
    first = contents.images["train"][0]
    assert first.name == "CIFAR-10-images-master/train/class0/0000.jpg"
    assert (first.split, first.class_name) == ("train", "class0")
    assert first.data[:2] == b"\xff\xd8"  # the JPEG's bytes, unchanged


@pytest.mark.parametrize("prefix", ["", "./", "a/b/"])
def test_prefix_optional_and_any_depth(make_archive: ArchiveBuilder, prefix: str) -> None:
    contents = read_archive(make_archive(classes=2, train=1, test=1, prefix=prefix))
    assert contents.class_names == ["class0", "class1"]
    assert len(contents.images["train"]) == 2


def test_non_image_files_are_ignored(make_archive: ArchiveBuilder) -> None:
    extra = {"mini-cifar/README.md": b"hi", "mini-cifar/train/class0/.DS_Store": b"x"}
    contents = read_archive(make_archive(extra=extra))
    assert sorted(contents.ignored) == sorted(extra)
    assert len(contents.images["train"]) == 12


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (regular("../evil.jpg"), "'..'"),
        (regular("d/train/../../evil.jpg"), "'..'"),
        (regular("/etc/evil.jpg"), "absolute"),
        (special("d/train/cat/link.jpg", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (special("d/train/cat/hard.jpg", tarfile.LNKTYPE, "d/test/cat/0.jpg"), "hard link"),
        (special("d/dev", tarfile.CHRTYPE), "device"),
        (special("d/blk", tarfile.BLKTYPE), "device"),
        (special("d/fifo", tarfile.FIFOTYPE), "FIFO"),
    ],
)
def test_unsafe_member_refuses_whole_archive(
    tmp_path: Path, member: tarfile.TarInfo, reason: str
) -> None:
    # The unsafe member comes last: images before it must not be returned either.
    path = write_tar(tmp_path / "bad.tar.gz", [*GOOD, member])
    with tarfile.open(path) as tar:  # the name is stored as given (no silent sanitising)
        assert tar.getnames()[-1] == member.name
    with pytest.raises(DataError, match="refusing archive") as err:
        read_archive(path)
    assert repr(member.name) in str(err.value)
    assert reason in str(err.value)


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.tar.gz"
    with pytest.raises(DataError, match="does not exist") as err:
        read_archive(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "content", [b"", b"not a tar archive at all" * 40, b"\x1f\x8b\x08\x00garbage-gzip"]
)
def test_non_tar_file_names_path(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fake.tar.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match="not a readable tar") as err:
        read_archive(path)
    assert str(path) in str(err.value)


def test_truncated_archive(make_archive: ArchiveBuilder, tmp_path: Path) -> None:
    whole = make_archive().read_bytes()
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="not a readable tar") as err:
        read_archive(path)
    assert str(path) in str(err.value)


def test_directory_is_not_an_archive(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a file"):
        read_archive(tmp_path)


def test_split_without_images(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "a.tar.gz", [regular("d/train/cat/0.jpg")])
    with pytest.raises(DataError, match="no images in a test/ folder"):
        read_archive(path)


def test_images_under_two_prefixes(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "a.tar.gz", [*GOOD, regular("other/train/cat/1.jpg")])
    with pytest.raises(DataError, match="2 different top-level folders"):
        read_archive(path)


def _huge_member_archive(path: Path, size: int) -> Path:
    """A .tar.gz whose one image member declares ``size`` bytes of zeros (compresses to ~KB)."""

    class Zeros(io.RawIOBase):
        def __init__(self, n: int) -> None:
            self.left = n

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            n = min(len(buffer), self.left)
            buffer[:n] = bytes(n)
            self.left -= n
            return n

    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for split in ("train", "test"):
            info = tarfile.TarInfo(f"{split}/cat/0.jpg")
            info.size = size
            tar.addfile(info, io.BufferedReader(Zeros(size)))
    return path


def test_an_oversized_member_is_refused_from_its_header_before_it_is_read(
    tmp_path: Path,
) -> None:
    """The reported 4 GiB-in-4 MB bomb, scaled down: refused by its declared size, so memory
    stays flat; the default limit (64 MiB) refuses the real one the same way."""
    path = _huge_member_archive(tmp_path / "bomb.tar.gz", 3 << 20)
    assert path.stat().st_size < 64 << 10
    with pytest.raises(DataError, match=r"member 'train/cat/0\.jpg' is 3,145,728 bytes, over "
                                         r"data\.max_image_bytes=1,048,576"):  # fmt: skip
        read_archive(path, max_member_bytes=1 << 20)


def test_images_over_the_archive_total_are_refused(make_archive: ArchiveBuilder) -> None:
    path = make_archive(train=4, test=2)
    sizes = sum(len(encode_image(CLASS_COLOURS[0], (32, 32), 0, "JPEG")) for _ in range(3))
    with pytest.raises(DataError, match=r"its images pass data\.max_archive_bytes=\d"):
        read_archive(path, max_total_bytes=sizes)
    assert len(read_archive(path).images["train"]) == 12  # the defaults accept it


def test_a_pixel_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    from PIL import Image

    from selfsup.data.sources import decode_image_bytes

    buffer = io.BytesIO()
    Image.new("L", (6000, 5000)).save(buffer, format="PNG")  # 30 MP, ~30 KB
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(DataError, match=r"bomb\.png is 6000×5000 = 30,000,000 pixels, over "
                                         r"data\.max_image_pixels=1,000,000"):  # fmt: skip
        decode_image_bytes(buffer.getvalue(), 32, 1_000_000, "bomb.png")
    small = encode_image(CLASS_COLOURS[1], (40, 30), 1, "JPEG")
    image = decode_image_bytes(small, 32, 1_000_000, "ok.jpg")
    assert image is not None and tuple(image.shape) == (3, 32, 32)


def test_a_folder_image_over_the_byte_limit_is_refused(tmp_path: Path) -> None:
    from selfsup.config import DataParams
    from selfsup.data.sources import load_folder

    for split in ("train", "test"):
        (tmp_path / split / "cat").mkdir(parents=True)
        for i in range(2):
            data = encode_image(CLASS_COLOURS[0], (32, 32), i, "JPEG")
            (tmp_path / split / "cat" / f"{i}.jpg").write_bytes(data)
    (tmp_path / "train" / "cat" / "big.jpg").write_bytes(bytes(5000))
    params = DataParams(source="folder", folder=str(tmp_path), max_image_bytes=4000)
    with pytest.raises(DataError, match=r"big\.jpg is 5,000 bytes, over data\.max_image_bytes"):
        load_folder(params)
