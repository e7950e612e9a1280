"""FreeNoise (Qiu et al. 2023, "FreeNoise: Tuning-Free Longer Video Diffusion via Noise Rescheduling").

Re-implementation of the official code, arthur-qiu/LongerCrafter@2b5e0c9 (reference
``longvideo/README.md`` §2):

* :func:`reschedule_noise` / :func:`rescheduled_source_index`: the initial noise of
  ``scripts/evaluation/inference_freenoise.py:98-102`` (one ``torch.randn`` for all frames, then
  every block of ``stride`` frames from ``window`` on is a ``random.shuffle``d copy of the first
  ``stride`` frames of the window one window back; in place and sequential, so copies cascade).
* :func:`get_views` (``funcs.py:13-20``) and :func:`generate_weight_sequence`
  (``attention_freenoise.py:21-28``).
* :class:`WindowFusedAttention`: the window-fused temporal self-attention of
  ``attention_freenoise.py:87-162`` as an attention override for the UNet's temporal
  ``CrossAttention`` layers (both attn1 and attn2 of every temporal transformer, ``init_attn``
  included). One deliberate difference: when the views are a single window covering every frame
  (T ≤ window) it returns ``None`` so the layer runs its ordinary path; upstream computes
  ``(out·w)/w`` there, which is the same number up to rounding (2.6e-6 on the tiny f32 UNet,
  README §2.3), so "T ≤ window is the plain model" holds exactly.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch

from ..unet.attention import _merge_heads, _split_heads, scaled_attention

#: Official defaults (every run script and ``inference_freenoise.py`` argparse): window 16, stride 4.
DEFAULT_WINDOW = 16
DEFAULT_STRIDE = 4


def check_window(window: int, stride: int) -> None:
    """Validate a (window, stride) pair; raises ``ValueError`` naming the bad value."""
    if int(window) < 1:
        raise ValueError(f"window must be >= 1 frame, got {window}")
    if not 1 <= int(stride) <= int(window):
        raise ValueError(f"stride must be between 1 and the window ({window}), got {stride}")


def shuffled_blocks(frames: int, window: int, stride: int, rng: random.Random) -> list[list[int]]:
    """The ``list_index`` of every ``frame_index`` after ``rng.shuffle`` (one shuffle per block, in order).

    ``frame_index`` runs over ``range(window, frames, stride)`` and ``list_index`` is
    ``range(frame_index - window, frame_index - window + stride)`` (inference_freenoise.py:99-101).
    """
    blocks = []
    for frame_index in range(window, frames, stride):
        list_index = list(range(frame_index - window, frame_index + stride - window))
        rng.shuffle(list_index)
        blocks.append(list_index)
    return blocks


def rescheduled_source_index(frames: int, window: int = DEFAULT_WINDOW, stride: int = DEFAULT_STRIDE,
                             seed: int | None = None, rng: random.Random | None = None
                             ) -> tuple[list[int], list[list[int]]]:
    """``(src_index, shuffled_blocks)``: frame ``j`` of the rescheduled noise is raw frame ``src_index[j]``.

    The permutations come from Python's ``random`` seeded with ``seed`` (upstream: the global
    generator after ``seed_everything(seed)``; ``random.Random(seed)`` yields the same stream), or
    from ``rng``. The sequential in-place copies are replayed on indices, so later blocks copy
    already rescheduled frames exactly as upstream. ``(frames - window) % stride`` must be 0 (upstream
    raises a shape error otherwise); ``frames <= window`` means no shuffling.
    """
    check_window(window, stride)
    if frames > window and (frames - window) % stride:
        raise ValueError(f"FreeNoise needs (frames - window) divisible by stride: frames={frames}, "
                         f"window={window}, stride={stride}; use e.g. {frames + stride - (frames - window) % stride} frames")
    if rng is None:
        rng = random.Random(seed)
    blocks = shuffled_blocks(frames, window, stride, rng)
    src = list(range(frames))
    for k, list_index in enumerate(blocks):
        start = window + k * stride
        copied = [src[i] for i in list_index]  # upstream reads the right-hand side before assigning
        src[start:start + stride] = copied
    return src, blocks


def reschedule_noise(raw: torch.Tensor, src_index: Sequence[int], frame_dim: int) -> torch.Tensor:
    """Gather frames of ``raw`` along ``frame_dim`` by ``src_index`` (a copy; ``raw`` is untouched)."""
    index = torch.as_tensor(list(src_index), dtype=torch.long, device=raw.device)
    return raw.index_select(frame_dim, index)


def freenoise_initial_noise(seed: int, shape: Sequence[int], window: int = DEFAULT_WINDOW,
                            stride: int = DEFAULT_STRIDE, n_samples: int = 1, batch_prompts: int = 1,
                            device="cpu", dtype=torch.float32) -> torch.Tensor:
    """``x_T_total`` of inference_freenoise.py:98-102 for ``seed``: ``[n_samples, batch_prompts, C, T, H, W]``.

    ``shape`` is ``(C, T, H, W)``. One ``randn([n_samples, 1, C, T, H, W])`` from a generator seeded
    with ``seed`` on ``device`` (upstream: the global generator of ``model.device``, CUDA in the
    official runs, right after ``seed_everything``), then the frame gather of
    :func:`rescheduled_source_index` with ``random.Random(seed)``, then ``.repeat`` over the prompts.
    """
    channels, frames, height, width = (int(s) for s in shape)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    raw = torch.randn([n_samples, 1, channels, frames, height, width], generator=generator, device=device,
                      dtype=dtype)
    src, _ = rescheduled_source_index(frames, window, stride, seed=seed)
    return reschedule_noise(raw, src, 3).repeat(1, batch_prompts, 1, 1, 1, 1)


def get_views(video_length: int, window: int = DEFAULT_WINDOW, stride: int = DEFAULT_STRIDE,
              cover_all: bool = False) -> list[tuple[int, int]]:
    """Windows ``[(start, end)]`` of funcs.py:13-20: ``(i·stride, i·stride + window)`` for
    ``i < (T - window)//stride + 1``.

    Upstream returns ``[]`` for T < window and leaves the last ``(T - window) % stride`` frames
    uncovered; with ``cover_all`` a short video gets the single view ``(0, T)`` and an uncovered
    tail gets one more view ``(T - window, T)`` (the pack's MODEL patch uses this so any frame count
    works; for the official frame counts the views are identical).
    """
    check_window(window, stride)
    if video_length < window:
        return [(0, video_length)] if cover_all and video_length > 0 else []
    num_blocks = (video_length - window) // stride + 1
    views = [(i * stride, i * stride + window) for i in range(num_blocks)]
    if cover_all and views[-1][1] < video_length:
        views.append((video_length - window, video_length))
    return views


def generate_weight_sequence(n: int) -> list[int]:
    """Fusion weights of one view (attention_freenoise.py:21-28): even n ``1..n/2, n/2..1``;
    odd n ``1..(n+1)/2-1, (n+1)/2, (n+1)/2-1..1``."""
    if n % 2 == 0:
        half = n // 2
        return list(range(1, half + 1)) + list(range(half, 0, -1))
    peak = (n + 1) // 2
    return list(range(1, peak)) + [peak] + list(range(peak - 1, 0, -1))


@dataclass(frozen=True)
class WindowFusedAttention:
    """Attention override: window-fused self-attention over frames (attention_freenoise.py:87-162).

    Called by a temporal ``CrossAttention`` as ``override(layer, x, mask)`` with ``x`` in the
    ``(b h w) t c`` layout; returns ``to_out(fused)`` or ``None`` (= run the plain layer) when one
    view covers all frames. Per view ``(s, e)``: ordinary attention of ``q[:, s:e]`` on
    ``k[:, s:e], v[:, s:e]`` (relative-position tables built for the window length, a causal mask
    sliced to the window); ``value[:, s:e] += out·w``, ``count[:, s:e] += w`` with
    ``w = generate_weight_sequence(e - s)``; result ``where(count > 0, value / count, value)``.

    ``views`` fixes the windows (the parity fixtures pass upstream's list); otherwise they are
    ``get_views(T, window, stride, cover_all=True)`` for the T the layer sees.
    """

    window: int = DEFAULT_WINDOW
    stride: int = DEFAULT_STRIDE
    views: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self):
        check_window(self.window, self.stride)

    def views_for(self, frames: int) -> list[tuple[int, int]]:
        if self.views is not None:
            return [(int(s), int(e)) for s, e in self.views]
        return get_views(frames, self.window, self.stride, cover_all=True)

    def __call__(self, layer, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor | None:
        frames = x.shape[1]
        views = self.views_for(frames)
        if len(views) == 1 and views[0] == (0, frames):
            return None
        return layer.to_out(fused_self_attention(layer, x, views, mask))


def fused_self_attention(layer, x: torch.Tensor, views: Sequence[tuple[int, int]],
                         mask: torch.Tensor | None = None) -> torch.Tensor:
    """``final_out`` of attention_freenoise.py:95-162 (before ``to_out``), layout ``b n (h d)``."""
    h = layer.heads
    q_all = layer.to_q(x)
    k_all = layer.to_k(x)
    v_all = layer.to_v(x)
    value = torch.zeros_like(k_all)
    count = torch.zeros_like(k_all)
    for start, end in views:
        q = _split_heads(q_all[:, start:end], h)
        k = _split_heads(k_all[:, start:end], h)
        v = _split_heads(v_all[:, start:end], h)
        window_mask = None if mask is None else mask[start:end, start:end]
        if layer.relative_position:
            out = layer._relative_attention(q, k, v, window_mask)
        else:
            out = scaled_attention(q, k, v, layer.scale, window_mask)
        out = _merge_heads(out)
        weight = torch.tensor(generate_weight_sequence(end - start), dtype=torch.float32, device=x.device)
        weight = weight.to(x.dtype)[None, :, None]
        value[:, start:end] += out * weight
        count[:, start:end] += weight
    return torch.where(count > 0, value / count, value)
