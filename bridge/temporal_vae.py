"""Temporal VAE decoding (VideoLDM §3.1.1) with core's Stable Video Diffusion decoder.

VideoLDM fine-tunes the image VAE's decoder with temporal layers so decoded frames do not
flicker. Stable Video Diffusion ships such a decoder for SD's kl-f8 latent space (scale 0.18215,
the same as VideoCrafter1/2); core ``VAELoader`` builds it from its SGM layout
(``decoder.mid.block_1.mix_factor`` → ``temporal_ae.VideoDecoder``, conv-only time mixing).

Core ``VAE.decode`` splits a batch by memory and decodes each split as one clip, which can cut a
clip or join two clips; its OOM fallback decodes frame by frame. Here each clip is decoded as one
clip, or — when it does not fit — in overlapping time chunks blended linearly over the overlap.
There is no per-frame fallback: running out of memory is reported, with what to change.
``vae_options`` is never passed (it crashes in ComfyUI 0.3.75: ``Decoder.forward`` hands the
kwargs on to ``mid.attn_1``).
"""
from __future__ import annotations

import comfy.model_management as model_management
import comfy.utils
import torch

from ..models.videoldm.tiles import axis_starts, axis_weights


class NotTemporalVAE(ValueError):
    pass


def is_temporal(vae) -> bool:
    from comfy.ldm.modules.temporal_ae import VideoDecoder

    return isinstance(getattr(getattr(vae, "first_stage_model", None), "decoder", None), VideoDecoder)


def require_temporal(vae) -> None:
    if not is_temporal(vae):
        kind = type(getattr(getattr(vae, "first_stage_model", None), "decoder", vae)).__name__
        raise NotTemporalVAE(
            f"vae: this VAE's decoder ({kind}) has no temporal layers, so it cannot decode a clip as a clip. Load "
            "the Stable Video Diffusion VAE in its SGM layout with 'Load VAE' (e.g. the VAE saved by VAESave from "
            "an svd*.safetensors checkpoint, or the standalone SVD temporal-decoder VAE); for per-frame decoding "
            "use core 'VAE Decode'.")


#: Memory of one decoded frame of the temporal decoder over core's estimate ``VAE.memory_used_decode`` (written
#: for the plain image KL decoder). benchmarks/temporal_vae_memory.py measured 0.53× (fp32, CPU, latent 8×8 to
#: 32×32, the same at every size: a pure per-pixel cost), so core's estimate as it is covers it with ~1.9× margin
#: for what the CPU does not show (cuDNN workspaces). Over-estimating is not free: a clip split into more
#: chunks is blended over the overlaps instead of decoded as one clip (docs/performance.md).
TEMPORAL_DECODE_FACTOR = 1.0


def decode_bytes_per_frame(vae, samples: torch.Tensor) -> float:
    """Estimated bytes one frame of ``samples`` ``[t, 4, h, w]`` needs in the temporal decoder."""
    return TEMPORAL_DECODE_FACTOR * vae.memory_used_decode(samples.shape, vae.vae_dtype)


def frames_for_budget(budget_bytes: float, bytes_per_frame: float) -> int:
    """The most frames whose estimate stays within ``budget_bytes``; at least 1 (one frame is the smallest
    decode there is; if even that does not fit, decoding reports the out-of-memory error)."""
    return max(1, int(budget_bytes // bytes_per_frame))


def frames_that_fit(vae, samples: torch.Tensor, budget_bytes: float | None = None) -> int:
    """Frames per decode chunk: ``budget_bytes`` (default: the free memory ComfyUI reports once the VAE is
    loaded, i.e. ComfyUI's memory management decides) over the per-frame estimate."""
    per_frame = decode_bytes_per_frame(vae, samples)
    model_management.load_models_gpu([vae.patcher], memory_required=per_frame * samples.shape[0])
    if budget_bytes is None:
        budget_bytes = model_management.get_free_memory(vae.device)
    return frames_for_budget(budget_bytes, per_frame)


def _decode_clip(vae, latent: torch.Tensor) -> torch.Tensor:
    """One clip through the temporal decoder: ``[t, 4, h, w]`` → ``[t, 3, H, W]`` in [0, 1]."""
    z = latent.to(vae.vae_dtype).to(vae.device)
    try:
        out = vae.first_stage_model.decode(z)  # timesteps default to the batch: one clip
    except model_management.OOM_EXCEPTION as error:
        raise MemoryError(f"out of memory decoding {latent.shape[0]} frames as one clip; set chunk_frames lower "
                          f"(each chunk is decoded as a clip and chunks are blended)") from error
    return vae.process_output(out.to(vae.output_device).float())


def decode_clips(vae, samples: torch.Tensor, frames_per_clip: int = 0, chunk_frames: int = 0,
                 chunk_overlap: int = 4, budget_bytes: float | None = None) -> torch.Tensor:
    """Decode ``samples`` (clips of ``frames_per_clip`` frames, 0 = one clip) → IMAGE ``[N, H, W, 3]``.

    ``chunk_frames`` 0 = as many frames as the memory budget holds (``budget_bytes``, default ComfyUI's free
    memory; see :func:`frames_that_fit`), and then the overlap shrinks to fit inside a chunk; a clip longer
    than the chunk is decoded in chunks overlapping by ``chunk_overlap`` frames and blended (weights sum to 1).
    """
    require_temporal(vae)
    total = samples.shape[0]
    clip = frames_per_clip or total
    if total % clip:
        raise ValueError(f"frames_per_clip: the latent has {total} frames, not a whole number of {clip}-frame clips")
    model_management.load_models_gpu([vae.patcher], memory_required=vae.memory_used_decode(samples.shape,
                                                                                            vae.vae_dtype))
    chunk = chunk_frames or frames_that_fit(vae, samples[:clip], budget_bytes)
    if not chunk_frames:
        chunk_overlap = min(chunk_overlap, chunk - 1)
    if chunk < clip and not 0 <= chunk_overlap < chunk:
        raise ValueError(f"chunk_overlap must be smaller than chunk_frames ({chunk}), got {chunk_overlap}")
    bar = comfy.utils.ProgressBar(total)
    pieces = []
    for start in range(0, total, clip):
        latent = samples[start:start + clip]
        if chunk >= clip:
            pieces.append(_decode_clip(vae, latent))
            bar.update(clip)
            continue
        spans = [(a, a + chunk) for a in axis_starts(clip, chunk, chunk_overlap)]
        out = None
        for (a, b), weight in zip(spans, axis_weights(clip, spans, chunk_overlap)):
            decoded = _decode_clip(vae, latent[a:b])
            if out is None:
                out = torch.zeros((clip, *decoded.shape[1:]), dtype=torch.float64, device=decoded.device)
            out[a:b] += decoded.double() * weight.to(decoded.device).view(-1, 1, 1, 1)
            bar.update(b - a)
        pieces.append(out.float())
    return torch.cat(pieces).movedim(1, -1)
