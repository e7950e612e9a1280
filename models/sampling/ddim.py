"""The exact VideoCrafter DDIM sampler as pure functions.

Reproduces AILab-CVC/VideoCrafter@11bcd76 ``lvdm/models/samplers/ddim.py`` (DDIMSampler.make_schedule :22-60,
ddim_sampling :132-210, p_sample_ddim :212-291) and ``lvdm/models/utils_diffusion.py:56-85``, keeping upstream's
dtypes (float32 tensors vs float64 numpy) and operation order so float32 results match bit for bit.
Pure PyTorch; never imports ComfyUI.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .schedule import VideoCrafterSchedule


def ddim_timesteps(num_steps: int, num_train_timesteps: int = 1000) -> torch.Tensor:
    """'uniform' DDIM timesteps: ``arange(0, T, T // S) + 1`` as int64 (utils_diffusion.py:56-70).

    S=50 -> 1,21,...,981; S=10 -> 1,101,...,901. Like upstream, when S does not divide T the result can have
    more than S entries (e.g. S=30 -> 34 steps); the length of this tensor is the real step count.
    """
    if not 1 <= num_steps <= num_train_timesteps:
        raise ValueError(f"num_steps must be in [1, {num_train_timesteps}], got {num_steps}")
    ts = torch.arange(0, num_train_timesteps, num_train_timesteps // num_steps, dtype=torch.int64) + 1
    if int(ts[-1]) >= num_train_timesteps:  # upstream would index alphas_cumprod out of range
        raise ValueError(f"num_steps={num_steps} gives timestep {int(ts[-1])} >= {num_train_timesteps}")
    return ts


@dataclass(frozen=True)
class DDIMArrays:
    """DDIMSampler.make_schedule attributes, in the dtypes upstream produces (see ``make_ddim_arrays``).

    ``alphas_prev`` and ``scale_arr_prev`` are float64 holding float32 values (upstream: numpy float64 arrays);
    ``sigmas`` is float64 (upstream: a float64 torch tensor from mixed numpy/torch arithmetic).
    ``scale_arr`` / ``scale_arr_prev`` are None without use_scale.
    """

    timesteps: torch.Tensor             # int64 [S]
    alphas: torch.Tensor                # float32 [S]  acp[ts] (buffer dtype)
    alphas_prev: torch.Tensor           # float64 [S]  [acp[0]] + acp[ts[:-1]]
    sqrt_one_minus_alphas: torch.Tensor  # float32 [S]
    sigmas: torch.Tensor                # float64 [S]
    scale_arr: Optional[torch.Tensor]   # float32 [S]  scale_arr[ts]
    scale_arr_prev: Optional[torch.Tensor]  # float64 [S]  [scale_arr[0]] + scale_arr[ts[:-1]]
    eta: float

    @property
    def num_steps(self) -> int:
        return int(self.timesteps.shape[0])


def sampling_parameters(alphas: torch.Tensor, alphas_prev: torch.Tensor, eta: float):
    """``(sigmas, sqrt_one_minus_alphas)`` from ``alphas`` (buffer dtype) and float64 ``alphas_prev``.

    Upstream arithmetic (utils_diffusion.py:80, ddim.py:56), usable for any step ladder:
    ``sigmas = eta * np.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))`` where ``1 - a`` is a torch tensor in
    the buffer dtype and ``ndarray / tensor`` runs ``Tensor.__rtruediv__`` = ``(1 - a).reciprocal() * other``
    (so the reciprocal is rounded to the buffer dtype first); ``sqrt_one_minus = np.sqrt(1 - a)`` in the
    buffer dtype. Square roots are numpy's (correctly rounded), like upstream; torch's vectorised CPU sqrt
    can be 1 ulp off on some builds. Returns float64 sigmas and sqrt_one_minus in ``alphas.dtype``.
    """
    if alphas.dtype not in (torch.float32, torch.float64):
        raise ValueError("alphas must be float32 or float64")
    a = alphas.detach().cpu().numpy()
    bt = a.dtype.type
    a_prev = alphas_prev.detach().cpu().to(torch.float64).numpy()
    recip = bt(1.0) / (bt(1.0) - a)
    sigmas = float(eta) * np.sqrt((1.0 - a_prev) * recip.astype(np.float64) * (1.0 - a.astype(np.float64) / a_prev))
    sqrt_one_minus = np.sqrt(bt(1.0) - a).astype(bt)
    return torch.from_numpy(np.ascontiguousarray(sigmas)), torch.from_numpy(np.ascontiguousarray(sqrt_one_minus))


def make_ddim_arrays(schedule: VideoCrafterSchedule, num_steps: int, eta: float = 0.0,
                     buffer_dtype: torch.dtype = torch.float32) -> DDIMArrays:
    """Build the DDIM arrays exactly as ``DDIMSampler.make_schedule(S, 'uniform', eta)`` does (ddim.py:22-60).

    - ``alphas = acp[ts]``: float32 (utils_diffusion.py:76; acp is the float32 model buffer).
    - ``alphas_prev = [acp[0]] + acp[ts[:-1]]``: float64 of float32 values (:77). The last step therefore goes
      to ``acp[0] = 0.99915``, not 1.
    - ``sigmas = eta * np.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))`` (:80). Upstream mixes a numpy
      float64 ``a_prev`` with a torch float32 ``a``: ``1 - a`` is a float32 tensor and ``ndarray / tensor``
      dispatches to ``Tensor.__rtruediv__`` = ``(1 - a).reciprocal() * (1 - a_prev)``, so the reciprocal is
      rounded to float32 before the float64 product. Reproduced here; the result is float64.
    - ``sqrt_one_minus_alphas = np.sqrt(1 - alphas)`` in float32 (ddim.py:56).
    - ``scale_arr = scale_arr[ts]`` (float32), ``scale_arr_prev = [scale_arr[0]] + scale_arr[ts[:-1]]``
      (float64 of float32 values) (ddim.py:35-40).
    Square roots use numpy (correctly rounded, as upstream's ``np.sqrt``); torch's vectorised CPU sqrt can be
    1 ulp off on some builds.

    ``buffer_dtype=torch.float64`` reproduces a model converted with ``.double()`` (the fixtures' ``_f64``
    shadow runs): ``alphas_cumprod`` is then a float64 buffer holding the float32 values, so ``alphas``,
    ``sqrt_one_minus_alphas`` and the ``1 - a`` reciprocal are float64 (``scale_arr`` stays float32 because
    make_schedule re-casts it with ``to_torch``, ddim.py:27, 36).
    """
    ts = ddim_timesteps(num_steps, schedule.timesteps)
    acp = schedule.alphas_cumprod.to(buffer_dtype)
    alphas = acp[ts]
    alphas_prev = torch.cat([acp[:1], acp[ts[:-1]]]).to(torch.float64)
    sigmas, sqrt_one_minus = sampling_parameters(alphas, alphas_prev, eta)
    scale_arr = scale_prev = None
    if schedule.use_scale:
        full = schedule.scale_arr
        scale_arr = full[ts]
        scale_prev = torch.cat([full[:1], full[ts[:-1]]]).to(torch.float64)
    return DDIMArrays(ts, alphas, alphas_prev, sqrt_one_minus, sigmas, scale_arr, scale_prev, float(eta))


def cfg_eps(e_cond: torch.Tensor, e_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance as upstream: ``e_u + s * (e_c - e_u)`` (ddim.py:222-236, uc_type None)."""
    return e_uncond + scale * (e_cond - e_uncond)


def ddim_step(x: torch.Tensor, e_t: torch.Tensor, index: int, arrays: DDIMArrays, noise: Optional[torch.Tensor],
              temperature: float = 1.0, coef_dtype: torch.dtype = torch.float32):
    """One DDIM update; returns ``(x_prev, pred_x0)`` like ``p_sample_ddim`` (ddim.py:254-291).

    ``index`` is the position in ``arrays`` (upstream ``index = S - i - 1``). ``noise`` is the raw N(0,1)
    draw of the step (``noise_like``, ddim.py:276); it may be None when ``sigma == 0``. Every coefficient is
    materialised as a ``torch.full((B,1,..,1), value)`` of ``coef_dtype`` (upstream: default dtype float32,
    ddim.py:264-267, 283-285), and the arithmetic order is upstream's::

        pred_x0 = (x - sqrt_one_minus_at * e_t) / a_t.sqrt()
        dir_xt  = (1. - a_prev - sigma_t**2).sqrt() * e_t
        noise   = sigma_t * noise * temperature
        pred_x0 /= scale_t                                  # use_scale only
        x_prev  = a_prev.sqrt() * scale_t_prev * pred_x0 + dir_xt + noise

    Coefficients are computed with torch on those ``coef_dtype`` tensors in upstream's order
    (``a_t.sqrt()``, ``(1. - a_prev - sigma_t**2).sqrt()``, ``a_prev.sqrt() * scale_t_prev``), not with numpy:
    torch's CPU square root is what the original ran, and on some CPUs it differs from a correctly rounded one by
    an ulp, which a run of 25+ steps would otherwise carry into its result.
    No clipping of pred_x0 (upstream has none on this path). ``pred_x0`` is returned after ``/ scale_t``.
    """
    size = (x.shape[0],) + (1,) * (x.dim() - 1)
    full = lambda v: torch.full(size, float(v), dtype=coef_dtype, device=x.device)  # noqa: E731
    a_t = full(arrays.alphas[index])
    a_prev = full(arrays.alphas_prev[index])
    sigma_t = full(arrays.sigmas[index])
    sqrt_one_minus_at = full(arrays.sqrt_one_minus_alphas[index])

    pred_x0 = (x - sqrt_one_minus_at * e_t) / a_t.sqrt()
    dir_xt = (1. - a_prev - sigma_t ** 2).sqrt() * e_t
    if noise is None:
        if float(arrays.sigmas[index]) != 0.0:
            raise ValueError("noise is required when sigma_t != 0")
        noise = torch.zeros(x.shape, dtype=coef_dtype, device=x.device)
    noise = sigma_t * noise.to(x.device) * temperature
    if arrays.scale_arr is not None:
        scale_t = full(arrays.scale_arr[index])
        scale_t_prev = full(arrays.scale_arr_prev[index])
        pred_x0 = pred_x0 / scale_t
        x_prev = a_prev.sqrt() * scale_t_prev * pred_x0 + dir_xt + noise
    else:
        x_prev = a_prev.sqrt() * pred_x0 + dir_xt + noise
    return x_prev, pred_x0


EpsFn = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
NoiseFn = Callable[[int, Sequence[int]], torch.Tensor]


def ddim_sample(eps_fn: EpsFn, x_T: torch.Tensor, arrays: DDIMArrays, noise_fn: Optional[NoiseFn],
                callback: Optional[Callable[[int, int, torch.Tensor, torch.Tensor], None]] = None,
                temperature: float = 1.0) -> torch.Tensor:
    """Run the DDIM loop as ``DDIMSampler.ddim_sampling`` (ddim.py:132-210); returns the final latent.

    Steps go over ``arrays.timesteps`` in reverse; at loop step ``i`` the array index is ``S - i - 1`` and the
    timestep tensor is ``torch.full((B,), t, dtype=long)`` (ddim.py:165-167).
    - ``eps_fn(x, t_tensor, index)`` returns the (guided, e.g. ``cfg_eps``) eps prediction.
    - ``noise_fn(i, shape)`` returns step ``i``'s raw N(0,1) draw. Upstream draws it every step even when
      eta=0 (common.py:31-34), so pass the draws anyway to keep a shared generator in step with upstream's.
      ``noise_fn`` may be None only if every sigma is 0.
    - ``callback(i, index, x_prev, pred_x0)`` after each step.
    """
    x = x_T
    total = arrays.num_steps
    for i, step in enumerate(reversed(arrays.timesteps.tolist())):
        index = total - i - 1
        ts = torch.full((x.shape[0],), step, device=x.device, dtype=torch.long)
        e_t = eps_fn(x, ts, index)
        noise = noise_fn(i, tuple(x.shape)) if noise_fn is not None else None
        x, pred_x0 = ddim_step(x, e_t, index, arrays, noise, temperature=temperature)
        if callback is not None:
            callback(i, index, x, pred_x0)
    return x


class OriginalOrderNoise:
    """The random draws of an upstream ``batch_ddim_sampling`` run, from a private generator.

    Upstream seeds the global generator (``seed_everything`` / ``torch.manual_seed(seed)``), then draws
    ``x_T = torch.randn(shape)`` (ddim.py:144-147) and one ``torch.randn(x.shape)`` per step (``noise_like``,
    common.py:31-34; drawn even when eta=0), with nothing else drawn in between (the UNet draws nothing).
    A fresh ``torch.Generator`` on the same device seeded with ``seed`` yields the identical stream as the
    global generator after ``torch.manual_seed(seed)``, so this class reproduces upstream's draws without
    touching global RNG state: draw 0 is ``x_T``, draw ``i + 1`` is the noise of loop step ``i``.
    On CPU that is the CPU stream (as in the reference fixtures); pass ``device='cuda'`` to reproduce a GPU run
    (upstream moves the sampler to CUDA, ddim.py:16-20, and ``torch.manual_seed`` seeds the CUDA generators
    too). Draws are made in order and handed out once (skipped ones are kept until asked for); asking for an
    earlier draw again replays the stream from the seed. Memory stays at one draw in the normal in-order use.

    Use as ``noise_fn`` of ``ddim_sample``: ``noise(i, shape)``.
    """

    def __init__(self, seed: int, video_shape: Sequence[int], device="cpu", dtype: torch.dtype = torch.float32):
        self.seed = int(seed)
        self.shape = tuple(int(s) for s in video_shape)
        self.device = torch.device(device)
        self.dtype = dtype
        self._reset()

    def _reset(self) -> None:
        self._gen = torch.Generator(device=self.device)
        self._gen.manual_seed(self.seed)
        self._made = 0                      # draws generated so far
        self._pending: dict = {}            # generated but not yet handed out

    def draw(self, k: int) -> torch.Tensor:
        """The ``k``-th ``randn(video_shape)`` draw after seeding (0 = x_T)."""
        if k < 0:
            raise ValueError("draw index must be >= 0")
        if k < self._made and k not in self._pending:
            self._reset()
        while self._made <= k:
            self._pending[self._made] = torch.randn(self.shape, generator=self._gen, device=self.device,
                                                    dtype=self.dtype)
            self._made += 1
        return self._pending.pop(k)

    def x_T(self) -> torch.Tensor:
        return self.draw(0)

    def __call__(self, step_index: int, shape: Optional[Sequence[int]] = None) -> torch.Tensor:
        if shape is not None and tuple(shape) != self.shape:
            raise ValueError(f"noise shape {tuple(shape)} != video shape {self.shape}")
        return self.draw(step_index + 1)
