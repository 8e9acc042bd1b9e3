"""Small images tiled into a labelled grid a person can judge: the one way the project shows
images it produced (the mining contact sheet, the distilled preview).

Each tile is upscaled by a whole factor with nearest-neighbour resampling (a 32 px patch
becomes 96 px of crisp 3×3 blocks: no blur invented between pixels), gets a caption under it,
and rows may carry a label on their left (e.g. the edge type of a mined pair).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from selfsup.store import atomic_write_bytes

# Tiles are upscaled to at least this many pixels on their longer side.
MIN_TILE = 96
_PAD = 6
_FONT_SIZE = 13


def to_hwc_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N,3,H,W]`` float in [0,1] (or uint8) → ``[N,H,W,3]`` uint8, rounded as
    ``torchvision.utils.save_image`` does."""
    if images.dtype != torch.uint8:
        images = images.detach().float().mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()


def upscale_factor(height: int, width: int, minimum: int = MIN_TILE) -> int:
    """The smallest whole factor that makes the longer side at least ``minimum`` pixels."""
    return max(1, math.ceil(minimum / max(height, width, 1)))


def labelled_grid(
    tiles: Sequence[np.ndarray] | np.ndarray,
    captions: Sequence[str],
    columns: int,
    *,
    row_labels: Sequence[str] | None = None,
    title: str = "",
    minimum: int = MIN_TILE,
) -> Image.Image:
    """Tiles (each ``[H,W,3]`` uint8, all one size) in rows of ``columns``, a caption under each.

    ``row_labels`` (one per row) are written in a column on the left; ``title`` above the grid.
    With no tiles the image holds the title (or nothing) only.
    """
    if len(captions) != len(tiles):
        raise ValueError(f"{len(tiles)} tiles but {len(captions)} captions")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    rows = math.ceil(len(tiles) / columns)
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"{rows} rows but {len(row_labels)} row labels")
    font = ImageFont.load_default(size=_FONT_SIZE)
    h, w = (tiles[0].shape[0], tiles[0].shape[1]) if len(tiles) else (0, 0)
    factor = upscale_factor(h, w, minimum)
    tile_h, tile_w = h * factor, w * factor
    text_h = _FONT_SIZE + 4
    label_w = (
        max((_text_width(font, label) for label in row_labels), default=0) + 2 * _PAD
        if row_labels
        else 0
    )
    title_h = text_h + _PAD if title else 0
    cell_w, cell_h = tile_w + _PAD, tile_h + text_h + _PAD
    width = max(label_w + columns * cell_w + _PAD, _text_width(font, title) + 2 * _PAD)
    height = title_h + rows * cell_h + _PAD
    sheet = Image.new("RGB", (max(width, 1), max(height, 1)), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((_PAD, _PAD // 2), title, fill="black", font=font)
    for i, (tile, caption) in enumerate(zip(tiles, captions, strict=True)):
        if tile.shape[:2] != (h, w):
            raise ValueError(f"tile {i} is {tile.shape[:2]}, expected {(h, w)}")
        row, col = divmod(i, columns)
        x, y = label_w + _PAD + col * cell_w, title_h + _PAD + row * cell_h
        image = Image.fromarray(np.ascontiguousarray(tile, dtype=np.uint8), "RGB")
        sheet.paste(image.resize((tile_w, tile_h), Image.Resampling.NEAREST), (x, y))
        draw.text((x, y + tile_h + 2), caption, fill="black", font=font)
    for row, label in enumerate(row_labels or []):
        y = title_h + _PAD + row * cell_h + (tile_h - _FONT_SIZE) // 2
        draw.text((_PAD, y), label, fill="black", font=font)
    return sheet


def _text_width(font: ImageFont.ImageFont | ImageFont.FreeTypeFont, text: str) -> int:
    left, _, right, _ = font.getbbox(text) if text else (0, 0, 0, 0)
    return math.ceil(right - left)


def write_png(image: Image.Image, path: Path) -> None:
    """Save ``image`` as a PNG at ``path`` (atomically)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())
