"""FIFO-Diffusion (Kim et al. 2024, "FIFO-Diffusion: Generating Infinite Videos from Text without
Training"): diagonal denoising with a queue of frames at increasing noise levels.

Re-implementation of the official VideoCrafter2 branch, jjihwan/FIFO-Diffusion_public@b87ba5d
(reference ``longvideo/README.md`` §3), as pure functions driven by an ``eps_fn`` (the guided
noise prediction for a window with one timestep per frame) and one ``torch.Generator`` that
yields the official random stream:

* :func:`fifo_ddim_arrays`: the fork's DDIM schedule, ``np.linspace(0, 999, S).round()`` with no
  ``+1`` (``utils_diffusion.py:56-78``), ``alphas_prev[0] = acp[0]``; S = f·n steps.
* :func:`init_queue` (``funcs.py:14-34``): queue position ``f//2 + i`` (lookahead) holds DDIM index
  i, ``sqrt(a_i)·video[max(0, i-(S-f))] + sqrt(1-a_i)·randn``; **no scale_arr** factor.
* :func:`fifo_onestep` (``ddim.py:186-200, 299-334``): per window frame its own index; DDIM update
  without scale_arr; a noise draw for every frame (also the discarded lookahead half, also at eta 0).
* :func:`fifo_sample` (``funcs.py:158-244``): ``N + S - f`` iterations; windows from the noisiest
  (rank ``2n-1`` or ``n-1``) down; with lookahead only the second half of each window is written
  back; the frame at ``f//2`` (or 0) is popped; shift + one fresh ``randn`` at the queue's end. The
  video is the last N popped frames.

Tensors use the original 5-D layout ``[1, C, frames, H, W]`` (batch 1, as the original requires).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from ..sampling import ddim as D
from ..sampling.schedule import VideoCrafterSchedule

#: Official defaults (videocrafter_main.py:115-140): f=16, n=4 (S=64), N=100, cfg 12, eta 1, lookahead on.
DEFAULT_VIDEO_LENGTH = 16
DEFAULT_PARTITIONS = 4
DEFAULT_NEW_LENGTH = 100
DEFAULT_CFG = 12.0
DEFAULT_ETA = 1.0
DEFAULT_SEED = 321

#: ``eps_fn(latents [1, C, f, H, W], timesteps int64 [f]) -> guided eps [1, C, f, H, W]``.
EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FifoSettings:
    """One FIFO run: window ``video_length`` (f), ``num_partitions`` (n), output length N."""

    video_length: int = DEFAULT_VIDEO_LENGTH
    num_partitions: int = DEFAULT_PARTITIONS
    new_video_length: int = DEFAULT_NEW_LENGTH
    lookahead: bool = True
    eta: float = DEFAULT_ETA

    def __post_init__(self):
        if self.video_length < 1 or self.num_partitions < 1 or self.new_video_length < 1:
            raise ValueError("video_length, num_partitions and new_video_length must be >= 1")
        if self.lookahead and self.video_length % 2:
            raise ValueError(f"lookahead denoising needs an even window (video_length), got {self.video_length}")

    @property
    def num_steps(self) -> int:
        """S = f·n (videocrafter_main.py:138 forces the step count to this)."""
        return self.video_length * self.num_partitions

    @property
    def half(self) -> int:
        return self.video_length // 2

    @property
    def queue_length(self) -> int:
        return self.num_steps + (self.half if self.lookahead else 0)

    @property
    def iterations(self) -> int:
        """Popped frames: ``N + S - f``; the first ``S - f`` are discarded."""
        return self.new_video_length + self.num_steps - self.video_length

    @property
    def ranks(self) -> list[int]:
        """Window ranks in processing order (noisiest first)."""
        return list(reversed(range(2 * self.num_partitions if self.lookahead else self.num_partitions)))

    def window(self, rank: int) -> tuple[int, int, int]:
        """``(start, mid, end)`` of window ``rank`` in the queue (funcs.py:209-211)."""
        start = rank * self.half if self.lookahead else rank * self.video_length
        return start, start + self.half, start + self.video_length

    @property
    def pop_position(self) -> int:
        return self.half if self.lookahead else 0


def fifo_ddim_timesteps(num_steps: int, num_train_timesteps: int = 1000) -> torch.Tensor:
    """``np.linspace(0, T-1, S).round().astype(int64)`` (FIFO utils_diffusion.py:56-78): starts at t=0, no +1."""
    if not 1 <= num_steps <= num_train_timesteps:
        raise ValueError(f"steps must be in [1, {num_train_timesteps}], got {num_steps}")
    return torch.from_numpy(np.linspace(0, num_train_timesteps - 1, num_steps).round().astype(np.int64))


def fifo_ddim_arrays(schedule: VideoCrafterSchedule, num_steps: int, eta: float,
                     with_scale: bool = True) -> D.DDIMArrays:
    """``DDIMSampler.make_schedule`` of the FIFO fork, in upstream dtypes (see ``models.sampling.ddim``).

    ``with_scale=False`` drops ``scale_arr``: the diagonal steps ignore it (ddim.py:299-334).
    """
    scale = schedule.scale_arr if with_scale and schedule.use_scale else None
    return fifo_ddim_arrays_from_table(schedule.alphas_cumprod, num_steps, eta, scale)


def fifo_ddim_arrays_from_table(alphas_cumprod: torch.Tensor, num_steps: int, eta: float,
                                scale_arr: Optional[torch.Tensor] = None) -> D.DDIMArrays:
    """FIFO DDIM arrays from a float32 ``alphas_cumprod`` table (and the full ``scale_arr``, if any)."""
    ts = fifo_ddim_timesteps(num_steps, alphas_cumprod.shape[0])
    acp = alphas_cumprod
    alphas = acp[ts]
    alphas_prev = torch.cat([acp[:1], acp[ts[:-1]]]).to(torch.float64)
    sigmas, sqrt_one_minus = D.sampling_parameters(alphas, alphas_prev, eta)
    scale_prev = None
    if scale_arr is not None:
        scale_prev = torch.cat([scale_arr[:1], scale_arr[ts[:-1]]]).to(torch.float64)
        scale_arr = scale_arr[ts]
    return D.DDIMArrays(ts, alphas, alphas_prev, sqrt_one_minus, sigmas, scale_arr, scale_prev, float(eta))


def without_scale(arrays: D.DDIMArrays) -> D.DDIMArrays:
    """The same arrays with ``scale_arr`` removed (what ``fifo_onestep``'s ``ddim_step`` uses)."""
    return D.DDIMArrays(arrays.timesteps, arrays.alphas, arrays.alphas_prev, arrays.sqrt_one_minus_alphas,
                        arrays.sigmas, None, None, arrays.eta)


def queue_schedule(arrays: D.DDIMArrays, settings: FifoSettings) -> tuple[np.ndarray, np.ndarray]:
    """Per queue position ``(timesteps, ddim indices)`` (funcs.py:200-205): with lookahead, ``f//2``
    leading copies of ``(ts[0], 0)``."""
    timesteps = arrays.timesteps.numpy()
    indices = np.arange(settings.num_steps)
    if settings.lookahead:
        timesteps = np.concatenate([np.full((settings.half,), timesteps[0]), timesteps])
        indices = np.concatenate([np.full((settings.half,), 0), indices])
    return timesteps, indices


#: ``draw(shape, like) -> N(0, 1) tensor`` of ``like``'s dtype and device: the source of every random draw.
Draw = Callable[[tuple, torch.Tensor], torch.Tensor]


def generator_draws(generator: Optional[torch.Generator] = None) -> Draw:
    """Draws from ``generator`` (on its own device, then moved), or from the global generator if None.

    Upstream draws everything from the global generator after ``seed_everything(seed)``; a fresh
    ``torch.Generator().manual_seed(seed)`` yields the same stream without touching global state.
    """
    def draw(shape, like: torch.Tensor) -> torch.Tensor:
        device = generator.device if generator is not None else like.device
        return torch.randn(tuple(shape), generator=generator, device=device, dtype=like.dtype).to(like.device)
    return draw


def _as_draw(draw) -> Draw:
    if draw is None or isinstance(draw, torch.Generator):
        return generator_draws(draw)
    return draw


def init_queue(video: torch.Tensor, arrays: D.DDIMArrays, settings: FifoSettings,
               draw=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``prepare_latents`` (funcs.py:14-34): the queue ``[1, C, L, H, W]`` and its raw draws in order.

    ``video`` is the clean base clip ``[1, C, f, H, W]`` (the output of an ordinary f-frame run).
    ``sqrt(a)`` and ``sqrt(1 - a)`` are computed in double precision from the float32 ``a`` and multiply
    the tensors as Python scalars: that reproduces the recorded queue bit for bit (float32 tensor powers
    differ by 1 ulp on some entries).
    """
    draw = _as_draw(draw)
    f, steps = settings.video_length, settings.num_steps
    if video.shape[2] != f:
        raise ValueError(f"the base clip has {video.shape[2]} frames; the window (video_length) is {f}")
    entries, draws = [], []

    def noised(alpha: torch.Tensor, frame: int) -> torch.Tensor:
        clean = video[:, :, [frame]]
        noise = draw(clean.shape, clean)
        draws.append(noise)
        a = float(alpha)  # the coefficients are double-precision scalars (bit-exact with the recorded queue)
        return a ** 0.5 * clean + (1 - a) ** 0.5 * noise

    if settings.lookahead:
        for _ in range(settings.half):
            entries.append(noised(arrays.alphas[0], 0))
    for i in range(steps):
        entries.append(noised(arrays.alphas[i], max(0, i - (steps - f))))
    return torch.cat(entries, dim=2), draws


@dataclass
class OneStep:
    """What one ``fifo_onestep`` call saw and produced (for progress, previews and parity)."""

    rank: int
    start: int
    timesteps: torch.Tensor
    indices: list[int]
    latents_in: torch.Tensor
    noise_pred: torch.Tensor
    step_noise: list[torch.Tensor]
    latents_out: torch.Tensor
    pred_x0: torch.Tensor


def fifo_onestep(eps_fn: EpsFn, latents: torch.Tensor, timesteps, indices, arrays: D.DDIMArrays,
                 draw=None, noise: Optional[list[torch.Tensor]] = None):
    """One diagonal step of a window (ddim.py:186-200, 299-334); returns ``(x_prev, pred_x0, noise_pred, draws)``.

    ``arrays`` must be the scale-free arrays (:func:`without_scale`). Frame ``i`` uses DDIM index
    ``indices[i]`` and its own ``randn([1, C, 1, H, W])`` (from ``noise`` if given, else drawn).
    """
    draw = _as_draw(draw)
    ts = torch.as_tensor(np.asarray(timesteps).copy(), dtype=torch.long, device=latents.device)
    noise_pred = eps_fn(latents, ts)
    x_prevs, pred_x0s, draws = [], [], []
    for i, index in enumerate(indices):
        x = latents[:, :, [i]]
        e_t = noise_pred[:, :, [i]]
        z = noise[i] if noise is not None else draw(x.shape, x)
        draws.append(z)
        x_prev, pred_x0 = D.ddim_step(x, e_t, int(index), arrays, z)
        x_prevs.append(x_prev)
        pred_x0s.append(pred_x0)
    return torch.cat(x_prevs, dim=2), torch.cat(pred_x0s, dim=2), noise_pred, draws


def shift_queue(latents: torch.Tensor, draw=None) -> torch.Tensor:
    """``shift_latents`` (funcs.py:37-44): drop position 0, append ``randn`` at the end (in place)."""
    latents[:, :, :-1] = latents[:, :, 1:].clone()
    latents[:, :, -1] = _as_draw(draw)(latents[:, :, -1].shape, latents)
    return latents


def fifo_sample(eps_fn: EpsFn, video: torch.Tensor, arrays: D.DDIMArrays, settings: FifoSettings,
                draw=None,
                on_step: Optional[Callable[[int, OneStep], None]] = None,
                on_pop: Optional[Callable[[int, torch.Tensor, torch.Tensor], None]] = None,
                queue: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The diagonal denoising loop (funcs.py:158-244); returns the last N popped latents ``[1, C, N, H, W]``.

    ``video``: the clean base clip ``[1, C, f, H, W]``; ``arrays``: FIFO DDIM arrays for S = f·n
    (:func:`fifo_ddim_arrays`; scale_arr, if any, is ignored here as upstream). Random draws come from
    ``draw`` (a ``torch.Generator`` or a :data:`Draw`) in the official order (queue init, then per iteration every window's per-frame
    noise, then the shift draw). ``on_step(iteration, OneStep)`` after every window;
    ``on_pop(iteration, popped [1, C, 1, H, W], queue_before_shift)`` after every iteration.
    ``queue`` replaces :func:`init_queue` (parity replays).
    """
    draw = _as_draw(draw)
    plain = without_scale(arrays)
    if plain.num_steps != settings.num_steps:
        raise ValueError(f"arrays have {plain.num_steps} steps; FIFO needs S = f·n = {settings.num_steps}")
    if queue is None:
        queue, _ = init_queue(video, plain, settings, draw)
    latents = queue.clone()
    timesteps, indices = queue_schedule(plain, settings)
    half, pop = settings.half, settings.pop_position
    popped = []
    for it in range(settings.iterations):
        for rank in settings.ranks:
            start, mid, end = settings.window(rank)
            window_in = latents[:, :, start:end].clone()
            out, pred_x0, noise_pred, draws = fifo_onestep(eps_fn, window_in, timesteps[start:end],
                                                           indices[start:end], plain, draw)
            if settings.lookahead:
                latents[:, :, mid:end] = out[:, :, -half:]
            else:
                latents[:, :, start:end] = out
            if on_step is not None:
                on_step(it, OneStep(rank, start, torch.as_tensor(timesteps[start:end]),
                                    [int(i) for i in indices[start:end]], window_in, noise_pred, draws, out, pred_x0))
        frame = latents[:, :, [pop]].clone()
        popped.append(frame)
        if on_pop is not None:
            on_pop(it, frame, latents)
        latents = shift_queue(latents, draw)
    return torch.cat(popped[-settings.new_video_length:], dim=2)


def base_clip(eps_fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor], shape, arrays: D.DDIMArrays,
              draw=None, device="cpu") -> torch.Tensor:
    """The first f frames as the official script makes them (``base_ddim_sampling``, funcs.py:104-156):
    ``x_T = randn(shape)``, then an ordinary DDIM run over the FIFO ladder with scale_arr, one
    ``randn(shape)`` per step. ``eps_fn(x, t [B], index)`` as ``models.sampling.ddim.ddim_sample``."""
    draw = _as_draw(draw)
    like = torch.empty(0, device=device)
    x_T = draw(tuple(shape), like)
    return D.ddim_sample(eps_fn, x_T, arrays, lambda i, s: draw(tuple(s), like))
