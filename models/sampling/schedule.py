"""VideoCrafter noise schedule, ``use_scale`` array, and the sigma reparametrisation ComfyUI needs.

Everything here recomputes what upstream registers as buffers, with the same dtypes and operation order, so
the values match bit for bit. Upstream is AILab-CVC/VideoCrafter@11bcd76:
- ``lvdm/models/utils_diffusion.py:31-35`` (make_beta_schedule 'linear'): ``linspace(sqrt(s), sqrt(e), T, float64) ** 2``.
- ``lvdm/models/ddpm3d.py:113-165`` (DDPM.register_schedule): every derived quantity is computed in float64
  numpy and stored as a float32 buffer.
- ``lvdm/models/ddpm3d.py:362-376`` (LatentDiffusion use_scale): ``scale_arr``, computed in float64 numpy and
  stored as float32.
- ``lvdm/models/ddpm3d.py:412-417`` (q_sample with use_scale): ``x_t = sqrt(acp_t) * s_t * x0 + sqrt(1 - acp_t) * eps``.

No ComfyUI import here, ever; this module is pure PyTorch + numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Optional, Union

import numpy as np
import torch

TimestepLike = Union[float, int, torch.Tensor]


def linear_betas(timesteps: int = 1000, linear_start: float = 0.00085, linear_end: float = 0.012) -> torch.Tensor:
    """DDPM betas of the 'linear' schedule as float64, exactly as upstream computes them.

    ``torch.linspace(linear_start ** 0.5, linear_end ** 0.5, T, dtype=float64) ** 2``
    (utils_diffusion.py:31-35). Upstream then calls ``.numpy()``; the values are the same.
    """
    return torch.linspace(linear_start ** 0.5, linear_end ** 0.5, timesteps, dtype=torch.float64) ** 2


def _np64(betas: torch.Tensor) -> np.ndarray:
    return betas.detach().cpu().to(torch.float64).numpy()


def alphas_cumprod_f64(betas: torch.Tensor) -> np.ndarray:
    """``np.cumprod(1 - betas)`` in float64 numpy, as register_schedule computes it before the cast (ddpm3d.py:120-121)."""
    return np.cumprod(1.0 - _np64(betas), axis=0)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """The float32 ``alphas_cumprod`` buffer: cumprod in float64 numpy, then ``torch.tensor(.., float32)``.

    (ddpm3d.py:120-133). This float32 buffer is what the DDIM sampler reads (ddim.py:25, 50).
    """
    return torch.tensor(alphas_cumprod_f64(betas), dtype=torch.float32)


def registered_buffers(betas: torch.Tensor, v_posterior: float = 0.0) -> Dict[str, torch.Tensor]:
    """All 12 persistent float32 schedule buffers of ``DDPM.register_schedule`` (ddpm3d.py:120-153).

    Keys: betas, alphas_cumprod, alphas_cumprod_prev, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod,
    log_one_minus_alphas_cumprod, sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod, posterior_variance,
    posterior_log_variance_clipped, posterior_mean_coef1, posterior_mean_coef2. Each is computed in float64 numpy
    with upstream's operation order and cast to float32 at the end, as upstream's ``to_torch`` does.
    (The non-persistent ``lvlb_weights`` is a training-only quantity and is not reproduced.)
    """
    b = _np64(betas)
    alphas = 1.0 - b
    acp = np.cumprod(alphas, axis=0)
    acp_prev = np.append(1.0, acp[:-1])
    post_var = (1 - v_posterior) * b * (1.0 - acp_prev) / (1.0 - acp) + v_posterior * b
    f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731  (upstream: partial(torch.tensor, dtype=float32))
    return {
        "betas": f32(b),
        "alphas_cumprod": f32(acp),
        "alphas_cumprod_prev": f32(acp_prev),
        "sqrt_alphas_cumprod": f32(np.sqrt(acp)),
        "sqrt_one_minus_alphas_cumprod": f32(np.sqrt(1.0 - acp)),
        "log_one_minus_alphas_cumprod": f32(np.log(1.0 - acp)),
        "sqrt_recip_alphas_cumprod": f32(np.sqrt(1.0 / acp)),
        "sqrt_recipm1_alphas_cumprod": f32(np.sqrt(1.0 / acp - 1)),
        "posterior_variance": f32(post_var),
        "posterior_log_variance_clipped": f32(np.log(np.maximum(post_var, 1e-20))),
        "posterior_mean_coef1": f32(b * np.sqrt(acp_prev) / (1.0 - acp)),
        "posterior_mean_coef2": f32((1.0 - acp_prev) * np.sqrt(alphas) / (1.0 - acp)),
    }


def scale_array(scale_b: float, *, scale_a: float = 1.0, fix_scale_bug: bool = False, timesteps: int = 1000,
                scale_steps_linear: int = 400) -> torch.Tensor:
    """The float32 ``scale_arr`` buffer of a ``use_scale`` LatentDiffusion (ddpm3d.py:362-376).

    ``concat(np.linspace(scale_a, scale_b, mid_step), np.full(scale_step, scale_b))`` in float64 numpy, stored
    as float32, where ``scale_step = T - mid_step`` with ``fix_scale_bug`` and ``T`` without it. Upstream's
    "bug" makes the array 1400 long for VC2 / VC1-I2V (only the first 1000 entries are ever indexed); VC1-1024
    sets ``fix_scale_bug`` and gets 1000 entries. ``scale_steps_linear`` is upstream's ``mid_step``.
    """
    scale_step = timesteps - scale_steps_linear if fix_scale_bug else timesteps
    arr = np.concatenate((np.linspace(scale_a, scale_b, scale_steps_linear), np.full(scale_step, scale_b)))
    return torch.tensor(arr, dtype=torch.float32)


@lru_cache(maxsize=32)
def _cached_arrays(timesteps, linear_start, linear_end, use_scale, scale_a, scale_b, fix_scale_bug, mid_step):
    betas = linear_betas(timesteps, linear_start, linear_end)
    acp = alphas_cumprod(betas)
    scale = (scale_array(scale_b, scale_a=scale_a, fix_scale_bug=fix_scale_bug, timesteps=timesteps,
                         scale_steps_linear=mid_step) if use_scale else None)
    s = scale[:timesteps].double() if scale is not None else torch.ones(timesteps, dtype=torch.float64)
    # ComfyUI convention (comfy/model_sampling.py ModelSamplingDiscrete._register_schedule): float64 cumprod.
    acp64 = torch.cumprod(1. - betas, dim=0)
    tables = {}
    for key, a in (("f64", acp64), ("buffer", acp.double())):
        tables[key] = (((1 - a) / a) ** 0.5 / s, a.sqrt() * s)
    return betas, acp, scale, tables


def _interp(table: torch.Tensor, t: TimestepLike) -> torch.Tensor:
    """Linear interpolation of a per-timestep float64 table at (possibly fractional) ``t``, clamped to [0, T-1]."""
    tt = torch.as_tensor(t, dtype=torch.float64).clamp(0, table.shape[0] - 1)
    lo = tt.floor().long()
    hi = tt.ceil().long()
    w = tt - lo.to(torch.float64)
    return table[lo] * (1 - w) + table[hi] * w


@dataclass(frozen=True)
class VideoCrafterSchedule:
    """One VideoCrafter model's noise schedule (linear betas, optional ``use_scale``).

    Fields mirror the LatentDiffusion constructor arguments (ddpm3d.py:40-68, 340-348); ``scale_a`` and
    ``mid_step`` keep upstream's defaults (1 and 400).

    **The sigma reparametrisation used by the ComfyUI glue.** With ``use_scale``, training noised latents as
    (ddpm3d.py:412-417)::

        x_t = sqrt(acp_t) * s_t * x0 + sqrt(1 - acp_t) * eps,          s_t = scale_arr[t]

    Divide by ``f_t = sqrt(acp_t) * s_t``::

        y := x_t / f_t = x0 + sigma'_t * eps,   sigma'_t = sqrt((1 - acp_t) / acp_t) / s_t

    so ``y`` is an ordinary variance-exploding variable with noise level ``sigma'`` and any k-diffusion sampler
    can run in y-space. The model is called on ``x_t = f_t * y`` (``x_from_y``) and still predicts ``eps``;
    the denoised estimate is ``x0 = y - sigma' * eps``, which is exactly upstream's ``pred_x0 /= scale_t``
    (ddim.py:270, 286). DDIM with eta=0 (ddim.py:270-289) becomes ``y_prev = y + (sigma'_prev - sigma') * eps``,
    i.e. Euler in y-space. With eta > 0 upstream's noise ``sigma_t * z`` becomes ``sigma_up * z`` with
    ``sigma_up = sigma_t / (sqrt(a_prev) * s_prev)`` in y-space: a valid ancestral split
    (``sigma_down**2 + sigma_up**2 = sigma'_prev**2``) that equals k-diffusion's ``get_ancestral_step(eta)``
    only where ``s_t == s_prev``; the exact path is ``models.sampling.ddim``. Without use_scale ``s_t = 1`` and these
    are the plain SD sigmas.
    ``sigma'`` increases with t (sigma grows, s_t falls or is constant), so it is a valid k-diffusion schedule.

    ``sigmas`` / ``signal_scale`` / ``x_from_y`` / ``y_from_x`` are computed in float64 from the float32
    ``alphas_cumprod`` / ``scale_arr`` buffers (the values upstream's sampler reads); ``f64_cumprod=True``
    switches ``acp`` to ComfyUI's float64 cumprod.
    """

    use_scale: bool = False
    scale_b: float = 0.3
    fix_scale_bug: bool = False
    timesteps: int = 1000
    linear_start: float = 0.00085
    linear_end: float = 0.012
    scale_a: float = 1.0
    mid_step: int = 400

    def _arrays(self):
        return _cached_arrays(self.timesteps, self.linear_start, self.linear_end, self.use_scale,
                              float(self.scale_a), float(self.scale_b), self.fix_scale_bug, self.mid_step)

    @property
    def betas(self) -> torch.Tensor:
        """float64 betas (utils_diffusion.py:31-35)."""
        return self._arrays()[0].clone()

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """float32 ``alphas_cumprod`` buffer (ddpm3d.py:133)."""
        return self._arrays()[1].clone()

    @property
    def scale_arr(self) -> Optional[torch.Tensor]:
        """float32 ``scale_arr`` buffer (len 1400 without the fix, 1000 with it), or None without use_scale."""
        s = self._arrays()[2]
        return None if s is None else s.clone()

    def buffers(self) -> Dict[str, torch.Tensor]:
        """All persistent float32 schedule buffers upstream registers (+ ``scale_arr`` with use_scale)."""
        out = registered_buffers(self._arrays()[0])
        if self.use_scale:
            out["scale_arr"] = self.scale_arr
        return out

    def sigmas(self, f64_cumprod: bool = False) -> torch.Tensor:
        """float64 ``sigma'_t = sqrt((1 - acp_t) / acp_t) / s_t`` for t = 0..T-1 (see the class docstring).

        By default ``acp`` is the float32 ``alphas_cumprod`` buffer, the values upstream's DDIM reads.
        ``f64_cumprod=True`` uses the float64 ``torch.cumprod`` of ComfyUI's ModelSamplingDiscrete instead
        (comfy/model_sampling.py ``_register_schedule``): then a no-scale schedule gives ComfyUI's SD sigmas
        exactly. The two differ by <= 4e-5 relative (largest at t=0).
        """
        return self._arrays()[3]["f64" if f64_cumprod else "buffer"][0].clone()

    def signal_scale(self, t: TimestepLike, f64_cumprod: bool = False) -> torch.Tensor:
        """float64 ``f_t = sqrt(acp_t) * s_t``; fractional t interpolates f linearly between integer steps."""
        return _interp(self._arrays()[3]["f64" if f64_cumprod else "buffer"][1], t)

    def sigma_at(self, t: TimestepLike) -> torch.Tensor:
        """float64 ``sigma'`` at (fractional) t, interpolating log sigma linearly (as ComfyUI's ModelSamplingDiscrete)."""
        return _interp(self.sigmas().log(), t).exp()

    def t_from_sigma(self, sigma: Union[float, torch.Tensor]) -> torch.Tensor:
        """Continuous inverse of ``sigma_at``: the fractional t whose interpolated log sigma equals log ``sigma``.

        Clamped to [0, T-1]. Works elementwise on any shape.
        """
        log_s = self.sigmas().log()
        ls = torch.as_tensor(sigma, dtype=torch.float64).log().clamp(float(log_s[0]), float(log_s[-1]))
        hi = torch.searchsorted(log_s, ls.reshape(-1)).clamp(1, log_s.shape[0] - 1)
        lo = hi - 1
        w = (ls.reshape(-1) - log_s[lo]) / (log_s[hi] - log_s[lo])
        return (lo.to(torch.float64) + w.clamp(0, 1)).reshape(ls.shape)

    def _factor_like(self, x: torch.Tensor, t: TimestepLike, f64_cumprod: bool) -> torch.Tensor:
        f = self.signal_scale(t, f64_cumprod)
        if f.dim() == 1 and f.shape[0] == x.shape[0] and x.dim() > 1:
            f = f.reshape(-1, *([1] * (x.dim() - 1)))
        return f.to(device=x.device, dtype=x.dtype)

    def x_from_y(self, y: torch.Tensor, t: TimestepLike, f64_cumprod: bool = False) -> torch.Tensor:
        """Model-space latent ``x_t = f_t * y``. ``t``: scalar, 0-d, or [B] (one per batch row)."""
        return y * self._factor_like(y, t, f64_cumprod)

    def y_from_x(self, x: torch.Tensor, t: TimestepLike, f64_cumprod: bool = False) -> torch.Tensor:
        """Inverse of ``x_from_y``: ``y = x_t / f_t``."""
        return x / self._factor_like(x, t, f64_cumprod)


# --- presets (configs in AILab-CVC/VideoCrafter@11bcd76; all use linear 0.00085..0.012, T=1000) -------------
#: configs/inference_t2v_512_v2.0.yaml: use_scale true, scale_b 0.7, no fix -> scale_arr len 1400.
VC2_512 = VideoCrafterSchedule(use_scale=True, scale_b=0.7, fix_scale_bug=False)
#: configs/inference_i2v_512_v1.0.yaml: same scale settings as VC2.
VC1_I2V_512 = VideoCrafterSchedule(use_scale=True, scale_b=0.7, fix_scale_bug=False)
#: configs/inference_t2v_1024_v1.0.yaml: use_scale true, scale_b default 0.3 (ddpm3d.py:345), fix_scale_bug true.
VC1_1024 = VideoCrafterSchedule(use_scale=True, scale_b=0.3, fix_scale_bug=True)
#: configs/inference_t2v_512_v1.0.yaml (also StyleCrafter's base): no use_scale -> plain SD schedule.
VC1_512 = VideoCrafterSchedule(use_scale=False)

PRESETS = {"vc2_512": VC2_512, "vc1_i2v_512": VC1_I2V_512, "vc1_1024": VC1_1024, "vc1_512": VC1_512}


def schedule_from_config(params: dict) -> VideoCrafterSchedule:
    """Build a schedule from a LatentDiffusion ``model.params`` dict (upstream defaults where keys are absent)."""
    return VideoCrafterSchedule(
        use_scale=bool(params.get("use_scale", False)),
        scale_b=float(params.get("scale_b", 0.3)),
        fix_scale_bug=bool(params.get("fix_scale_bug", False)),
        timesteps=int(params.get("timesteps", 1000)),
        linear_start=float(params.get("linear_start", 1e-4)),
        linear_end=float(params.get("linear_end", 2e-2)),
        scale_a=float(params.get("scale_a", 1.0)),
        mid_step=int(params.get("mid_step", 400)),
    )
