"""FreeNoise and FIFO-Diffusion inside ComfyUI (math in ``models/longvideo``).

- :class:`FreeNoiseVideoNoise`: a NOISE for SamplerCustomAdvanced, the official rescheduled ``x_T`` for a
  seed, batch-as-frames.
- :func:`patch_freenoise_attention`: a MODEL clone whose temporal self-attentions are window-fused; the
  override rides in ``transformer_options`` and reaches the UNet through ``ComfyVideoCrafterUNet.forward``.
- :class:`FifoSampler`: a ``comfy.samplers.Sampler`` that runs the whole diagonal denoising loop with the
  guider ComfyUI hands it (conds, CFG, ControlNet and model patches included), from the clean base clip
  given as the latent image, and returns the N-frame video.
"""
from __future__ import annotations

import comfy.samplers
import torch
from einops import rearrange

from ..models.longvideo import fifo as F
from ..models.longvideo import freenoise as FN
from ..models.sampling import ddim as D
from .ddim import _tables
from . import vocabulary as V
from .model import VideoCrafterModel


# ---------------------------------------------------------------------------------------------- FreeNoise
class FreeNoiseVideoNoise:
    """NOISE: ``torch.randn([1, 1, C, T, h, w])`` from ``seed`` then FreeNoise's frame shuffles
    (``random.Random(seed)``), as inference_freenoise.py:98-102, laid out ``[T, C, h, w]``.

    The draw is made on the CPU generator (the official scripts draw on CUDA: same permutations, other
    values). With the pack's VideoCrafter DDIM sampler at the same seed the per-step noise continues the
    same stream, as upstream.
    """

    def __init__(self, seed: int, window: int = FN.DEFAULT_WINDOW, stride: int = FN.DEFAULT_STRIDE):
        FN.check_window(window, stride)
        self.seed = int(seed)
        self.window = int(window)
        self.stride = int(stride)

    def generate_noise(self, input_latent) -> torch.Tensor:
        latent = input_latent["samples"]
        frames, channels, height, width = latent.shape
        try:
            x_T = FN.freenoise_initial_noise(self.seed, (channels, frames, height, width), self.window, self.stride)
        except ValueError as exc:
            raise ValueError(f"FreeNoise noise: {exc} (the latent has {frames} frames; set the video length or "
                             f"the node's window/stride)") from None
        return rearrange(x_T[0, 0], "c t h w -> t c h w").to(latent.dtype)


def patch_freenoise_attention(model, window: int, stride: int):
    """A clone of ``model`` whose temporal self-attentions are window-fused (FreeNoise §3.2)."""
    if not isinstance(getattr(model, "model", None), VideoCrafterModel):
        raise ValueError("FreeNoise attention: 'model' is not a VideoCrafter model; load it with the "
                         "VideoCrafter checkpoint loader of this pack")
    FN.check_window(window, stride)
    patched = model.clone()
    options = patched.model_options.setdefault("transformer_options", {})
    options[V.TEMPORAL_ATTENTION] = FN.WindowFusedAttention(int(window), int(stride))
    return patched


# ---------------------------------------------------------------------------------------------- FIFO
def fifo_arrays_for_model(model_sampling, settings: F.FifoSettings) -> D.DDIMArrays:
    """The FIFO ladder (linspace, no +1) on the model's own ᾱ table, in the original's dtypes."""
    acp = _tables(model_sampling)[0].float().cpu()
    return F.fifo_ddim_arrays_from_table(acp, settings.num_steps, settings.eta)


def fifo_sigmas(model_sampling, settings: F.FifoSettings) -> torch.Tensor:
    """The FIFO ladder as SIGMAS (descending, ending at 0): ``transformer_options['sample_sigmas']`` for patches."""
    ts = F.fifo_ddim_timesteps(settings.num_steps, len(model_sampling.sigmas)).flip(0)
    return torch.cat([model_sampling.sigmas.cpu()[ts].float(), torch.zeros(1)])


class FifoSampler(comfy.samplers.Sampler):
    """Diagonal denoising (FIFO-Diffusion) as a SAMPLER run by ComfyUI's guider.

    ``latent_image`` is the clean base clip ``[f, C, h, w]`` (the window length is its frame count);
    the noise argument is ignored. Every window is one guided model call with a timestep per frame:
    ``y = x_t / f_t``, σ' per frame, ``ε = (y − D) / σ'``. Random draws come from a CPU generator seeded
    with ``seed`` in the official order. ``on_frame(i, total, frame)`` after each popped frame
    (progress and preview). Returns ``[N, C, h, w]`` in the model's latent space.
    """

    def __init__(self, settings: F.FifoSettings, seed: int, on_frame=None, draw: F.Draw | None = None):
        self.settings = settings
        self.seed = int(seed)
        self.on_frame = on_frame
        self.draw = draw  # replaces the seeded generator (replays of recorded draws)

    def max_denoise(self, model_wrap, sigmas):
        return False

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        settings = self.settings
        if latent_image is None or latent_image.shape[0] != settings.video_length:
            raise ValueError(f"FIFO: the base clip must have {settings.video_length} frames")
        model_sampling = model_wrap.inner_model.model_sampling
        arrays = fifo_arrays_for_model(model_sampling, settings)
        _, _, input_scale = _tables(model_sampling)
        table = model_sampling.sigmas
        device = latent_image.device

        def eps_fn(latents: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
            x = rearrange(latents, "1 c t h w -> t c h w")
            ts = ts.to(table.device)
            sigma = table[ts].to(device=device, dtype=x.dtype)
            y = x / input_scale.to(table.device)[ts].to(device=device, dtype=x.dtype).reshape(-1, 1, 1, 1)
            denoised = model_wrap(y, sigma, **extra_args)
            eps = (y - denoised) / sigma.reshape(-1, 1, 1, 1)
            return rearrange(eps, "t c h w -> 1 c t h w")

        draw = self.draw or F.generator_draws(torch.Generator(device="cpu").manual_seed(self.seed))
        total = settings.iterations

        def on_pop(i, frame, queue):
            if self.on_frame is not None:
                self.on_frame(i, total, rearrange(frame, "1 c t h w -> t c h w"))

        base = rearrange(latent_image.float(), "t c h w -> 1 c t h w")
        video = F.fifo_sample(eps_fn, base, arrays, settings, draw, on_pop=on_pop)
        return rearrange(video, "1 c t h w -> t c h w")
