"""Overlapping spatial tiles with seamless blend weights (VideoLDM's patch-wise upsampler, §3.4).

VideoLDM runs its video upsampler on patches so memory stays bounded at high resolution. Here a
clip is re-denoised tile by tile (every frame of a tile together, so the temporal layers still see
the whole clip) and the tiles are blended with weights that ramp linearly across each overlap and
are normalised to sum to 1 at every pixel. A denoiser that acts per pixel therefore gives the same
result tiled and untiled, and a real one meets its neighbours without seams.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

Tile = tuple[int, int, int, int]  # y0, y1, x0, x1 (end exclusive)


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start of each tile along one axis: evenly spread, first at 0, last ending at ``length``,
    neighbours overlapping by at least ``overlap``."""
    if tile >= length:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be at least 0 and smaller than the tile ({tile}), got {overlap}")
    count = math.ceil((length - overlap) / (tile - overlap))
    count = max(count, 2)
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_grid(height: int, width: int, tile_height: int, tile_width: int, overlap: int) -> list[Tile]:
    """Tiles covering a ``height × width`` plane, row by row."""
    th, tw = min(tile_height, height), min(tile_width, width)
    return [(y, y + th, x, x + tw) for y in axis_starts(height, th, overlap) for x in axis_starts(width, tw, overlap)]


def _ramp(start: int, end: int, length: int, ramp: int) -> torch.Tensor:
    """1 inside, rising linearly over ``ramp`` pixels at every side that has a neighbour."""
    position = torch.arange(start, end, dtype=torch.float64)
    weight = torch.ones(end - start, dtype=torch.float64)
    if ramp > 0 and start > 0:
        weight = torch.minimum(weight, (position - start + 0.5) / ramp)
    if ramp > 0 and end < length:
        weight = torch.minimum(weight, (end - position - 0.5) / ramp)
    return weight


def axis_weights(length: int, spans: list[tuple[int, int]], overlap: int) -> list[torch.Tensor]:
    """1-D version (e.g. time chunks): one float64 weight vector per span, summing to 1 everywhere."""
    raw = [_ramp(a, b, length, overlap) for a, b in spans]
    total = torch.zeros(length, dtype=torch.float64)
    for (a, b), weight in zip(spans, raw):
        total[a:b] += weight
    if bool((total <= 0).any()):
        raise ValueError("the spans leave positions uncovered")
    return [weight / total[a:b] for (a, b), weight in zip(spans, raw)]


def blend_weights(height: int, width: int, tiles: list[Tile], overlap: int) -> list[torch.Tensor]:
    """One ``[y1−y0, x1−x0]`` float64 weight map per tile; over all tiles they sum to 1 per pixel."""
    raw = [torch.outer(_ramp(y0, y1, height, overlap), _ramp(x0, x1, width, overlap)) for y0, y1, x0, x1 in tiles]
    total = torch.zeros(height, width, dtype=torch.float64)
    for (y0, y1, x0, x1), weight in zip(tiles, raw):
        total[y0:y1, x0:x1] += weight
    if bool((total <= 0).any()):
        raise ValueError("the tiles leave pixels uncovered")
    return [weight / total[y0:y1, x0:x1] for (y0, y1, x0, x1), weight in zip(tiles, raw)]


def tiled_apply(function: Callable[[Tile], torch.Tensor], like: torch.Tensor, tile_height: int, tile_width: int,
                overlap: int, on_tile: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Blend ``function(tile)`` (a ``[..., y1−y0, x1−x0]`` result for that crop) over all tiles.

    ``like`` gives the output's shape, dtype and device; only one tile's result is alive at a time.
    """
    height, width = like.shape[-2:]
    tiles = tile_grid(height, width, tile_height, tile_width, overlap)
    weights = blend_weights(height, width, tiles, overlap)
    out = torch.zeros(like.shape, dtype=torch.float64, device=like.device)
    for index, (tile, weight) in enumerate(zip(tiles, weights)):
        y0, y1, x0, x1 = tile
        out[..., y0:y1, x0:x1] += function(tile).to(out) * weight.to(out.device)
        if on_tile is not None:
            on_tile(index, len(tiles))
    return out.to(like.dtype)
