"""Depth structure → the Make-Your-Video depth channel (Gen-1's structure input), pure PyTorch.

Make-Your-Video (AILab-CVC/Make-Your-Video@9817461) conditions its UNet on a depth map concatenated as a
5th input channel (``conditioning_key: hybrid``, ddpm3d.py:700-704). The map is made by
``LatentDepthDiffusion.get_batch_depth`` (ddpm3d.py:648-680, reference README §3 "Depth path"):

1. ``(b t)`` frames, each ``F.interpolate(size=(384, 384), mode='bicubic')`` (align_corners False, no
   antialias) — :func:`midas_input`;
2. the MiDaS DPT forward (``models/depth/dpt*.py``, not this file) → ``[N, 384, 384]``; MiDaSInference then
   resizes it bicubically to the input size, which at 384 is an exact identity (verified in the fixtures);
3. ``F.interpolate(size=target, mode='bicubic', align_corners=False)`` — a **downsample without antialias**
   to the latent size (384 → 32 for 256² video) — :func:`resize_depth`;
4. per-frame min/max over (c, h, w): ``2·(d − min)/(max − min + 1e-7) − 1`` (``temporal_norm=True``: one
   min/max per video over (c, t, h, w); unused by the released script) — :func:`normalise_depth`.

MiDaS predicts inverse depth (near = large), so after step 4 near = +1 and far = −1. Every step here is
affine-equivariant up to step 4, so any depth IMAGE whose values are an increasing affine function of the
MiDaS output per frame (e.g. a per-frame 0..1 normalised "near = bright" image) gives the same channel.

:func:`structure_blur` is Gen-1's *structure fidelity* control ``t_s`` (Esser et al. 2023, §3.3: depth
maps "with varying levels of detail" give control over how much structure is kept). Gen-1's exact operator
is not public; here level ``t_s`` keeps a ``2^-t_s`` resolution: area-downsample by ``2^t_s`` then
bilinear upsample back, so 0 is the identity and each level halves the detail of the structure.
Make-Your-Video was not trained with blurred depth, so ``t_s > 0`` there is an inference-time heuristic.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: Input size of the MiDaS DPT models (``prepare_midas_input``, ddpm3d.py:653-656).
MIDAS_SIZE = 384
#: The epsilon of the original min/max normalisation (ddpm3d.py:676-677).
NORM_EPS = 1e-7


def midas_input(frames: torch.Tensor, size: int = MIDAS_SIZE) -> torch.Tensor:
    """``[N, 3, H, W]`` frames in [-1, 1] → ``[N, 3, size, size]``: bicubic, align_corners False, no antialias.

    Aspect is not kept (the original squashes to a square). The [-1, 1] range is what the DPT expects
    (= MiDaS ``NormalizeImage(0.5, 0.5)`` of a [0, 1] image); no other normalisation is applied.
    """
    if frames.ndim != 4:
        raise ValueError(f"expected frames [N, 3, H, W], got shape {tuple(frames.shape)}")
    return F.interpolate(frames, size=(size, size), mode="bicubic", align_corners=False)


def resize_depth(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[N, 1, H, W]`` → ``[N, 1, h, w]`` bicubic without antialias, exactly as ddpm3d.py:666-671.

    Also used for downsampling (the original does not antialias), so fine detail aliases like upstream.
    """
    if depth.ndim != 4:
        raise ValueError(f"expected a depth map [N, 1, H, W], got shape {tuple(depth.shape)}")
    size = (int(size[0]), int(size[1]))
    if tuple(depth.shape[-2:]) == size:
        return depth
    return F.interpolate(depth, size=size, mode="bicubic", align_corners=False)


def normalise_depth(depth: torch.Tensor, frames: int | None = None, temporal: bool = False) -> torch.Tensor:
    """Min/max normalise ``[N, 1, h, w]`` depth to [-1, 1] (ddpm3d.py:672-677).

    ``temporal=False`` (the released script): one min/max per frame. ``temporal=True``: one per video of
    ``frames`` consecutive frames (``frames`` is then required), so relative depth changes over time are kept.
    """
    if not temporal:
        low = torch.amin(depth, dim=[1, 2, 3], keepdim=True)
        high = torch.amax(depth, dim=[1, 2, 3], keepdim=True)
        return 2.0 * (depth - low) / (high - low + NORM_EPS) - 1.0
    if not frames or depth.shape[0] % frames:
        raise ValueError(f"temporal normalisation needs the frames per video; {depth.shape[0]} maps, frames={frames}")
    video = depth.reshape(depth.shape[0] // frames, frames, *depth.shape[1:])
    low = torch.amin(video, dim=[1, 2, 3, 4], keepdim=True)
    high = torch.amax(video, dim=[1, 2, 3, 4], keepdim=True)
    return (2.0 * (video - low) / (high - low + NORM_EPS) - 1.0).reshape(depth.shape)


def structure_blur(depth: torch.Tensor, level: int) -> torch.Tensor:
    """Gen-1 structure fidelity ``t_s`` on ``[N, 1, H, W]``: keep ``2^-level`` of the resolution (see module doc).

    ``level`` 0 returns the input unchanged. The coarsest level is clamped at a 1-pixel map.
    """
    level = int(level)
    if level < 0:
        raise ValueError(f"structure blur level t_s must be >= 0, got {level}")
    if level == 0:
        return depth
    height, width = depth.shape[-2:]
    small = (max(1, height >> level), max(1, width >> level))
    coarse = F.adaptive_avg_pool2d(depth, small)
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def depth_structure(depth: torch.Tensor, size: tuple[int, int], *, frames: int | None = None,
                    temporal: bool = False, blur: int = 0) -> torch.Tensor:
    """Depth maps ``[N, 1, H, W]`` (near = large) → the model's depth channel ``[N, 1, h, w]`` in [-1, 1].

    Steps 3-4 of ``get_batch_depth`` (module docstring), with the optional structure blur applied at the
    depth's own resolution first (so ``blur=0`` is bit-exact with the original).
    """
    return normalise_depth(resize_depth(structure_blur(depth, blur), size), frames=frames, temporal=temporal)


def depth_image_to_map(image: torch.Tensor) -> torch.Tensor:
    """A ComfyUI depth IMAGE ``[T, H, W, C]`` (near = bright) → depth maps ``[T, 1, H, W]`` (float32 or float64).

    A grey image (all channels equal, what depth estimators output) gives its one channel exactly; other
    images give the channel mean. Anything that is not an image batch is refused.
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"a depth IMAGE must be [frames, height, width, 1|3|4 channels]; got {shape}")
    if not image.is_floating_point():
        image = image.float()
    channels = image[..., :3] if image.shape[-1] >= 3 else image
    first = channels[..., :1]
    grey = first if all(torch.equal(first, channels[..., i:i + 1]) for i in range(1, channels.shape[-1])) \
        else channels.mean(dim=-1, keepdim=True)
    return grey.permute(0, 3, 1, 2).contiguous()
