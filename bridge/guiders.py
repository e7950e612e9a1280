"""GUIDERs for SamplerCustomAdvanced: StyleCrafter's multi-condition CFG and temporal guidance.

Written like core's ``Guider_DualCFG`` (``comfy_extras/nodes_custom_sampler.py``): ``CFGGuider``
subclasses whose ``predict_noise`` gets the model outputs from ``comfy.samplers.calc_cond_batch``
(which batches conds that can share a forward pass) and combines them with the pure formulas of
``models.sampling.guidance``. The outputs are ComfyUI's denoised predictions; every combination's weights sum
to 1, so it equals the original's combination of ε for the same x and σ.

- :class:`MultiConditionGuider`: ``e(t,c) + λ_c·(e(t,c) − e(t,∅)) + λ_t·(e(t,∅) − e(∅,∅))`` — three
  branches: ``positive`` (text + condition), the derived ``(t, ∅)`` = positive with the condition taken
  away (:func:`without_condition`), and ``negative``. The condition is the StyleCrafter style
  (``vocabulary.STYLE_KEYS``; ∅ = no style tokens, the original's ``append_to_context=None``) or the
  I2V image (``vocabulary.IMAGE_CONTEXT``; ∅ = the negative's grey-image tokens, as the original's
  image uncond).
- :class:`TemporalCFGGuider`: ordinary CFG (core's ``cfg_function``) plus temporal guidance.
- Both add ``ω_t·(e_video(positive) − e_frames(positive))`` when ``temporal_scale`` ≠ 0: one more
  pass with ``transformer_options[vocabulary.TEMPORAL_OFF]`` (read by ``ComfyVideoCrafterUNet``),
  which skips every temporal layer. That pass cannot share a batch with the others (the switch is
  per forward call), so it costs one extra model call per step; ω_t = 0 skips it and returns the
  plain result exactly. The original's ``unconditional_guidance_scale_temporal`` never switched the
  layers off (VideoCrafter ddim.py:245-248 vs openaimodel3d.py:534) and so had no effect.
"""
from __future__ import annotations

import comfy.samplers

from ..models.sampling.guidance import multi_condition_cfg, temporal_guidance
from .vocabulary import CONDITION_KEYS, TEMPORAL_OFF


def without_condition(positive: list, negative: list) -> list:
    """``(t, ∅)``: each positive entry without its style / image condition.

    Keys the negative also carries (the I2V grey-image tokens) take the negative's value; the others
    (style) are removed. Everything else (text tokens, fps, image strength ...) is the positive's.
    """
    fallback = negative[0][1] if negative else {}
    middle = []
    for tensor, options in positive:
        options = {k: v for k, v in options.items() if k not in CONDITION_KEYS}
        options.update({k: fallback[k] for k in CONDITION_KEYS if k in fallback})
        middle.append([tensor, options])
    return middle


def has_condition(conditioning: list) -> bool:
    return any(k in options for _, options in conditioning for k in CONDITION_KEYS)


def temporal_off_options(model_options: dict) -> dict:
    """A copy of ``model_options`` whose forward passes skip the temporal layers."""
    options = dict(model_options)
    options["transformer_options"] = {**model_options.get("transformer_options", {}), TEMPORAL_OFF: True}
    return options


class _TemporalMixin:
    temporal_scale = 0.0

    def _with_temporal(self, guided, e_video, x, timestep, model_options):
        if self.temporal_scale == 0:
            return guided
        e_frames = comfy.samplers.calc_cond_batch(self.inner_model, [self.conds.get("positive")], x, timestep,
                                                  temporal_off_options(model_options))[0]
        return temporal_guidance(guided, e_video, e_frames, self.temporal_scale)


class MultiConditionGuider(_TemporalMixin, comfy.samplers.CFGGuider):
    """StyleCrafter's ``DDIMStyleSampler`` guidance (SC ddim.py:340-375), generalised to I2V image tokens."""

    def set_conds(self, positive, negative):
        self.inner_set_conds({"positive": positive, "middle": without_condition(positive, negative),
                              "negative": negative})

    def set_scales(self, text_scale: float, condition_scale: float, temporal_scale: float = 0.0):
        self.text_scale, self.condition_scale, self.temporal_scale = text_scale, condition_scale, temporal_scale
        self.cfg = text_scale  # what core code reading guider.cfg (e.g. previews) sees

    def predict_noise(self, x, timestep, model_options={}, seed=None):  # noqa: B006 (core's signature)
        conds = [self.conds.get("positive"), self.conds.get("middle"), self.conds.get("negative")]
        full, text_only, uncond = comfy.samplers.calc_cond_batch(self.inner_model, conds, x, timestep, model_options)
        guided = multi_condition_cfg(full, text_only, uncond, self.text_scale, self.condition_scale)
        return self._with_temporal(guided, full, x, timestep, model_options)


class TemporalCFGGuider(_TemporalMixin, comfy.samplers.CFGGuider):
    """Ordinary CFG (``e_u + s·(e_c − e_u)``) plus temporal-consistency guidance."""

    def set_scales(self, cfg: float, temporal_scale: float):
        self.cfg, self.temporal_scale = cfg, temporal_scale

    def predict_noise(self, x, timestep, model_options={}, seed=None):  # noqa: B006 (core's signature)
        if self.temporal_scale == 0:
            return super().predict_noise(x, timestep, model_options, seed)  # exactly core's CFGGuider
        positive, negative = self.conds.get("positive"), self.conds.get("negative")
        cond, uncond = comfy.samplers.calc_cond_batch(self.inner_model, [positive, negative], x, timestep, model_options)
        guided = comfy.samplers.cfg_function(self.inner_model, cond, uncond, self.cfg, x, timestep,
                                             model_options=model_options, cond=positive, uncond=negative)
        return self._with_temporal(guided, cond, x, timestep, model_options)
