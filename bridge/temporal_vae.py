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


def frames_that_fit(vae, samples: torch.Tensor) -> int:
    """Frames the free memory holds for one decode (core's per-frame estimate, doubled: the estimate
    is the plain KL decoder's and the temporal decoder needs more)."""
    per_frame = 2 * vae.memory_used_decode(samples.shape, vae.vae_dtype)
    model_management.load_models_gpu([vae.patcher], memory_required=per_frame * samples.shape[0])
    return max(1, int(model_management.get_free_memory(vae.device) // per_frame))


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
                 chunk_overlap: int = 4) -> torch.Tensor:
    """Decode ``samples`` (clips of ``frames_per_clip`` frames, 0 = one clip) → IMAGE ``[N, H, W, 3]``.

    ``chunk_frames`` 0 = as many frames as fit; a clip longer than that is decoded in chunks of
    ``chunk_frames`` overlapping by ``chunk_overlap`` frames and blended (weights sum to 1).
    """
    require_temporal(vae)
    total = samples.shape[0]
    clip = frames_per_clip or total
    if total % clip:
        raise ValueError(f"frames_per_clip: the latent has {total} frames, not a whole number of {clip}-frame clips")
    model_management.load_models_gpu([vae.patcher], memory_required=vae.memory_used_decode(samples.shape,
                                                                                            vae.vae_dtype))
    chunk = chunk_frames or frames_that_fit(vae, samples[:clip])
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
