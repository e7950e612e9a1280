"""Run a row-wise function over slices of the leading dimension, to bound the activation peak.

Under inference the UNet's widest intermediates — the feed-forward's ``[tokens, 8·dim]`` projection and the
attention's per-head q/k/v/output — are computed for a slice of independent rows (tokens, or sequences of the
attention batch) at a time and written into one output, so their size no longer grows with frames × pixels.
Rows are independent in these functions, so each row's products are the same as unchunked.
"""
from __future__ import annotations

from collections.abc import Callable

import torch


def rows_per_chunk(budget_elements: int, elements_per_row: int) -> int:
    """Rows whose intermediate of ``elements_per_row`` elements each fits ``budget_elements`` (at least 1)."""
    return max(1, budget_elements // max(1, elements_per_row))


def map_row_chunks(fn: Callable[..., torch.Tensor], rows: int, *tensors: torch.Tensor | None) -> torch.Tensor:
    """``fn(*tensors)`` computed on ``rows``-sized slices of the leading dimension, written into one output.

    Every tensor given is sliced alike (None passes through as None); ``fn`` must map row ``i`` of its inputs to
    row ``i`` of its output.
    """
    total = tensors[0].shape[0]
    out = None
    for start in range(0, total, rows):
        piece = fn(*(t if t is None else t[start:start + rows] for t in tensors))
        if out is None:
            out = piece.new_empty((total, *piece.shape[1:]))
        out[start:start + piece.shape[0]] = piece
    return out
