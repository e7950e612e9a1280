"""Context windows for batch-as-frames video latents, built on core's ``IndexListContextHandler``.

Core's handler (``comfy/context_windows.py``) slices the latent into overlapping windows along dim 0,
runs the ordinary batched cond/uncond call per window and fuses the results with its schedules and fuse
methods; this subclass reuses all of that and repairs what breaks on video latents
(``../shared/LATENT-OPS.md``), each repair switched on only where the running ComfyUI lacks it:

1. ``set_step`` (ComfyUI 0.3.75: ``isclose(sample_sigmas, timestep)`` with a per-frame timestep raises,
   and sub-steps of heun / dpm_2 / dpmpp_2s raise "No sample_sigmas matched"): match the first frame's
   sigma and keep the last full step's windows on sub-steps. Newer ComfyUI does exactly this; a probe
   detects it and the core method is used.
2. per-frame model conds (``c_concat`` depth, I2V image tokens per frame, ...): 0.3.75 never slices them at
   dim 0, so every window got the first L frames. Sliced here unless the probe finds core doing it.
3. per-frame ControlNet / T2I-Adapter hints: core (every version) truncates them to the first L frames
   (``broadcast_image_to``) and caches the window-0 hint. Each window gets its own frames of the hint.
"""
from __future__ import annotations

import functools

import comfy.conds
import comfy.context_windows as cw
import torch


def _probe_handler(base: type, length: int = 2) -> cw.IndexListContextHandler:
    return base(cw.get_matching_context_schedule(cw.ContextSchedules.STATIC_STANDARD),
                cw.get_matching_fuse_method(cw.ContextFuseMethods.FLAT),
                context_length=length, context_overlap=0, dim=0)


@functools.lru_cache(maxsize=None)
def core_set_step_handles_video(base: type = cw.IndexListContextHandler) -> bool:
    """True if ``base.set_step`` (core's) accepts a per-frame timestep and sub-step sigmas."""
    handler = _probe_handler(base)
    options = {"transformer_options": {"sample_sigmas": torch.tensor([2.0, 1.0, 0.0])}}
    try:
        handler.set_step(torch.tensor([1.0, 1.0, 1.0]), options)
        matched = handler._step == 1
        handler.set_step(torch.tensor([1.5, 1.5, 1.5]), options)
    except Exception:  # noqa: BLE001  (any failure means: repair it here)
        return False
    return matched and handler._step == 1


@functools.lru_cache(maxsize=None)
def core_slices_per_frame_conds(base: type = cw.IndexListContextHandler) -> bool:
    """True if ``base.get_resized_cond`` (core's) slices a per-frame model cond at dim 0."""
    handler = _probe_handler(base)
    x = torch.zeros(4, 1)
    try:
        window = handler.get_context_windows(None, x, {})[1]
        cond = [{"model_conds": {"probe": comfy.conds.CONDRegular(torch.arange(4.0).reshape(4, 1))}}]
        sliced = handler.get_resized_cond(cond, x, window)[0]["model_conds"]["probe"].cond
    except Exception:  # noqa: BLE001
        return False
    return sliced.shape[0] == 2 and float(sliced[0, 0]) == 2.0


def _num_video_frames(conds) -> int | None:
    for cond_list in conds or []:
        for cond in cond_list or []:
            value = (cond.get("model_conds") or {}).get("num_video_frames")
            if value is not None:
                return int(value.cond)
    return None


class VideoContextHandler(cw.IndexListContextHandler):
    """``IndexListContextHandler`` for ``[T, C, h, w]`` video latents (dim 0); see the module docstring."""

    #: The core class whose behaviour is probed (the direct base; a test swaps in a newer core's behaviour).
    _core = cw.IndexListContextHandler

    def __init__(self, *args, **kwargs):
        kwargs["dim"] = 0
        super().__init__(*args, **kwargs)
        self._full_hints: dict[int, tuple[object, torch.Tensor]] = {}

    def should_use_context(self, model, conds, x_in, timestep, model_options) -> bool:
        frames = _num_video_frames(conds)
        if frames is not None and frames != x_in.size(0) and x_in.size(0) > self.context_length:
            raise ValueError(f"context windows: the latent holds {x_in.size(0) // max(frames, 1)} videos of {frames} "
                             f"frames; use one video per latent batch")
        return super().should_use_context(model, conds, x_in, timestep, model_options)

    def set_step(self, timestep: torch.Tensor, model_options: dict):
        if core_set_step_handles_video(self._core):
            return super().set_step(timestep, model_options)
        sigmas = model_options["transformer_options"]["sample_sigmas"]
        first = timestep.reshape(-1)[:1].to(sigmas)
        matches = torch.nonzero(torch.isclose(sigmas, first, rtol=0.0001))
        if matches.numel():
            self._step = int(matches[0].item())
        # else: a sub-step of a multi-step sampler; keep the windows of the last full step

    def get_resized_cond(self, cond_in, x_in, window, device=None):
        resized = super().get_resized_cond(cond_in, x_in, window, device)
        if resized is None:
            return None
        frames = x_in.size(0)
        for cond in resized:
            model_conds = cond.get("model_conds")
            if isinstance(model_conds, dict) and not core_slices_per_frame_conds(self._core):
                for key, value in list(model_conds.items()):
                    tensor = getattr(value, "cond", None)
                    if isinstance(tensor, torch.Tensor) and tensor.ndim > 0 and tensor.size(0) == frames:
                        model_conds[key] = value._copy_with(window.get_tensor(tensor, device, dim=0))
            if cond.get("control") is not None:
                self._window_hints(cond["control"], window, frames)
        return resized

    def _window_hints(self, control, window, frames: int) -> None:
        """Give every control in the chain the window's frames of its per-frame hint."""
        while control is not None:
            full = self._full_hints.get(id(control), (None, None))[1]
            if full is None:
                hint = getattr(control, "cond_hint_original", None)
                if isinstance(hint, torch.Tensor) and hint.ndim > 0 and hint.size(0) == frames:
                    self._full_hints[id(control)] = (control, hint)
                    full = hint
            if full is not None:
                control.cond_hint_original = full[window.index_list]
                control.cond_hint = None  # the cached, upscaled hint belongs to another window
            control = getattr(control, "previous_controlnet", None)

    def _restore_hints(self) -> None:
        for control, full in self._full_hints.values():
            control.cond_hint_original = full
            control.cond_hint = None
        self._full_hints.clear()

    def execute(self, calc_cond_batch, model, conds, x_in, timestep, model_options):
        try:
            return super().execute(calc_cond_batch, model, conds, x_in, timestep, model_options)
        finally:
            self._restore_hints()


def install_video_context_windows(model, context_length: int, context_overlap: int, context_schedule: str,
                                  context_stride: int, closed_loop: bool, fuse_method: str):
    """A clone of ``model`` sampling in overlapping windows of ``context_length`` frames (any core sampler)."""
    if context_overlap >= context_length:
        raise ValueError(f"context_overlap ({context_overlap}) must be smaller than context_length ({context_length})")
    patched = model.clone()
    patched.model_options["context_handler"] = VideoContextHandler(
        context_schedule=cw.get_matching_context_schedule(context_schedule),
        fuse_method=cw.get_matching_fuse_method(fuse_method),
        context_length=int(context_length), context_overlap=int(context_overlap),
        context_stride=int(context_stride), closed_loop=bool(closed_loop))
    cw.create_prepare_sampling_wrapper(patched)
    return patched
