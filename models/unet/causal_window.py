"""Make-Your-Video's causal temporal attention mask: a 16-frame sliding causal window.

``TemporalTransformer.__init__`` (Make-Your-Video@9817461 ``lvdm/modules/attention.py:263-271``) builds one
``[1, 64, 64]`` float mask (``temporal_length_max = 64``)::

    for i in range(64 // causal_block_size):
        mask[:, i, max(0, i - 15) : i + 1] = 1

so frame ``i`` attends to frames ``max(0, i-15) .. i``: lower-triangular for the first 16 frames, then a
16-wide window that slides (the width is hard-coded, independent of ``temporal_length`` and of
``causal_block_size``; with a block size > 1 the rows past ``64 // causal_block_size`` stay empty, as upstream).
The forward slices ``mask[:, :T, :T]`` (302-305) and the attention fills disallowed logits with
``-finfo.max`` *after* the relative-position term and before the softmax (87-94). More than 64 frames is
impossible upstream; here it is a clear error.
"""
from __future__ import annotations

import torch

#: ``temporal_length_max`` of the original TemporalTransformer (attention.py:241).
MAX_FRAMES = 64
#: The hard-coded window: the current frame and the 15 before it.
WINDOW = 16


def sliding_causal_mask(frames: int, causal_block_size: int = 1, device=None) -> torch.Tensor:
    """Boolean ``[frames, frames]`` mask, True where frame ``i`` (row) may attend to frame ``j`` (column)."""
    frames, causal_block_size = int(frames), int(causal_block_size)
    if causal_block_size < 1:
        raise ValueError(f"causal_block_size must be >= 1, got {causal_block_size}")
    if not 1 <= frames <= MAX_FRAMES:
        raise ValueError(f"Make-Your-Video's causal temporal attention handles 1..{MAX_FRAMES} frames "
                         f"(its mask is {MAX_FRAMES}x{MAX_FRAMES}); got {frames}. Sample fewer frames per video.")
    rows = torch.arange(frames, device=device)[:, None]
    cols = torch.arange(frames, device=device)[None, :]
    filled = rows < MAX_FRAMES // causal_block_size
    return filled & (cols <= rows) & (cols > rows - WINDOW)
