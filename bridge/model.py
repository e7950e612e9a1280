"""VideoCrafter as a native ComfyUI model: ``BASE`` config, ``BaseModel`` and ``ModelSampling``.

Following how core ships SVD (``comfy/model_base.py: SVD_img2vid``), a VideoCrafter MODEL is a
``ModelPatcher`` around :class:`VideoCrafterModel`; the latent is batch-as-frames
``[T, 4, h, w]`` (one video per latent batch, as core SVD) and the frame count rides as the
``num_video_frames`` constant condition. fps, image tokens and style inputs travel in CONDITIONING (the keys
of :mod:`.vocabulary`) and are turned into model inputs by :meth:`VideoCrafterModel.extra_conds`. An I2V
checkpoint gives :class:`VideoCrafterI2VModel`, which also owns the Resampler.

The scale schedule of VC2/I2V/VC1-1024 (``use_scale``: the training forward process is
``x_t = sqrt(ᾱ_t)·s_t·x0 + sqrt(1-ᾱ_t)·ε``, ddpm3d.py:412-417) is expressed as a
:class:`VideoCrafterModelSampling`: with ``y = x_t / (sqrt(ᾱ_t)·s_t)`` one gets
``y = x0 + σ'_t·ε`` with ``σ'_t = sqrt((1-ᾱ_t)/ᾱ_t) / s_t``, i.e. an ordinary EPS model on the
σ' ladder, so every core sampler and scheduler honours the schedule.
"""
from __future__ import annotations

import logging

import comfy.conds
import comfy.model_base
import comfy.model_sampling
import comfy.ops
import comfy.supported_models_base
import torch

from ..models.checkpoints.layout import IMAGE_PROJECTION_PREFIX, UNET_PREFIX, CheckpointLayoutError, VariantInfo, \
    take_prefix
from ..models.checkpoints.safe_io import require_exact_keys
from ..models.image.resampler import Resampler, ResamplerConfig, detect_resampler_config
from ..models.sampling.schedule import VideoCrafterSchedule
from ..models.unet.unet3d import DEFAULT_FPS, UNet3DConfig, VideoCrafterUNet
from . import vocabulary as V
from .model_checks import check_sampling_call
from .preview import VideoLatentFormat
from .structure import structure_concat

#: Conditions core may add for other consumers (ControlNet's own text context): accepted, not used by the UNet.
_CORE_CONDS_FOR_OTHERS = frozenset({"crossattn_controlnet"})


class ComfyVideoCrafterUNet(VideoCrafterUNet):
    """Our pure-PyTorch UNet with the constructor and forward signature ComfyUI calls.

    ``BaseModel`` builds ``unet_model(**unet_config, device=..., operations=...)`` and calls
    ``diffusion_model(x, t, context=..., control=..., transformer_options=..., **extra_conds)``.
    ``control`` (core ControlNet / T2I-Adapter residuals; experimental for these UNets, docs/depth_estimation.md)
    goes to the UNet's ``residuals``.
    """

    def __init__(self, *, videocrafter_config: UNet3DConfig, dtype=None, device=None, operations=None, **unused):
        super().__init__(videocrafter_config, operations=operations, dtype=dtype, device=device)
        self.dtype = dtype if dtype is not None else torch.float32

    def forward(self, x, timesteps, context=None, control=None, transformer_options=None,
                num_video_frames=None, fps=None, image_context=None, image_scale=None,
                temporal_enabled=True, style_context=None, style_scales=None, style_weight=1.0,
                style_scaled_logits=True, **others):
        unknown = sorted(set(others) - _CORE_CONDS_FOR_OTHERS)
        if unknown:
            # A condition nobody reads is a silent no-op for the user: refuse it loudly instead.
            raise TypeError(f"VideoCrafter UNet got unknown inputs {unknown}; the model conditions it understands are "
                            f"{sorted(V.UNET_INPUT_OF.values())} (see bridge/vocabulary.py).")
        frames = int(num_video_frames) if num_video_frames is not None else x.shape[0]
        if x.shape[0] % frames:
            raise ValueError(f"latent batch {x.shape[0]} is not a whole number of {frames}-frame videos")
        if transformer_options and transformer_options.get(V.TEMPORAL_OFF, False):
            temporal_enabled = False
        # FreeNoise window fusion (bridge/longvideo.py): an override for every temporal self-attention.
        temporal_attention = (transformer_options or {}).get(V.TEMPORAL_ATTENTION)
        return super().forward(x, timesteps, context=context, fps=DEFAULT_FPS if fps is None else fps,
                               num_frames=frames, image_context=image_context, image_scale=image_scale,
                               temporal_enabled=temporal_enabled, style_context=style_context,
                               style_scales=style_scales, style_weight=style_weight,
                               style_scaled_logits=style_scaled_logits, temporal_attention=temporal_attention,
                               residuals=control)


class VideoCrafterModelSampling(comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.EPS):
    """EPS sampling on the σ' = σ/s_t ladder (see the module docstring for the derivation).

    ``calculate_input`` turns the sampler's ``y`` back into the model's ``x_t = y·sqrt(ᾱ_t)·s_t``
    at the (integer) timestep of σ'; ``noise_scaling`` with ``max_denoise`` starts from
    ``x_T ~ N(0, I)`` in the model's own space, as the original sampler does
    (``ddim.py:144-147``); ``inverse_noise_scaling`` returns ``x_t`` at the last sigma, so a
    schedule that ends at t = 0 (the original DDIM's last step uses ``ᾱ_0``) yields exactly the
    original's final latent, and one that ends at σ' = 0 yields ``x0``.
    """

    def __init__(self, schedule: VideoCrafterSchedule):
        torch.nn.Module.__init__(self)
        self.sigma_data = 1.0
        self.num_timesteps = schedule.timesteps
        self.linear_start = schedule.linear_start
        self.linear_end = schedule.linear_end
        self.zsnr = False
        self.schedule = schedule
        steps = torch.arange(schedule.timesteps)
        self.register_buffer("alphas_cumprod", schedule.alphas_cumprod.float())
        scale = schedule.scale_arr[:schedule.timesteps].float() if schedule.use_scale else None
        self.scale_per_timestep = scale  # None without use_scale (s_t = 1)
        self.register_buffer("input_scale", schedule.signal_scale(steps).float())
        self.set_sigmas(schedule.sigmas().float())

    def _input_scale(self, sigma, ndim):
        factor = self.input_scale.to(sigma.device)[self.timestep(sigma).long()].to(sigma.dtype)
        return comfy.model_sampling.reshape_sigma(factor, ndim)

    def calculate_input(self, sigma, noise):
        return noise * self._input_scale(sigma, noise.ndim)

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        if max_denoise:
            noise = noise / self._input_scale(sigma.reshape(-1)[:1], noise.ndim)
        else:
            noise = noise * comfy.model_sampling.reshape_sigma(sigma, noise.ndim)
        return noise + latent_image

    def inverse_noise_scaling(self, sigma, latent):
        if float(sigma.reshape(-1)[0]) == 0.0:
            return latent
        return latent * self._input_scale(sigma.reshape(-1)[:1], latent.ndim)


class VideoCrafterModel(comfy.model_base.BaseModel):
    """``BaseModel`` for every VideoCrafter variant; extra inputs come from CONDITIONING keys."""

    def __init__(self, model_config, model_type=comfy.model_base.ModelType.EPS, device=None):
        super().__init__(model_config, model_type, device=device, unet_model=ComfyVideoCrafterUNet)
        self.model_sampling = VideoCrafterModelSampling(model_config.schedule)

    def extra_conds(self, **kwargs):
        """CONDITIONING keys (``bridge/vocabulary.py``) → UNet inputs; per-frame counts from the latent."""
        check_sampling_call(self, kwargs)  # what this model can take, before the first step (bridge/model_checks.py)
        out = super().extra_conds(**kwargs)
        noise = kwargs.get("noise")
        out[V.NUM_VIDEO_FRAMES] = comfy.conds.CONDConstant(int(noise.shape[0]))
        fps = kwargs.get(V.FPS, None)
        if fps is not None:
            out[V.UNET_INPUT_OF[V.FPS]] = comfy.conds.CONDConstant(int(fps))
        image_context = kwargs.get(V.IMAGE_CONTEXT, None)
        if image_context is not None:
            out[V.UNET_INPUT_OF[V.IMAGE_CONTEXT]] = comfy.conds.CONDRegular(image_context)
        structure = structure_concat(self.model_config.unet_config_object, kwargs.get(V.STRUCTURE_DEPTH, None), noise)
        if structure is not None:  # Make-Your-Video depth channel (bridge/structure.py)
            out[V.CONCAT_INPUT] = structure
        style_context = kwargs.get(V.STYLE_CONTEXT, None)
        if style_context is not None:  # StyleCrafter (bridge/style.py)
            out[V.UNET_INPUT_OF[V.STYLE_CONTEXT]] = comfy.conds.CONDRegular(style_context)
            scales = kwargs.get(V.STYLE_SCALES, None)
            if scales is not None:
                out[V.UNET_INPUT_OF[V.STYLE_SCALES]] = comfy.conds.CONDRegular(scales)
            out[V.UNET_INPUT_OF[V.STYLE_WEIGHT]] = comfy.conds.CONDConstant(float(kwargs.get(V.STYLE_WEIGHT, 1.0)))
            out[V.UNET_INPUT_OF[V.STYLE_SCALED_LOGITS]] = comfy.conds.CONDConstant(
                bool(kwargs.get(V.STYLE_SCALED_LOGITS, True)))
        return out


class VideoCrafterConfig(comfy.supported_models_base.BASE):
    """Describes one detected VideoCrafter checkpoint to ComfyUI (never registered for auto-detection:
    the pack's loader detects the variant itself, from keys and shapes)."""

    unet_extra_config = {}
    latent_format = VideoLatentFormat  # SD15, batch-as-frames: previews show the whole clip (bridge/preview.py)
    memory_usage_factor = 2.0
    supported_inference_dtypes = [torch.float16, torch.bfloat16, torch.float32]
    text_encoder_key_prefix = ["cond_stage_model."]
    vae_key_prefix = ["first_stage_model."]

    def __init__(self, unet: UNet3DConfig, variant: VariantInfo, schedule: VideoCrafterSchedule):
        # The architecture travels as one object: core code that reads SD-style unet_config fields
        # (e.g. the diffusers LoRA key map, which expects per-level lists) must not misread ours.
        super().__init__({V.UNET_CONFIG_KWARG: unet})  # the UNet constructor's keyword (ComfyVideoCrafterUNet)
        self.unet_config_object = unet
        self.variant = variant
        self.schedule = schedule
        self.sampling_settings = {"linear_start": schedule.linear_start, "linear_end": schedule.linear_end,
                                  "timesteps": schedule.timesteps}

    def get_model(self, state_dict, prefix="", device=None):
        return VideoCrafterModel(self, device=device)

    def process_unet_state_dict_for_saving(self, state_dict):
        return {UNET_PREFIX + k: v for k, v in state_dict.items()}

    def inpaint_model(self):
        return False


class VideoCrafterI2VModel(VideoCrafterModel):
    """``VideoCrafterModel`` + the Resampler (``image_proj_model``) + the image-strength condition.

    The original's image path (``LatentVisualDiffusion.get_image_embeds``, ddpm3d.py:686-691) is
    ``image_proj_model(embedder(image))``. The Resampler lives on the MODEL under the original's attribute name,
    so ComfyUI moves/offloads it with the UNet; it is stored and run in float32 (as the original, whose softmax
    is float32 anyway) through ``comfy.ops.manual_cast``.
    """

    def __init__(self, model_config, model_type=comfy.model_base.ModelType.EPS, device=None):
        super().__init__(model_config, model_type, device=device)
        self.image_proj_model = Resampler(model_config.resampler_config, operations=comfy.ops.manual_cast,
                                          dtype=torch.float32, device=device)

    def extra_conds(self, **kwargs):
        out = super().extra_conds(**kwargs)
        scale = kwargs.get(V.IMAGE_SCALE, None)
        if scale is not None:
            out[V.UNET_INPUT_OF[V.IMAGE_SCALE]] = comfy.conds.CONDConstant(float(scale))
        return out


class VideoCrafterI2VConfig(VideoCrafterConfig):
    """``VideoCrafterConfig`` of an I2V checkpoint: also knows the Resampler's shape."""

    def __init__(self, unet, variant, schedule, resampler: ResamplerConfig):
        super().__init__(unet, variant, schedule)
        self.resampler_config = resampler

    def get_model(self, state_dict, prefix="", device=None):
        return VideoCrafterI2VModel(self, device=device)


def model_config_for(unet_config, variant, schedule, state: dict) -> VideoCrafterConfig:
    """The right ``BASE`` config: I2V (with the Resampler read from ``image_proj_model.*``) or plain."""
    if not variant.is_image_to_video:
        return VideoCrafterConfig(unet_config, variant, schedule)
    projection = take_prefix(state, IMAGE_PROJECTION_PREFIX)
    if not projection:
        raise CheckpointLayoutError(
            "this checkpoint's UNet has image cross-attention (to_k_ip/to_v_ip, VideoCrafter1 I2V) but no "
            f"'{IMAGE_PROJECTION_PREFIX}*' Resampler weights; the released I2V model.ckpt has both. Re-export it "
            "from the complete original checkpoint.")
    try:
        resampler = detect_resampler_config(projection, prefix="")
    except ValueError as error:
        raise CheckpointLayoutError(f"the image projection weights are not the original Resampler: {error}") from error
    return VideoCrafterI2VConfig(unet_config, variant, schedule, resampler)


def load_image_projection(model: VideoCrafterModel, state: dict) -> None:
    """Load ``image_proj_model.*`` into an I2V model strictly (0 missing / 0 unexpected)."""
    if not isinstance(model, VideoCrafterI2VModel):
        return
    missing, unexpected = model.image_proj_model.load_state_dict(take_prefix(state, IMAGE_PROJECTION_PREFIX),
                                                                 strict=False)
    require_exact_keys(missing, unexpected, f"image projection ({IMAGE_PROJECTION_PREFIX}*, Resampler)")


def log_model(config: VideoCrafterConfig) -> None:
    logging.info("VideoCrafter: %s (%s), use_scale=%s", config.variant.description, config.variant.name,
                 config.schedule.use_scale)
