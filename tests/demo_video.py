"""Generate videos with the demonstration model in-process, exactly as the example workflow does.

Quality tests of every block use this: the pack's loader reads ``devkit/demo_model``'s checkpoint
(as a released ``model.ckpt``), core ``CLIPTextEncode`` logic encodes the caption, the fps
condition is set as ``VideoCrafterVideoConditioning`` sets it, core ``CFGGuider`` (or any GUIDER
passed in) guides the pack's DDIM SAMPLER over its SIGMAS from the original-order noise, and core's
VAE decodes. ``temporal=False`` switches every temporal layer off (the ``transformer_options`` key
read by ``ComfyVideoCrafterUNet``), the ablation that shows what the temporal layers do.

Needs ComfyUI importable (the ``comfy_path`` fixture); measurements are in ``devkit.motion_metrics``.
"""
from __future__ import annotations

import functools

import torch

from videocrafter_suite.devkit.demo_recipe import DEMO_CHECKPOINT, FPS, SAMPLING


@functools.lru_cache(maxsize=1)
def load_demo_model():
    """The demonstration checkpoint through the pack's loader (cached per process)."""
    from videocrafter_suite.bridge.checkpoint import load_videocrafter_checkpoint

    return load_videocrafter_checkpoint(str(DEMO_CHECKPOINT))


def encode(clip, text: str) -> list:
    """CONDITIONING of ``text`` with the fps condition (CLIPTextEncode + VideoCrafterVideoConditioning)."""
    import node_helpers

    conditioning = clip.encode_from_tokens_scheduled(clip.tokenize(text))
    return node_helpers.conditioning_set_values(conditioning, {"fps": FPS})


def temporal_off(model):
    """A clone of MODEL whose every forward pass skips the temporal layers."""
    from videocrafter_suite.bridge.guiders import temporal_off_options

    clone = model.clone()
    clone.model_options = temporal_off_options(clone.model_options)
    return clone


def generate(caption: str, seed: int, *, temporal: bool = True, cfg: float | None = None, steps: int | None = None,
             guider_factory=None, negative: str = "") -> torch.Tensor:
    """One 16-frame 64x64 video ``[T, H, W, 3]`` in [0, 1] for ``caption`` and ``seed``.

    ``guider_factory(model, positive, negative)`` may return another GUIDER (e.g. temporal guidance).
    """
    from videocrafter_suite.bridge.ddim import OriginalOrderVideoNoise, VideoCrafterDDIM, ddim_sigmas

    loaded = load_demo_model()
    model = loaded.model if temporal else temporal_off(loaded.model)
    if guider_factory is None:
        guider = _guider(model, caption, negative, cfg)
    else:
        guider = guider_factory(model, encode(loaded.clip, caption), encode(loaded.clip, negative))
    latent = torch.zeros([SAMPLING["frames"], 4, SAMPLING["height"] // 8, SAMPLING["width"] // 8])
    noise = OriginalOrderVideoNoise(seed).generate_noise({"samples": latent})
    sigmas = ddim_sigmas(model.get_model_object("model_sampling"), steps or SAMPLING["steps"])
    with torch.inference_mode():
        samples = guider.sample(noise, latent, VideoCrafterDDIM(eta=SAMPLING["eta"]), sigmas, disable_pbar=True,
                                seed=seed)
        return loaded.vae.decode(samples).float().cpu()


def _guider(model, caption: str, negative: str = "", cfg: float | None = None):
    """Core's CFGGuider over the caption and the negative (CLIPTextEncode + fps condition)."""
    import comfy.samplers

    clip = load_demo_model().clip
    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(encode(clip, caption), encode(clip, negative))
    guider.set_cfg(SAMPLING["cfg"] if cfg is None else cfg)
    return guider


def interpolate_keyframes(caption: str, keyframe_images: torch.Tensor, factor: int, seed: int, *,
                          temporal: bool = True, steps: int | None = None) -> torch.Tensor:
    """VideoLDM keyframe interpolation as the example workflow wires it: ``VideoCrafterKeyframeInterpolation``
    (keyframe images encoded by the model's VAE, held by ``noise_mask``) then the Keyframe Sampler's
    window-by-window sampling; decoded ``[k·T, H, W, 3]``."""
    from videocrafter_suite.bridge.ddim import OriginalOrderVideoNoise, VideoCrafterDDIM, ddim_sigmas
    from videocrafter_suite.bridge.videoldm import sample_keyframe_windows
    from videocrafter_suite.nodes.videoldm import VideoCrafterKeyframeInterpolation

    loaded = load_demo_model()
    model = loaded.model if temporal else temporal_off(loaded.model)
    latent = VideoCrafterKeyframeInterpolation.execute(factor=factor, init="linear", keyframe_images=keyframe_images,
                                                       vae=loaded.vae).result[0]
    sigmas = ddim_sigmas(model.get_model_object("model_sampling"), steps or SAMPLING["steps"])
    with torch.inference_mode():
        samples = sample_keyframe_windows(_guider(model, caption), VideoCrafterDDIM(eta=SAMPLING["eta"]), sigmas,
                                          OriginalOrderVideoNoise(seed), latent, window=SAMPLING["frames"])
        return loaded.vae.decode(samples).float().cpu()


def generate_freenoise(caption: str, seed: int, frames: int, *, window: int = 16, stride: int = 4,
                       temporal: bool = True, steps: int | None = None) -> torch.Tensor:
    """A FreeNoise long video (``VideoCrafterFreeNoiseNoise`` + ``VideoCrafterFreeNoiseAttention``) of
    ``frames`` frames, decoded ``[frames, H, W, 3]``."""
    from videocrafter_suite.bridge.ddim import VideoCrafterDDIM, ddim_sigmas
    from videocrafter_suite.bridge.longvideo import FreeNoiseVideoNoise, patch_freenoise_attention

    loaded = load_demo_model()
    model = patch_freenoise_attention(loaded.model if temporal else temporal_off(loaded.model), window, stride)
    latent = torch.zeros([frames, 4, SAMPLING["height"] // 8, SAMPLING["width"] // 8])
    noise = FreeNoiseVideoNoise(seed, window, stride).generate_noise({"samples": latent})
    sigmas = ddim_sigmas(model.get_model_object("model_sampling"), steps or SAMPLING["steps"])
    with torch.inference_mode():
        samples = _guider(model, caption).sample(noise, latent, VideoCrafterDDIM(eta=SAMPLING["eta"]), sigmas,
                                                 disable_pbar=True, seed=seed)
        return loaded.vae.decode(samples).float().cpu()


def extend_by_prediction(caption: str, context_images: torch.Tensor, seed: int, *, segments: int = 1,
                         segment_frames: int = 16, temporal: bool = True, steps: int | None = None) -> torch.Tensor:
    """VideoLDM long-video prediction (``VideoCrafterExtendByPrediction``, blend "hold"): the context images
    are encoded by the model's VAE and every segment is predicted from the last ``len(context_images)``
    frames so far; decoded, context frames included."""
    from videocrafter_suite.bridge.ddim import OriginalOrderVideoNoise, VideoCrafterDDIM, ddim_sigmas
    from videocrafter_suite.nodes.videoldm import VideoCrafterExtendByPrediction

    loaded = load_demo_model()
    model = loaded.model if temporal else temporal_off(loaded.model)
    sigmas = ddim_sigmas(model.get_model_object("model_sampling"), steps or SAMPLING["steps"])
    with torch.inference_mode():
        context = loaded.vae.encode(context_images[:, :, :, :3])
        latent = VideoCrafterExtendByPrediction.execute(
            noise=OriginalOrderVideoNoise(seed), guider=_guider(model, caption),
            sampler=VideoCrafterDDIM(eta=SAMPLING["eta"]), sigmas=sigmas, latent_image={"samples": context},
            segments=segments, segment_frames=segment_frames, context_frames=context.shape[0],
            blend="hold").result[0]
        return loaded.vae.decode(latent["samples"]).float().cpu()
