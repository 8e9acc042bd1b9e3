"""The labelled image grid behind the mining contact sheet and the distilled preview: tiles are
upscaled by a whole factor, nearest-neighbour (every source pixel an exact k×k block), in rows
with a caption under each tile and an optional label left of each row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.distill.stage import preview
from selfsup.mining.contact import contact_sheet
from selfsup.mining.graph import Graph
from selfsup.observe.image_grid import labelled_grid, to_hwc_uint8, upscale_factor


def _tiles(n: int, side: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(n)]


def _find(pixels: np.ndarray, tile: np.ndarray, factor: int) -> tuple[int, int] | None:
    """Top-left of the exact ``factor``× nearest-neighbour copy of ``tile`` in ``pixels``."""
    big = tile.repeat(factor, axis=0).repeat(factor, axis=1)
    h, w = big.shape[:2]
    ys, xs = np.nonzero(np.all(pixels == big[0, 0], axis=2))
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        if np.array_equal(pixels[y : y + h, x : x + w], big):
            return y, x
    return None


def _dark(region: Image.Image) -> int:
    """Pixels clearly darker than the white background (text is drawn in black)."""
    return int((np.asarray(region.convert("L")) < 128).sum())


@pytest.mark.parametrize(("side", "factor"), [(32, 3), (16, 6), (96, 1), (100, 1), (40, 3)])
def test_the_factor_is_the_smallest_whole_one_reaching_96_px(side: int, factor: int) -> None:
    assert upscale_factor(side, side) == factor
    assert side * factor >= 96 and (factor == 1 or side * (factor - 1) < 96)


def test_tiles_are_exact_nearest_neighbour_blocks_with_captions_below() -> None:
    tiles = _tiles(5, 32)
    grid = labelled_grid(tiles, [f"#{i}" for i in range(5)], 3)
    pixels = np.asarray(grid)
    places = [_find(pixels, tile, 3) for tile in tiles]  # 32 px tiles became 96 px, 3×3 blocks
    assert None not in places
    assert len({y for y, _ in places}) == 2 and len({x for _, x in places}) == 3  # 3 + 2
    for y, x in places:  # the caption: dark text pixels in the strip under the tile
        assert _dark(grid.crop((x, y + 96, x + 96, y + 96 + 16))) > 5


def test_row_labels_and_title_take_their_own_space() -> None:
    tiles = _tiles(4, 8)
    plain = labelled_grid(tiles, ["a"] * 4, 2)
    labelled = labelled_grid(tiles, ["a"] * 4, 2, row_labels=["transitive", "intra"], title="t")
    assert labelled.width > plain.width and labelled.height > plain.height
    assert _dark(labelled.crop((0, 0, labelled.width - plain.width, labelled.height))) > 10


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="captions"):
        labelled_grid(_tiles(2, 8), ["one"], 2)
    with pytest.raises(ValueError, match="row labels"):
        labelled_grid(_tiles(4, 8), ["x"] * 4, 2, row_labels=["only one"])
    with pytest.raises(ValueError, match="tile 1"):
        labelled_grid([*_tiles(1, 8), *_tiles(1, 9)], ["x", "y"], 2)


def test_float_images_round_like_save_image() -> None:
    images = torch.tensor([0.0, 0.5, 1.0, 0.2]).reshape(1, 1, 2, 2).expand(1, 3, 2, 2)
    out = to_hwc_uint8(images)
    assert out.shape == (1, 2, 2, 3) and out.dtype == np.uint8
    assert out[0, :, :, 0].tolist() == [[0, 128], [255, 51]]


def test_the_distilled_preview_is_64_upscaled_images_8_a_row() -> None:
    images = torch.rand(70, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    sheet = preview(images)
    assert sheet.width >= 8 * 96 and sheet.height >= 8 * 96
    pixels = np.asarray(sheet)
    shown = to_hwc_uint8(images)
    places = [_find(pixels, shown[i], 3) for i in (0, 7, 8, 63)]
    assert None not in places
    assert places[0][0] == places[1][0] < places[2][0] and places[0][1] == places[2][1]
    assert _find(pixels, shown[64], 3) is None  # only the first 64
    assert preview(images[:3]).width < sheet.width  # fewer than 8: no empty columns


def test_the_contact_sheet_shows_each_pair_upscaled_in_rows_by_type(tmp_path: Path) -> None:
    # 5 intra pairs (a full row of 4 and a row of 1), 1 inter pair, 1 transitive pair.
    patches = np.stack(_tiles(14, 32, seed=1))
    pairs = np.arange(14, dtype=np.int64).reshape(7, 2)
    graph = Graph(
        videos=["v"] * 14,
        frames=np.zeros(14, np.int64),
        boxes=np.zeros((14, 4), np.int64),
        tracks=np.zeros(14, np.int64),
        gt_instance=np.zeros(14, np.int64),
        gt_class=np.zeros(14, np.int64),
        edges=pairs,
        edge_types=["intra"] * 5 + ["inter", "transitive"],
    )
    path = tmp_path / "contact_sheet.png"
    assert contact_sheet(graph, patches, path, per_type=8, seed=0) == 7
    with Image.open(path) as sheet:
        sheet.load()
    assert sheet.width >= 8 * 96 and sheet.height >= 4 * 96  # 4 pairs a row, 4 rows
    pixels = np.asarray(sheet.convert("RGB"))
    places = [_find(pixels, patches[node], 3) for node in range(14)]
    assert None not in places, "every patch is on the sheet at 3x"
    for a, b in pairs.tolist():  # a pair's patches sit side by side in one row, A first
        assert places[a][0] == places[b][0] and places[a][1] < places[b][1]
    rows = sorted({y for y, _ in places})
    assert len(rows) == 4, "intra fills two rows; inter and transitive each start their own"
    intra_rows = {places[n][0] for n in range(10)}
    assert intra_rows == set(rows[:2])
    assert places[10][0] == rows[2] and places[12][0] == rows[3]
    for y in rows:  # each row is labelled with its edge type, left of the first patch
        x = min(x for yy, x in places if yy == y)
        assert _dark(sheet.crop((0, y, x, y + 96))) > 10
